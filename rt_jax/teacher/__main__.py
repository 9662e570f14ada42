"""python -m rt_jax.teacher <action>: fill, inspect and convert the teacher-rationale cache.

  import_kojima  Kojima et al.'s Zero-shot-CoT logs (text-davinci-002) -> cache
  import_rt      reasoning-teacher CompletionDataset JSON files (--rt_files) -> cache
  export_rt      one shard (--teacher, --method, --tasks=<one task>) -> CompletionDataset JSON (--out)
  generate       Zero-shot-CoT with a teacher: --backend=http (OpenAI-compatible) or local (rt_jax model)
  stats          per task: samples, completions, teacher accuracy (all / test), training samples with a
                 correct rationale, mean correct rationales per training sample, distinct rationales

Bad records, blocks or files are reported one per line (file:line: why) and skipped; the exit status
is then 1 and the last line says how many. Usage errors exit 2.
"""

import json
import os
import sys

from absl import flags

from rt_jax.cli import run_main
from rt_jax.errors import UserError

ACTIONS = ("import_kojima", "import_rt", "export_rt", "generate", "stats")

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("cache_dir", "teacher_cache", "Root of the rationale cache.")
    flags.DEFINE_string("data_dir", "../shared/data", "Raw task files, splits and Kojima logs.")
    flags.DEFINE_string("kojima_logs", None, "Folder of <name>_zero_shot_cot.log files (default: under --data_dir).")
    flags.DEFINE_list("tasks", [], "Tasks to act on (default: all).")
    flags.DEFINE_string("teacher", "text-davinci-002", "Teacher id (a cache folder name).")
    flags.DEFINE_string("method", None, "Method id, e.g. zs_cot, zs_cot_t70 (default: zs_cot, or from --temperature).")
    flags.DEFINE_list("rt_files", [], "reasoning-teacher CompletionDataset JSON files to import.")
    flags.DEFINE_string("out", None, "export_rt: output JSON path (must not exist).")
    flags.DEFINE_bool("json", False, "stats: print JSON {task: {...}} instead of a table.")
    flags.DEFINE_enum("backend", "http", ["http", "local"], "generate: the teacher backend.")
    flags.DEFINE_string("url", "https://api.openai.com/v1", "http backend: base URL of the completions API.")
    flags.DEFINE_string("model", None, "http: model name sent to the API; local: rt_jax model name or path.")
    flags.DEFINE_string("api_key_env", "OPENAI_API_KEY", "http: environment variable holding the API key ('' = none).")
    flags.DEFINE_integer("concurrency", 8, "http: parallel requests.")
    flags.DEFINE_float("rate_limit", 0.0, "http: most requests per second (0 = no limit).")
    flags.DEFINE_integer("max_retries", 6, "http: retries of a request on 429/5xx/network errors.")
    flags.DEFINE_enum("split", "train", ["train", "test", "all"], "generate: which samples.")
    flags.DEFINE_integer("limit", 0, "generate: only the first N samples of the split (0 = all).")
    flags.DEFINE_integer("num_completions", 1, "generate: completions per sample (D of diverse reasoning).")
    flags.DEFINE_float("temperature", 0.0, "generate: sampling temperature of the reasoning step (0 = greedy).")
    flags.DEFINE_integer("max_reasoning_tokens", 128, "generate: token limit of the rationale.")
    flags.DEFINE_integer("max_answer_tokens", 32, "generate: token limit of the answer step.")
    flags.DEFINE_integer("batch_size", 16, "generate: prompts per step (chunk written after each).")
    flags.DEFINE_integer("seed", 0, "generate: sampling seed.")


def _tasks() -> list[str]:
    from rt_jax.tasks import TASKS

    unknown = [t for t in FLAGS.tasks if t not in TASKS]
    if unknown:
        raise UserError(f"--tasks: unknown {unknown}; expected some of {', '.join(TASKS)}")
    return list(FLAGS.tasks) or list(TASKS)


def _store(must_exist: bool = False):
    """The cache at --cache_dir; readers (stats, export) need one that exists already."""
    from rt_jax.teacher.store import RationaleStore

    if must_exist and not os.path.isdir(FLAGS.cache_dir):
        raise UserError(
            f"--cache_dir={FLAGS.cache_dir}: no such folder; fill a cache first with "
            "import_kojima, import_rt or generate"
        )
    return RationaleStore(FLAGS.cache_dir)


