"""Tables and plots from finished runs: `python -m rt_jax.report --workdirs=DIR[,DIR...]`.

Reads every results.json under the given workdirs (BUILD_NOTES.md "Results"; a workdir without
one is skipped with a line saying so), groups runs by their identity minus the seed (method,
student, task, split, teacher, teacher method and every other override: `variant`), and writes
to --out_dir:
- report.md / report.tex: the paper's table layout, rows method x student (x what else differs,
  named in the row label, e.g. `ft_cot [teacher=llama-3.1-70b]`), columns tasks (the 12 paper
  tasks in paper order, then any other task); a cell is the mean over seeds, with `± std (n=N)`
  when there are several; with --compare_paper `ours / paper (ours - paper)`. report.md also has
  the completions table (ended before the token limit, by limit; format; lengths) and links the plots.
- accuracy_vs_D.png: the paper's diverse-reasoning figure: a panel per task, a line per student
  over D (log axis, plain ticks), vanilla fine-tuning, Fine-tune-CoT and the paper's teacher as
  reference lines.
- accuracy_vs_size.png: student size against accuracy, one panel per task, one line per method.
- accuracy_by_epoch.png: a panel per task, per run group the mean over seeds and its spread (± std).
- length_distribution.png: lengths (generated tokens) of the best epoch's completions per run group.
- report.json: the aggregated numbers.
A plot that cannot be drawn from the runs given is not written; report.md and the command say why.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import pathlib
import statistics
import sys
from typing import Iterable, Sequence

from absl import flags

from rt_jax import methods, paper_results, run_dir
from rt_jax.cli import run_main
from rt_jax.errors import UserError

METHOD_ORDER = ("zs", "zs_cot", "fs_cot", "ft", "ft_cot")
# The 12 tasks in the paper's column order (as in the packaged table).
PAPER_TASKS = tuple(dict.fromkeys(r.task for r in paper_results.load_paper_results()))
_REQUIRED = ("task", "method", "student", "best", "final")
# Named by the key itself, or the same run (seed), or read from results.json's own fields.
_NOT_VARIANT = {"task", "method", "student", "seed", "split", "teacher", "teacher_method", "num_rationales"}

Variant = tuple[tuple[str, str], ...]  # (field, value) sorted: what a run group shares beyond its key
Key = tuple[str, str, str, Variant]  # (method, student, task, variant)


@dataclasses.dataclass(frozen=True)
class Cell:
    """Accuracy (percent) of one run group on one task: the mean over its `num_runs` seeds,
    their sample standard deviation (None for one run), and the paper's number."""

    accuracy: float
    num_runs: int
    paper: float | None = None
    std: float | None = None
    seeds: tuple[int, ...] = ()

    @property
    def difference(self) -> float | None:
        return None if self.paper is None else self.accuracy - self.paper


# ---- reading --------------------------------------------------------------------------------


def find_results(workdirs: Iterable[str | pathlib.Path]) -> list[pathlib.Path]:
    """results.json of each workdir, or of every run below it."""
    return find_runs(workdirs)[0]


def find_runs(workdirs: Iterable[str | pathlib.Path]) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """(results files, run workdirs without a results.json: config.json or a sweep state but
    no results yet) below the given workdirs."""
    workdirs = list(workdirs)
    found, skipped = [], []
    for w in workdirs:
        w = pathlib.Path(w)
        if not w.exists():
            raise UserError(f"--workdirs: {w} does not exist")
        # results.json, and results_sc<N>.json of self-consistency evaluations (rt_jax.evaluate)
        if (w / run_dir.RESULTS_FILE).is_file():
            found += sorted(w.glob(run_dir.RESULTS_GLOB))
            continue
        found += sorted(w.rglob(run_dir.RESULTS_GLOB))
        marks = [run_dir.CONFIG_FILE, "sweep_state.json"]
        candidates = {m.parent for mark in marks for m in ([w / mark] if (w / mark).is_file() else w.rglob(mark))}
        skipped += sorted(c for c in candidates if not (c / run_dir.RESULTS_FILE).is_file())
    if not found:
        raise UserError(f"--workdirs: no {run_dir.RESULTS_FILE} under {', '.join(map(str, workdirs))}")
    return list(dict.fromkeys(found)), skipped


