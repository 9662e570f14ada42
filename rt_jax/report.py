"""Tables and plots from finished runs: `python -m rt_jax.report --workdirs=DIR[,DIR...]`.

Reads every results.json under the given workdirs (BUILD_NOTES.md "Results"), averages over
seeds, and writes to --out_dir:
- report.md / report.tex: the paper's table layout, rows method x student, columns tasks
  (the 12 paper tasks in paper order, then any other task); with --compare_paper each cell is
  `ours / paper (ours - paper)`.
- accuracy_vs_D.png: diverse-reasoning degree D against accuracy, one line per student and task.
- accuracy_vs_size.png: student size against accuracy, one panel per task, one line per method.
- report.json: the aggregated numbers.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import pathlib
import statistics
from typing import Iterable, Sequence

from absl import flags

from rt_jax import methods, paper_results, run_dir
from rt_jax.cli import run_main
from rt_jax.errors import UserError

METHOD_ORDER = ("zs", "zs_cot", "fs_cot", "ft", "ft_cot")
# The 12 tasks in the paper's column order (as in the packaged table).
PAPER_TASKS = tuple(dict.fromkeys(r.task for r in paper_results.load_paper_results()))
_REQUIRED = ("task", "method", "student", "best", "final")


@dataclasses.dataclass(frozen=True)
class Cell:
    """Accuracy (percent) of one method x student on one task, averaged over `num_runs` seeds."""

    accuracy: float
    num_runs: int
    paper: float | None = None

    @property
    def difference(self) -> float | None:
        return None if self.paper is None else self.accuracy - self.paper


Key = tuple[str, str, str]  # (method, student, task)


# ---- reading --------------------------------------------------------------------------------


def find_results(workdirs: Iterable[str | pathlib.Path]) -> list[pathlib.Path]:
    """results.json of each workdir, or of every run below it."""
    found = []
    for w in workdirs:
        w = pathlib.Path(w)
        if not w.exists():
            raise UserError(f"--workdirs: {w} does not exist")
        # results.json, and results_sc<N>.json of self-consistency evaluations (rt_jax.evaluate)
        found += (
            sorted(w.glob(run_dir.RESULTS_GLOB))
            if (w / run_dir.RESULTS_FILE).is_file()
            else sorted(w.rglob(run_dir.RESULTS_GLOB))
        )
    if not found:
        raise UserError(f"--workdirs: no {run_dir.RESULTS_FILE} under {', '.join(map(str, workdirs))}")
    return list(dict.fromkeys(found))


def load_result(path: pathlib.Path) -> dict:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable JSON file ({e})") from None
    missing = [k for k in _REQUIRED if not isinstance(result, dict) or k not in result]
    if missing:
        raise UserError(f"{path}: missing field(s) {missing}; expected the results.json format of BUILD_NOTES.md")
    return result


def aggregate(results: Sequence[dict], metric: str = "best") -> dict[Key, Cell]:
    """Mean accuracy over runs (seeds) of each (method, student, task), with the paper's number."""
    runs = collections.defaultdict(list)
    for r in results:
        accuracy = (r.get(metric) or {}).get("accuracy")
        if accuracy is not None:
            runs[(r["method"], r["student"], r["task"])].append(float(accuracy))
    return {
        key: Cell(statistics.fmean(accs), len(accs), paper_results.paper_accuracy(key[1], key[0], key[2]))
        for key, accs in runs.items()
    }


# ---- ordering -------------------------------------------------------------------------------


def method_rank(method: str) -> tuple:
    d = methods.degree(method)
    if d is not None:
        return (len(METHOD_ORDER), d, method)
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER) + 1, 0, method)


def student_size(student: str) -> float | None:
    entry = paper_results.STUDENT_SIZES.get(student)
    return paper_results.size_in_params(entry[1]) if entry else None


def student_label(student: str) -> str:
    entry = paper_results.STUDENT_SIZES.get(student)
    return f"{student} ({entry[1]})" if entry else student


def student_rank(student: str) -> tuple:
    entry = paper_results.STUDENT_SIZES.get(student)
    return (entry[0], student_size(student), student) if entry else ("~", 0.0, student)


def columns(cells: dict[Key, Cell]) -> list[str]:
    """The 12 paper tasks when any run is on one of them, then other tasks (e.g. arith_small)."""
    tasks = {k[2] for k in cells}
    extra = sorted(tasks - set(PAPER_TASKS))
    return (list(PAPER_TASKS) if tasks & set(PAPER_TASKS) else []) + extra


def rows(cells: dict[Key, Cell]) -> list[tuple[str, str]]:
    pairs = {(k[0], k[1]) for k in cells}
    return sorted(pairs, key=lambda p: (method_rank(p[0]), student_rank(p[1])))


# ---- tables ---------------------------------------------------------------------------------


def format_cell(cell: Cell | None, compare_paper: bool) -> str:
    if cell is None:
        return "-"
    text = f"{cell.accuracy:.2f}"
    if compare_paper:
        text += " / -" if cell.paper is None else f" / {cell.paper:.2f} ({cell.difference:+.2f})"
    return text


