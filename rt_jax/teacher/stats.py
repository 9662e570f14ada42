"""Per-shard statistics of the cache: how good the teacher is, what a student would get, and what
the run cost (the server's tokens, summed over the records that carry them)."""

from __future__ import annotations

from rt_jax.teacher.record import USAGE_KEYS, Record
from rt_jax.teacher.store import RationaleStore


def _pct(num: int, den: int) -> float | None:
    return round(100.0 * num / den, 4) if den else None


def shard_stats(records: list[Record], train: set[int], test: set[int]) -> dict:
    """Accuracies are over completions (one per sample for greedy teachers). Training-side counts
    use the training split only, as selection does."""
    samples = {r.sample_index for r in records}
    test_recs = [r for r in records if r.sample_index in test]
    train_recs = [r for r in records if r.sample_index in train]
    correct_train = [r for r in train_recs if r.correct]
    train_samples = {r.sample_index for r in train_recs}
    billed = [r.usage for r in records if r.usage is not None]
    return {
        "samples": len(samples),
        "completions": len(records),
        "accuracy": _pct(sum(r.correct for r in records), len(records)),
        "test_completions": len(test_recs),
        "test_accuracy": _pct(sum(r.correct for r in test_recs), len(test_recs)),
        "train_samples": len(train_samples),
        "train_samples_with_correct": len({r.sample_index for r in correct_train}),
        "mean_correct_per_train_sample": round(len(correct_train) / len(train_samples), 4) if train_samples else None,
        "distinct_rationales": len({r.reasoning_completion.strip() for r in records}),
        "distinct_correct_train_rationales": len(
            {(r.sample_index, r.reasoning_completion.strip()) for r in correct_train}
        ),
        "completions_with_usage": len(billed),
        **{key: sum(u[key] for u in billed) if billed else None for key in USAGE_KEYS},
    }


def cache_stats(
    store: RationaleStore, data_dir, teacher: str, method: str, tasks=None, problems: list[str] | None = None
) -> dict:
    """{task: stats} for every shard of (teacher, method), in the paper's task order."""
    from rt_jax.tasks import TASKS, load_split

    present = {task for t, m, task in store.shards() if (t, m) == (teacher, method)}
    out: dict[str, dict] = {}
    for task in TASKS:
        if task not in present or (tasks and task not in tasks):
            continue
        split = load_split(task, data_dir)
        records = store.read(teacher, method, task, problems)
        out[task] = shard_stats(records, set(split.train), set(split.test))
    return out


COLUMNS = [
    ("samples", "samples"),
    ("completions", "compl."),
    ("accuracy", "acc%"),
    ("test_accuracy", "test acc%"),
    ("train_samples_with_correct", "train w/ correct"),
    ("mean_correct_per_train_sample", "correct/train"),
    ("distinct_rationales", "distinct"),
    ("prompt_tokens", "prompt tokens"),
    ("completion_tokens", "compl. tokens"),
]


def format_table(stats: dict) -> str:
    lines = [f"{'task':28s}" + "".join(f"{title:>17s}" for _, title in COLUMNS)]
    for task, row in stats.items():
        lines.append(f"{task:28s}" + "".join(f"{'-' if row[k] is None else row[k]:>17}" for k, _ in COLUMNS))
    return "\n".join(lines)