def load_result(path: pathlib.Path) -> dict:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable JSON file ({e})") from None
    missing = [k for k in _REQUIRED if not isinstance(result, dict) or k not in result]
    if missing:
        raise UserError(f"{path}: missing field(s) {missing}; expected the results.json format of BUILD_NOTES.md")
    return result


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def variant(result: dict) -> Variant:
    """What a run's identity holds beyond method, student, task and seed: split, teacher id and
    cache method, the packaged config it started from, every other override."""
    teacher = result.get("teacher") or {}
    items = {"split": result.get("split", "default")}
    if teacher:
        items["teacher"] = teacher.get("name")
        items["teacher_method"] = teacher.get("cache_method")
    if result.get("defaults"):
        items["config"] = str(result["defaults"]).partition(":")[0]
    for key, value in (result.get("overrides") or {}).items():
        if key not in _NOT_VARIANT:
            items[key] = value
    return tuple(sorted((k, _text(v)) for k, v in items.items()))


def group_results(results: Sequence[dict]) -> dict[Key, list[dict]]:
    """Runs that agree on everything but the seed, by their Key."""
    groups = collections.defaultdict(list)
    for r in results:
        groups[(r["method"], r["student"], r["task"], variant(r))].append(r)
    return dict(groups)


def aggregate(results: Sequence[dict], metric: str = "best") -> dict[Key, Cell]:
    """Mean, standard deviation and number of runs (seeds) of each run group, with the paper's number."""
    cells = {}
    for key, runs in group_results(results).items():
        scored = [r for r in runs if (r.get(metric) or {}).get("accuracy") is not None]
        if not scored:
            continue
        accs = [float(r[metric]["accuracy"]) for r in scored]
        cells[key] = Cell(
            statistics.fmean(accs),
            len(accs),
            paper_results.paper_accuracy(key[1], key[0], key[2]),
            statistics.stdev(accs) if len(accs) > 1 else None,
            tuple(sorted(int(r.get("seed", 0)) for r in scored)),
        )
    return cells


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


Row = tuple[str, str, Variant]  # (method, student, variant)


def rows(cells: dict[Key, Cell]) -> list[Row]:
    found = {(k[0], k[1], k[3]) for k in cells}
    return sorted(found, key=lambda r: (method_rank(r[0]), student_rank(r[1]), r[2]))


def differing_fields(keys: Iterable[Key | Row]) -> dict[str, list[str]]:
    """method -> the variant fields whose value is not the same in all its run groups."""
    values = collections.defaultdict(lambda: collections.defaultdict(set))
    variants = collections.defaultdict(list)
    for key in keys:
        variants[key[0]].append(dict(key[-1]))
    for method, found in variants.items():
        for field in {f for v in found for f in v}:
            values[method][field] = {v.get(field, "default") for v in found}
    return {m: sorted(f for f, vs in fields.items() if len(vs) > 1) for m, fields in values.items()}


def method_label(method: str, var: Variant, shown: Sequence[str]) -> str:
    """`ft_cot [teacher=llama-3.1-70b, train.learning_rate=0.0001]`: the method and what sets
    this run group apart from the method's others (nothing when it is the only one)."""
    values = dict(var)
    parts = [f"{field}={values.get(field, 'default')}" for field in shown]
    return f"{method} [{', '.join(parts)}]" if parts else method


def row_labels(keys: Iterable[Key | Row]) -> dict[Row, str]:
    keys = list(keys)
    shown = differing_fields(keys)
    return {(k[0], k[1], k[-1]): method_label(k[0], k[-1], shown.get(k[0], [])) for k in keys}


# ---- tables ---------------------------------------------------------------------------------


def format_cell(cell: Cell | None, compare_paper: bool) -> str:
    if cell is None:
        return "-"
    text = f"{cell.accuracy:.2f}"
    if cell.num_runs > 1:
        text += f" ± {cell.std:.2f} (n={cell.num_runs})"
    if compare_paper:
        text += " / -" if cell.paper is None else f" / {cell.paper:.2f} ({cell.difference:+.2f})"
    return text


def _grid(cells: dict[Key, Cell], compare_paper: bool) -> tuple[list[str], list[list[str]]]:
    tasks = columns(cells)
    header = ["method", "student"] + tasks
    labels = row_labels(cells)
    body = [
        [labels[(m, s, v)], student_label(s)] + [format_cell(cells.get((m, s, t, v)), compare_paper) for t in tasks]
        for m, s, v in rows(cells)
    ]
    return header, body


def markdown_table(cells: dict[Key, Cell], compare_paper: bool = False) -> str:
    header, body = _grid(cells, compare_paper)
    return _markdown(header, body)


