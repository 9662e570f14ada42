"""`python -m rt_jax.data --data_dir=DIR [--json] [--tasks=a,b]`: what the raw files give.

One row per task: dataset size, train and test sizes of the paper's default split (indices
that resolve to a built example), source files. A task whose source file is missing (AQuA's
train.json) is reported with what it has and one line saying which file to get and how.
`--tfds_dir=DIR` also writes each task as the TFDS dataset `rt_jax_tasks/<task>` (array_record,
for `tfds.data_source`). `--json` prints `{task: {"size": n, "train": n, "test": n}}`, plus `"missing"` and the paper's
sizes (`"paper"`) for an incomplete task."""

import contextlib
import json
import pathlib
import sys
from typing import Sequence

from absl import flags

from rt_jax.cli import run_main
from rt_jax.errors import UserError
from rt_jax.tasks import TASKS, load_dataset, load_split, task_info

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("data_dir", None, "Folder with raw/ and splits/ (e.g. ../shared/data).")
    flags.DEFINE_bool("json", False, "Print one JSON object instead of the table.")
    flags.DEFINE_list("tasks", list(TASKS), "Comma-separated task keys.")
    flags.DEFINE_bool(
        "download",
        False,
        "Fetch missing source files from their public origin into --cache_dir (checked against pinned checksums).",
    )
    flags.DEFINE_string(
        "tfds_dir",
        None,
        "Also build the selected tasks as the TFDS dataset rt_jax_tasks/<task> (array_record) under this folder.",
    )
    flags.DEFINE_string("cache_dir", None, "Download cache (default ~/.cache/rt_jax or $RT_JAX_CACHE).")


def summarize(task: str, data_dir, cache_dir=None, download: bool = False) -> dict:
    """Sizes of the built dataset and of the split indices that resolve to an example."""
    ds = load_dataset(task, data_dir, cache_dir=cache_dir, download=download)
    split = load_split(task, data_dir, cache_dir=cache_dir, download=download)
    summary = {"size": len(ds), "train": sum(i in ds for i in split.train), "test": sum(i in ds for i in split.test)}
    if ds.missing:
        summary["missing"] = list(ds.missing)
        summary["paper"] = {"size": ds.size, "train": len(split.train), "test": len(split.test)}
    built = {p.replace("\\", "/") for p in ds.source_files}
    summary["sources"] = [
        part.path + ("" if any(b.endswith(part.path) for b in built) else " (missing)")
        for part in task_info(task).parts
    ]
    return summary


def _table(summaries: dict[str, dict]) -> str:
    def count(s, key):
        return f"{s[key]} of {s['paper'][key]}" if "paper" in s and s[key] != s["paper"][key] else str(s[key])

    rows = [("task", "size", "train", "test", "source files")]
    rows += [
        (task, count(s, "size"), count(s, "train"), count(s, "test"), ", ".join(s["sources"]))
        for task, s in summaries.items()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r[:4], widths))) + "  " + r[4]
        for r in rows
    ]
    for task, s in summaries.items():
        lines += [f"{task}: {m}" for m in s.get("missing", [])]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])}; expected only flags")
    if FLAGS.data_dir is None and not FLAGS.download:
        raise UserError(
            "--data_dir is required (a folder with raw/ and splits/, e.g. ../shared/data), or pass --download"
        )
    if FLAGS.data_dir is not None and not pathlib.Path(FLAGS.data_dir).is_dir():
        raise UserError(f"--data_dir={FLAGS.data_dir}: not a folder; expected one with raw/ and splits/")
    summaries = {task: summarize(task, FLAGS.data_dir, FLAGS.cache_dir, FLAGS.download) for task in FLAGS.tasks}
    if FLAGS.tfds_dir:
        from rt_jax.tasks.tfds_builder import build  # tensorflow_datasets is slow to import: only here

        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the table / JSON
            for task in FLAGS.tasks:
                build(task, FLAGS.tfds_dir, raw_data_dir=FLAGS.data_dir)
    if FLAGS.json:
        print(json.dumps({t: {k: v for k, v in s.items() if k != "sources"} for t, s in summaries.items()}))
    else:
        print(_table(summaries))
    sys.stdout.flush()


def run() -> None:
    run_main(main, define_flags)


if __name__ == "__main__":
    run()