def import_kojima(problems: list[str]) -> None:
    from rt_jax.teacher.import_kojima import LOG_NAMES, LOG_SUFFIX, import_log, kojima_logs

    wanted = set(_tasks())
    store = _store()
    print(
        f"{'task':28s}{'blocks':>8s}{'matched':>9s}{'written':>9s}{'cached':>8s}{'kojima%':>9s}"
        f"{'ours%':>9s}{'train w/ correct':>18s}"
    )
    for log in kojima_logs(FLAGS.kojima_logs or FLAGS.data_dir):
        if LOG_NAMES[log.name[: -len(LOG_SUFFIX)]] not in wanted:
            continue
        r = import_log(store, log, FLAGS.data_dir, problems)
        fmt = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
        print(
            f"{r.task:28s}{r.blocks:8d}{r.matched:9d}{r.written:9d}{r.already_cached:8d}"
            f"{fmt(r.kojima_accuracy):>9s}{fmt(r.accuracy):>9s}{r.train_with_correct:18d}"
        )


def import_rt(problems: list[str]) -> None:
    from rt_jax.teacher.reasoning_teacher import import_rt_file

    if not FLAGS.rt_files:
        raise UserError("import_rt: give --rt_files=<file.json>[,...]")
    store = _store()
    for path in FLAGS.rt_files:
        counts = import_rt_file(store, path, FLAGS.data_dir, problems)
        print(f"{path}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def export_rt(problems: list[str]) -> None:
    from rt_jax.teacher.reasoning_teacher import export_rt as export
    from rt_jax.teacher.reasoning_teacher import write_json_new

    if len(FLAGS.tasks) != 1 or not FLAGS.out:
        raise UserError("export_rt: give one task (--tasks=<task>) and --out=<new file.json>")
    obj = export(
        _store(must_exist=True), FLAGS.teacher, FLAGS.method or "zs_cot", FLAGS.tasks[0], FLAGS.data_dir, problems
    )
    write_json_new(FLAGS.out, obj)
    print(f"{FLAGS.out}: {sum(len(v) for v in obj['data'].values())} completions of {len(obj['data'])} samples")


def _backend():
    from rt_jax.teacher import backends

    if not FLAGS.model:
        raise UserError("generate: give --model (API model name, or rt_jax model name/path for --backend=local)")
    if FLAGS.backend == "http":
        return backends.HttpCompletionsBackend(
            FLAGS.url,
            FLAGS.model,
            FLAGS.api_key_env or None,
            concurrency=FLAGS.concurrency,
            requests_per_second=FLAGS.rate_limit,
            max_retries=FLAGS.max_retries,
        )
    from rt_jax.models import from_pretrained

    return backends.LocalModelBackend(from_pretrained(FLAGS.model), batch_size=FLAGS.batch_size)


def generate(problems: list[str]) -> None:
    from rt_jax.tasks import load_dataset, load_split
    from rt_jax.teacher.generate import generate_rationales

    if FLAGS.num_completions < 1 or FLAGS.temperature < 0:
        raise UserError("generate: --num_completions must be >= 1 and --temperature >= 0")
    if FLAGS.num_completions > 1 and FLAGS.temperature == 0:
        raise UserError("generate: --num_completions > 1 needs --temperature > 0 (greedy repeats itself)")
    backend, store = _backend(), _store()
    for task in _tasks():
        dataset = load_dataset(task, FLAGS.data_dir)
        split = load_split(task, FLAGS.data_dir)
        indices = {"train": split.train, "test": split.test, "all": split.train + split.test}[FLAGS.split]
        available = [i for i in sorted(indices) if i in dataset]
        if len(available) < len(indices):
            problems.append(
                f"{task}: {len(indices) - len(available)} sample(s) of the {FLAGS.split} split are not "
                f"available and were skipped ({'; '.join(dataset.missing)})"
            )
        indices = available
        if FLAGS.limit:
            indices = indices[: FLAGS.limit]
        report = generate_rationales(
            store,
            backend,
            task,
            dataset.select(indices),
            FLAGS.teacher,
            FLAGS.num_completions,
            FLAGS.temperature,
            FLAGS.method,
            max_reasoning_tokens=FLAGS.max_reasoning_tokens,
            max_answer_tokens=FLAGS.max_answer_tokens,
            chunk_size=FLAGS.batch_size,
            seed=FLAGS.seed,
            problems=problems,
        )
        print(f"{task}: requested={report.requested} cached={report.cached} written={report.written}")


def stats(problems: list[str]) -> None:
    from rt_jax.teacher.stats import cache_stats, format_table

    result = cache_stats(
        _store(must_exist=True), FLAGS.data_dir, FLAGS.teacher, FLAGS.method or "zs_cot", _tasks(), problems
    )
    print(json.dumps(result, indent=2) if FLAGS.json else format_table(result))


def main(argv) -> int:
    if len(argv) != 2 or argv[1] not in ACTIONS:
        raise UserError(f"expected one action: python -m rt_jax.teacher <{'|'.join(ACTIONS)}> [--flags]")
    problems: list[str] = []
    globals()[argv[1]](problems)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) reported above; those items were skipped", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    run_main(main, define_flags)


if __name__ == "__main__":
    run()