def _markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
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


def _save(fig, path: pathlib.Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)


def _panels(count: int, width: float = 4.5, height: float = 3.4):
    ncols = min(3, count)
    nrows = math.ceil(count / ncols)
    fig, axes = _pyplot().subplots(nrows, ncols, figsize=(width * ncols, height * nrows + 0.6), squeeze=False)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    return fig, list(axes.flat)[:count]


def degree_series(cells: dict[Key, Cell]) -> dict[tuple[str, str, Variant], list[tuple[int, float]]]:
    """(student, task, variant) -> [(D, accuracy)] sorted by D, over the diverse-reasoning runs."""
    series = collections.defaultdict(list)
    for (method, student, task, var), cell in cells.items():
        d = methods.degree(method)
        if d is not None:
            series[(student, task, var)].append((d, cell.accuracy))
    return {k: sorted(v) for k, v in sorted(series.items())}


def size_series(cells: dict[Key, Cell]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """task -> method label -> [(parameters, accuracy)] sorted by size, over students of known size."""
    labels = row_labels(cells)
    series = collections.defaultdict(lambda: collections.defaultdict(list))
    for (method, student, task, var), cell in cells.items():
        size = student_size(student)
        if size is not None:
            series[task][labels[(method, student, var)]].append((size, cell.accuracy))
    return {
        t: {m: sorted(v) for m, v in sorted(ms.items(), key=lambda i: method_rank(i[0].split(" [")[0]))}
        for t, ms in series.items()
    }


def degree_plot_missing(cells: dict[Key, Cell]) -> str | None:
    """Why accuracy_vs_D.png cannot be drawn from these runs (None: it can)."""
    series = degree_series(cells)
    if not series:
        return "needs diverse-reasoning runs (ft_cot_t70_<D>aug) at two or more D values; there are none"
    if all(len(points) < 2 for points in series.values()):
        ds = sorted({d for points in series.values() for d, _ in points})
        return f"needs runs at two or more D values of one student and task; only D={','.join(map(str, ds))} was run"
    return None


def size_plot_missing(cells: dict[Key, Cell]) -> str | None:
    """Why accuracy_vs_size.png cannot be drawn (None: it can)."""
    if not any(len(points) > 1 for ms in size_series(cells).values() for points in ms.values()):
        return "needs two or more student sizes"
    return None


def teacher_accuracy(task: str) -> float | None:
    """The paper's teacher (text-davinci-002, Zero-shot-CoT) on `task`."""
    found = [r.accuracy for r in paper_results.load_paper_results() if r.method == "teacher_zs_cot" and r.task == task]
    return found[0] if found else None


def _reference(cells: dict[Key, Cell], method: str, student: str, task: str) -> float | None:
    found = [c.accuracy for (m, s, t, _), c in cells.items() if (m, s, t) == (method, student, task)]
    return found[0] if found else None


def degree_figure(cells: dict[Key, Cell]):
    """The paper's diverse-reasoning figure: a panel per task, a line per student over D (log
    axis, plain tick labels), vanilla fine-tuning and Fine-tune-CoT of that student (dashed,
    dotted) and the paper's teacher (grey) as reference lines."""
    series = {k: v for k, v in degree_series(cells).items() if len(v) > 1}
    tasks = [t for t in columns(cells) if any(k[1] == t for k in series)]
    fig, axes = _panels(len(tasks))
    shown = differing_fields([(f"D:{s}", s, v) for s, _, v in series])
    colors = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, task in zip(axes, tasks):
        ds = sorted({d for (_, t, _), pts in series.items() if t == task for d, _ in pts})
        for i, ((student, _, var), points) in enumerate(k for k in series.items() if k[0][1] == task):
            color = colors[i % len(colors)]
            label = method_label(student_label(student), var, shown.get(f"D:{student}", []))
            ax.plot(*zip(*points), marker="o", color=color, label=label)
            for method, style, name in (("ft", "--", "vanilla fine-tuning"), ("ft_cot", ":", "Fine-tune-CoT")):
                ref = _reference(cells, method, student, task)
                if ref is not None:
                    ax.axhline(ref, linestyle=style, color=color, linewidth=1, label=f"{name}, {student}")
        teacher = teacher_accuracy(task)
        if teacher is not None:
            ax.axhline(
                teacher, linestyle="-.", color="grey", linewidth=1, label="teacher (paper: GPT-3 175B, Zero-shot-CoT)"
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(ds)
        ax.set_xticklabels([str(d) for d in ds])
        ax.xaxis.set_minor_locator(_pyplot().NullLocator())
        ax.set_title(task)
        ax.set_xlabel("diverse reasoning degree D (rationales per question)")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize="x-small")
    fig.suptitle("Accuracy by diverse reasoning degree D")
    return fig


def plot_accuracy_vs_degree(cells: dict[Key, Cell], path: pathlib.Path) -> bool:
    """Writes accuracy_vs_D.png; False (nothing written) when degree_plot_missing says why."""
    if degree_plot_missing(cells):
        return False
    _save(degree_figure(cells), path)
    return True


def plot_accuracy_vs_size(cells: dict[Key, Cell], path: pathlib.Path) -> bool:
    """Writes accuracy_vs_size.png; False (nothing written) when size_plot_missing says why."""
    if size_plot_missing(cells):
        return False
    series = size_series(cells)
    tasks = [t for t in columns(cells) if t in series]
    fig, axes = _panels(len(tasks), 4, 3)
    for ax, task in zip(axes, tasks):
        for label, points in series[task].items():
            ax.plot(*zip(*points), marker="o", label=label)
        ax.set_xscale("log")
        ax.set_title(task)
        ax.set_xlabel("student parameters")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize="x-small")
    fig.suptitle("Accuracy by student size")
    _save(fig, path)
    return True