def _grid(cells: dict[Key, Cell], compare_paper: bool) -> tuple[list[str], list[list[str]]]:
    tasks = columns(cells)
    header = ["method", "student"] + tasks
    body = [
        [m, student_label(s)] + [format_cell(cells.get((m, s, t)), compare_paper) for t in tasks]
        for m, s in rows(cells)
    ]
    return header, body


def markdown_table(cells: dict[Key, Cell], compare_paper: bool = False) -> str:
    header, body = _grid(cells, compare_paper)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def latex_table(cells: dict[Key, Cell], compare_paper: bool = False) -> str:
    header, body = _grid(cells, compare_paper)
    lines = [
        r"\begin{tabular}{ll" + "r" * (len(header) - 2) + "}",
        r"\toprule",
        " & ".join(map(_latex_escape, header)) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(map(_latex_escape, r)) + r" \\" for r in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# ---- plots ----------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def degree_series(cells: dict[Key, Cell]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(student, task) -> [(D, accuracy)] sorted by D, over the diverse-reasoning runs."""
    series = collections.defaultdict(list)
    for (method, student, task), cell in cells.items():
        d = methods.degree(method)
        if d is not None:
            series[(student, task)].append((d, cell.accuracy))
    return {k: sorted(v) for k, v in sorted(series.items())}


def size_series(cells: dict[Key, Cell]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """task -> method -> [(parameters, accuracy)] sorted by size, over students of known size."""
    series = collections.defaultdict(lambda: collections.defaultdict(list))
    for (method, student, task), cell in cells.items():
        size = student_size(student)
        if size is not None:
            series[task][method].append((size, cell.accuracy))
    return {
        t: {m: sorted(v) for m, v in sorted(ms.items(), key=lambda i: method_rank(i[0]))} for t, ms in series.items()
    }


def plot_accuracy_vs_degree(cells: dict[Key, Cell], path: pathlib.Path) -> bool:
    series = degree_series(cells)
    if not series:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for (student, task), points in series.items():
        ax.plot(*zip(*points), marker="o", label=f"{task} / {student}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("diverse reasoning degree D (rationales per question)")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_accuracy_vs_size(cells: dict[Key, Cell], path: pathlib.Path) -> bool:
    series = size_series(cells)
    if not series:
        return False
    plt = _pyplot()
    tasks = [t for t in columns(cells) if t in series]
    ncols = min(4, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3 * nrows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for method, points in series[task].items():
            ax.plot(*zip(*points), marker="o", label=method)
        ax.set_xscale("log")
        ax.set_title(task)
        ax.set_xlabel("student parameters")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize="x-small")
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# ---- the command ----------------------------------------------------------------------------


def build_report(
    workdirs: Sequence[str], out_dir: str | pathlib.Path, metric: str = "best", compare_paper: bool = False
) -> dict[str, pathlib.Path]:
    """Writes the report files; returns {name: path} of those written."""
    if metric not in ("best", "final"):
        raise UserError(f"--metric={metric}: expected best or final")
    run_dir.check_writable(out_dir, "--out_dir")  # before reading the runs
    cells = aggregate([load_result(p) for p in find_results(workdirs)], metric)
    if not cells:
        raise UserError(f"--workdirs: no run has a {metric!r} accuracy yet")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"markdown": out / "report.md", "latex": out / "report.tex", "json": out / "report.json"}
    written["markdown"].write_text(markdown_table(cells, compare_paper), encoding="utf-8")
    written["latex"].write_text(latex_table(cells, compare_paper), encoding="utf-8")
    written["json"].write_text(
        json.dumps(
            [
                {"method": m, "student": s, "task": t, "accuracy": c.accuracy, "num_runs": c.num_runs, "paper": c.paper}
                for (m, s, t), c in sorted(cells.items())
            ],
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    if plot_accuracy_vs_degree(cells, out / "accuracy_vs_D.png"):
        written["accuracy_vs_D"] = out / "accuracy_vs_D.png"
    if plot_accuracy_vs_size(cells, out / "accuracy_vs_size.png"):
        written["accuracy_vs_size"] = out / "accuracy_vs_size.png"
    return written


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command's flags; defined on start, so that one app may import another's module."""
    flags.DEFINE_list("workdirs", None, "Run workdirs (or folders holding several runs), comma-separated.")
    flags.DEFINE_string("out_dir", "report", "Where report.md, report.tex, report.json and the plots go.")
    flags.DEFINE_enum("metric", "best", ["best", "final"], "Best accuracy over epochs (the paper's) or the last.")
    flags.DEFINE_bool("compare_paper", False, "Put the paper's published accuracy and the difference in each cell.")


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass runs with --workdirs")
    if not FLAGS.workdirs:
        raise UserError("--workdirs is required: the run directories to report on")
    written = build_report(FLAGS.workdirs, FLAGS.out_dir, FLAGS.metric, FLAGS.compare_paper)
    print(written["markdown"].read_text(encoding="utf-8"), end="")
    for name, path in written.items():
        print(f"wrote {name}: {path}")


def run():
    run_main(main, define_flags)


if __name__ == "__main__":
    run()