def _group_labels(groups: dict[Key, list[dict]]) -> dict[Key, str]:
    labels = row_labels(groups)
    return {k: f"{labels[(k[0], k[1], k[3])]}, {k[1]}" for k in groups}


def epoch_series(results: Sequence[dict]) -> dict[Key, list[tuple[int, float, float, int]]]:
    """Run group -> [(epoch, mean accuracy over seeds, std (0 for one run), runs)] over the
    evaluated epochs."""
    out = {}
    for key, runs in group_results(results).items():
        by_epoch = collections.defaultdict(list)
        for r in runs:
            for e in r.get("epochs") or []:
                if e.get("accuracy") is not None:
                    by_epoch[e["epoch"]].append(float(e["accuracy"]))
        out[key] = [
            (ep, statistics.fmean(a), statistics.stdev(a) if len(a) > 1 else 0.0, len(a))
            for ep, a in sorted(by_epoch.items())
        ]
    return out


def plot_accuracy_by_epoch(results: Sequence[dict], path: pathlib.Path) -> str | None:
    """Writes accuracy_by_epoch.png (a panel per task, per run group the mean over seeds and a
    ± std band); returns why not when no group was evaluated at two or more epochs."""
    series = {k: v for k, v in epoch_series(results).items() if len(v) > 1}
    if not series:
        return "needs runs evaluated at two or more epochs"
    labels = _group_labels(group_results(results))
    tasks = list(dict.fromkeys(k[2] for k in sorted(series, key=lambda k: (k[2], method_rank(k[0])))))
    fig, axes = _panels(len(tasks))
    for ax, task in zip(axes, tasks):
        for key, points in series.items():
            if key[2] != task:
                continue
            epochs, mean, std, n = zip(*points)
            line = ax.plot(epochs, mean, marker=".", label=f"{labels[key]} (n={max(n)})")[0]
            ax.fill_between(
                epochs,
                [m - s for m, s in zip(mean, std)],
                [m + s for m, s in zip(mean, std)],
                color=line.get_color(),
                alpha=0.2,
            )
        ax.xaxis.set_major_locator(_pyplot().MaxNLocator(integer=True))
        ax.set_title(task)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize="x-small")
    fig.suptitle("Accuracy by epoch (mean over seeds, band: ± std)")
    _save(fig, path)
    return None


def chosen_epoch(result: dict, metric: str) -> dict | None:
    """The epoch record of results.json's best or final epoch."""
    at = (result.get(metric) or {}).get("epoch")
    return next((e for e in result.get("epochs") or [] if e.get("epoch") == at), None)


def completion_lengths(path: pathlib.Path, result: dict, metric: str) -> list[int]:
    """Generated tokens of the first completion of each test question at the chosen epoch,
    from the run's predictions (empty when they are not there or carry no token counts)."""
    from rt_jax.evaluation import predictions

    epoch = chosen_epoch(result, metric)
    folder = path.parent / run_dir.PREDICTIONS_DIR
    if epoch is None or not folder.is_dir():
        return []
    method = predictions.predictions_method(result["method"], epoch["epoch"])
    try:
        records = predictions.read_predictions(folder, result["student"], method, result["task"])
    except (OSError, UserError):
        return []
    firsts = [recs[0] for recs in records.values() if recs and recs[0].completion_index == 0]
    return [r.extra["num_tokens"] for r in firsts if "num_tokens" in r.extra]


def plot_length_distribution(runs: Sequence[tuple[pathlib.Path, dict]], path: pathlib.Path, metric: str) -> str | None:
    """Writes length_distribution.png: per task, a histogram per run group of the generated
    lengths at the chosen epoch (all seeds); returns why not when no predictions have lengths."""
    results = [r for _, r in runs]
    keys = {id(r): k for k, rs in group_results(results).items() for r in rs}
    lengths = collections.defaultdict(list)
    for file, r in runs:
        lengths[keys[id(r)]] += completion_lengths(file, r, metric)
    lengths = {k: v for k, v in lengths.items() if v}
    if not lengths:
        return "needs predictions with token counts (runs evaluated by this version of rt_jax.evaluation)"
    labels = _group_labels(group_results(results))
    tasks = list(dict.fromkeys(sorted(k[2] for k in lengths)))
    fig, axes = _panels(len(tasks))
    for ax, task in zip(axes, tasks):
        for key, values in sorted(lengths.items(), key=lambda i: (method_rank(i[0][0]), i[0][1])):
            if key[2] == task:
                ax.hist(values, bins=30, histtype="step", linewidth=1.5, label=labels[key])
        ax.set_title(task)
        ax.set_xlabel("generated tokens")
        ax.set_ylabel("completions")
        ax.legend(fontsize="x-small")
    fig.suptitle(f"Length of generated rationales ({metric} epoch)")
    _save(fig, path)
    return None


COMPLETION_COLUMNS = (
    ("max_new_tokens", "max tokens", "{:.0f}"),
    ("ended", "ended before the limit (%)", "{:.1f}"),
    ("followed_format", "followed the format (%)", "{:.1f}"),
    ("contains_gold", "gold answer anywhere (%)", "{:.1f}"),
    ("length_mean", "length mean", "{:.1f}"),
    ("length_median", "median", "{:.1f}"),
    ("length_p90", "p90", "{:.1f}"),
)


def completions_table(results: Sequence[dict], metric: str) -> str | None:
    """Markdown: per run group and task, the chosen epoch's completion summaries (mean over
    seeds), by max token limit: the paper's inference-length table. None when no run has them."""
    groups = group_results(results)
    labels = _group_labels(groups)
    body = []
    for key in sorted(groups, key=lambda k: (k[2], method_rank(k[0]), student_rank(k[1]), k[3])):
        epochs = [e for e in (chosen_epoch(r, metric) for r in groups[key]) if e and "ended" in e]
        if not epochs:
            continue
        cells = []
        for field, _, fmt in COMPLETION_COLUMNS:
            values = [e[field] for e in epochs if e.get(field) is not None]
            cells.append(fmt.format(statistics.fmean(values)) if values else "-")
        body.append((key[2], labels[key], cells))
    if not body:
        return None
    body.sort(key=lambda b: (b[0], b[1], float(b[2][0]) if b[2][0] != "-" else 0.0))
    header = ["task", "run group"] + [title for _, title, _ in COMPLETION_COLUMNS]
    return _markdown(header, [[t, label, *cells] for t, label, cells in body])


# ---- the command ----------------------------------------------------------------------------


PLOTS = ("accuracy_vs_D", "accuracy_vs_size", "accuracy_by_epoch", "length_distribution")


def same_recipe(result: dict, fields: Sequence[str]) -> dict:
    """`result` without the overrides named in `fields`: runs that differ only in those are one
    recipe to the report (e.g. the demo's train.num_epochs, derived from a fixed step budget and
    each method's data size). The default, no fields, keeps every difference apart."""
    overrides = result.get("overrides") or {}
    if not any(f in overrides for f in fields):
        return result
    return dict(result, overrides={k: v for k, v in overrides.items() if k not in fields})


def build_report(
    workdirs: Sequence[str],
    out_dir: str | pathlib.Path,
    metric: str = "best",
    compare_paper: bool = False,
    same_recipe_fields: Sequence[str] = (),
) -> dict[str, pathlib.Path]:
    """Writes the report files; returns {name: path} of those written. Prints a line to stderr
    per skipped workdir (no results.json) and per plot not written (why). Overrides named in
    `same_recipe_fields` do not set runs apart (`same_recipe`)."""
    if metric not in ("best", "final"):
        raise UserError(f"--metric={metric}: expected best or final")
    run_dir.check_writable(out_dir, "--out_dir")  # before reading the runs
    files, skipped = find_runs(workdirs)
    for workdir in skipped:
        print(f"skipped {workdir}: no {run_dir.RESULTS_FILE} (not started or not finished)", file=sys.stderr)
    runs = [(p, same_recipe(load_result(p), same_recipe_fields)) for p in files]
    results = [r for _, r in runs]
    cells = aggregate(results, metric)
    if not cells:
        raise UserError(f"--workdirs: no run has a {metric!r} accuracy yet")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"markdown": out / "report.md", "latex": out / "report.tex", "json": out / "report.json"}
    missing = {}
    if plot_accuracy_vs_degree(cells, out / "accuracy_vs_D.png"):
        written["accuracy_vs_D"] = out / "accuracy_vs_D.png"
    else:
        missing["accuracy_vs_D"] = degree_plot_missing(cells)
    if plot_accuracy_vs_size(cells, out / "accuracy_vs_size.png"):
        written["accuracy_vs_size"] = out / "accuracy_vs_size.png"
    else:
        missing["accuracy_vs_size"] = size_plot_missing(cells)
    for name, why in (
        ("accuracy_by_epoch", plot_accuracy_by_epoch(results, out / "accuracy_by_epoch.png")),
        ("length_distribution", plot_length_distribution(runs, out / "length_distribution.png", metric)),
    ):
        if why is None:
            written[name] = out / f"{name}.png"
        else:
            missing[name] = why
    for name, why in missing.items():
        print(f"{name}.png not written: {why}", file=sys.stderr)
    written["markdown"].write_text(_report_markdown(cells, results, metric, compare_paper, written, missing), "utf-8")
    written["latex"].write_text(latex_table(cells, compare_paper), encoding="utf-8")
    labels = row_labels(cells)
    written["json"].write_text(
        json.dumps(
            [
                {
                    "method": m,
                    "label": labels[(m, s, v)],
                    "student": s,
                    "task": t,
                    "variant": dict(v),
                    "accuracy": c.accuracy,
                    "std": c.std,
                    "num_runs": c.num_runs,
                    "seeds": list(c.seeds),
                    "paper": c.paper,
                }
                for (m, s, t, v), c in sorted(cells.items())
            ],
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    return written


def _report_markdown(cells, results, metric, compare_paper, written, missing) -> str:
    parts = [f"## Accuracy (%, {metric} epoch; mean ± std over seeds)\n", markdown_table(cells, compare_paper)]
    table = completions_table(results, metric)
    if table:
        parts += [f"\n## Completions at the {metric} epoch (mean over seeds)\n", table]
    plots = [n for n in PLOTS if n in written]
    if plots or missing:
        parts.append("\n## Plots\n")
    parts += [f"![{n}]({n}.png)\n" for n in plots]
    parts += [f"- {n}.png not written: {why}\n" for n, why in missing.items()]
    return "\n".join(parts)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command's flags; defined on start, so that one app may import another's module."""
    flags.DEFINE_list("workdirs", None, "Run workdirs (or folders holding several runs), comma-separated.")
    flags.DEFINE_string("out_dir", "report", "Where report.md, report.tex, report.json and the plots go.")
    flags.DEFINE_enum("metric", "best", ["best", "final"], "Best accuracy over epochs (the paper's) or the last.")
    flags.DEFINE_bool("compare_paper", False, "Put the paper's published accuracy and the difference in each cell.")
    flags.DEFINE_list(
        "same_recipe",
        [],
        "Override fields that do not set runs apart (e.g. train.num_epochs when runs share a step budget); "
        "by default runs that differ in any override are separate rows.",
    )


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass runs with --workdirs")
    if not FLAGS.workdirs:
        raise UserError("--workdirs is required: the run directories to report on")
    written = build_report(FLAGS.workdirs, FLAGS.out_dir, FLAGS.metric, FLAGS.compare_paper, FLAGS.same_recipe)
    print(written["markdown"].read_text(encoding="utf-8"), end="")
    for name, path in written.items():
        print(f"wrote {name}: {path}")


def run():
    run_main(main, define_flags)


if __name__ == "__main__":
    run()
