"""The report: tables and plots built from fake workdirs, checked cell by cell."""

import csv
import json
import statistics
import subprocess
import sys

import matplotlib.image
import pytest

from rt_jax import report
from rt_jax.errors import UserError


def write_run(root, name, task, method, student, best, final=None, seed=0, **identity):
    run = root / name
    run.mkdir(parents=True)
    final = best if final is None else final
    (run / "results.json").write_text(
        json.dumps(
            {
                "task": task,
                "method": method,
                "student": student,
                "seed": seed,
                "teacher": None,
                "epochs": [{"epoch": 1, "step": 10, "accuracy": final, "num_test": 100}],
                "best": {"epoch": 1, "accuracy": best},
                "final": {"epoch": 2, "accuracy": final},
                "wall_time_s": 1.0,
            }
            | identity
        )
    )
    return run


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "a", "multiarith", "ft_cot", "gpt2", 10.0, final=5.0)
    write_run(root, "b", "multiarith", "ft_cot", "gpt2", 20.0, seed=1)  # averaged with a
    write_run(root, "c", "multiarith", "ft_cot", "gpt2-medium", 30.0)
    write_run(root, "d", "multiarith", "ft", "gpt2", 7.5)
    write_run(root, "e", "coin_flip", "ft_cot_t70_8aug", "gpt2", 80.0)
    write_run(root, "f", "coin_flip", "ft_cot_t70_2aug", "gpt2", 60.0)
    write_run(root, "g", "multiarith", "ft_cot_t70_64aug", "gpt2", 40.0)
    return root


def paper_table(data_dir):
    with open(data_dir / "paper_results" / "fine_tune_cot_tables.csv", newline="") as f:
        return {(r["student_family"], r["method"], r["size"], r["task"]): r["accuracy"] for r in csv.DictReader(f)}


def parse_markdown(text, table=0):
    """The `table`-th markdown table of text: (header, rows as dicts)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables, current = tables + [current], []
    lines = tables[table]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return header, [dict(zip(header, (c.strip() for c in l.strip("|").split("|")))) for l in lines[2:]]


def test_markdown_and_latex_tables(runs, tmp_path):
    written = report.build_report([str(runs)], tmp_path / "out")
    header, body = parse_markdown(written["markdown"].read_text())
    assert header[2:] == [
        "single_eq",
        "addsub",
        "multiarith",
        "gsm8k",
        "aqua",
        "svamp",
        "date_understanding",
        "tracking_shuffled_objects",
        "last_letter_concatenation",
        "coin_flip",
        "commonsense_qa",
        "strategy_qa",
    ]
    # rows: methods in paper order (diverse by D), then student size
    assert [(r["method"], r["student"]) for r in body] == [
        ("ft", "gpt2 (124M)"),
        ("ft_cot", "gpt2 (124M)"),
        ("ft_cot", "gpt2-medium (355M)"),
        ("ft_cot_t70_2aug", "gpt2 (124M)"),
        ("ft_cot_t70_8aug", "gpt2 (124M)"),
        ("ft_cot_t70_64aug", "gpt2 (124M)"),
    ]
    assert body[1]["multiarith"] == "15.00 ± 7.07 (n=2)"  # mean and std of seeds 10 and 20
    assert body[1]["coin_flip"] == "-"
    assert body[4]["coin_flip"] == "80.00"
    tex = written["latex"].read_text()
    assert tex.startswith(r"\begin{tabular}{ll" + "r" * 12 + "}")
    assert r"ft\_cot\_t70\_8aug & gpt2 (124M) & - & - & - & - & - & - & - & - & - & 80.00 & - & - \\" in tex
    saved = json.loads(written["json"].read_text())
    entry = next(e for e in saved if (e["method"], e["student"], e["task"]) == ("ft_cot", "gpt2", "multiarith"))
    assert (entry["accuracy"], entry["num_runs"], entry["seeds"]) == (15.0, 2, [0, 1])
    assert entry["std"] == pytest.approx(statistics.stdev([10.0, 20.0]))


def test_final_metric(runs, tmp_path):
    written = report.build_report([str(runs / "a")], tmp_path / "out", metric="final")
    _, body = parse_markdown(written["markdown"].read_text())
    assert body[0]["multiarith"] == "5.00"


def test_compare_paper(runs, tmp_path, data_dir):
    paper = paper_table(data_dir)
    written = report.build_report([str(runs)], tmp_path / "out", compare_paper=True)
    _, body = parse_markdown(written["markdown"].read_text())
    p = float(paper[("gpt2", "ft_cot", "124M", "multiarith")])
    assert body[1]["multiarith"] == f"15.00 ± 7.07 (n=2) / {p:.2f} ({15.0 - p:+.2f})"
    p = float(paper[("gpt2", "ft_cot_diverse", "124M", "coin_flip")])  # D=8 is the paper's degree here
    assert body[4]["coin_flip"] == f"80.00 / {p:.2f} ({80.0 - p:+.2f})"
    p = float(paper[("gpt2", "ft_cot_diverse", "124M", "multiarith")])  # D=64 on multiarith
    assert body[5]["multiarith"] == f"40.00 / {p:.2f} ({40.0 - p:+.2f})"
    assert body[3]["coin_flip"] == "60.00 / -"  # D=2: no paper entry


def test_plots(runs, tmp_path):
    written = report.build_report([str(runs)], tmp_path / "out")
    for name in ("accuracy_vs_D", "accuracy_vs_size"):
        image = matplotlib.image.imread(written[name])
        assert image.ndim == 3 and image.shape[0] > 100
    cells = report.aggregate([report.load_result(p) for p in report.find_results([runs])])
    assert report.degree_series(cells)[("gpt2", "coin_flip", (("split", "default"),))] == [(2, 60.0), (8, 80.0)]
    assert report.size_series(cells)["multiarith"]["ft_cot"] == [(124e6, 15.0), (355e6, 30.0)]


def test_bad_input(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        report.build_report([str(tmp_path / "nope")], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no results.json"):
        report.build_report([str(tmp_path / "empty")], tmp_path / "out")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text('{"task": "multiarith"}')
    with pytest.raises(UserError, match=r"results.json: missing field\(s\) \['method', 'student', 'best', 'final'\]"):
        report.build_report([str(bad)], tmp_path / "out")


def test_command_line(runs, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "rt_jax.report", f"--workdirs={runs}", f"--out_dir={tmp_path / 'o'}", "--compare_paper"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "| ft_cot | gpt2 (124M) |" in out.stdout and (tmp_path / "o" / "report.tex").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "rt_jax.report", f"--workdirs={tmp_path / 'missing'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [f"error: --workdirs: {tmp_path / 'missing'} does not exist"]


def teacher(name):
    return {"name": name, "cache_method": "zs_cot", "num_rationales": 1}


def test_unlike_runs_are_separate_labelled_rows_and_seeds_one_cell(tmp_path, capsys):
    root = tmp_path / "runs"
    write_run(root, "t1", "multiarith", "ft_cot", "gpt2", 40.0, teacher=teacher("text-davinci-002"))
    write_run(root, "t2", "multiarith", "ft_cot", "gpt2", 60.0, teacher=teacher("llama-3.1-70b"))
    lr = {"train.learning_rate": 0.0001}
    write_run(root, "lr1", "multiarith", "ft", "gpt2", 10.0, overrides=lr, defaults="paper:multiarith,ft,gpt2,0")
    write_run(root, "lr2", "multiarith", "ft", "gpt2", 30.0, overrides={}, defaults="paper:multiarith,ft,gpt2,0")
    write_run(root, "s0", "svamp", "ft", "gpt2", 10.0, overrides=lr, defaults="paper:svamp,ft,gpt2,0")
    write_run(root, "s1", "svamp", "ft", "gpt2", 14.0, seed=1, overrides=lr, defaults="paper:svamp,ft,gpt2,1")
    (root / "unfinished").mkdir()
    (root / "unfinished" / "config.json").write_text("{}")
    written = report.build_report([str(root)], tmp_path / "out")
    assert f"skipped {root / 'unfinished'}: no results.json" in capsys.readouterr().err
    _, body = parse_markdown(written["markdown"].read_text())
    cells = {r["method"]: (r["multiarith"], r["svamp"]) for r in body}
    assert cells == {
        "ft [train.learning_rate=0.0001]": ("10.00", "12.00 ± 2.83 (n=2)"),  # two seeds: one cell
        "ft [train.learning_rate=default]": ("30.00", "-"),
        "ft_cot [teacher=llama-3.1-70b]": ("60.00", "-"),  # two teachers stay two rows
        "ft_cot [teacher=text-davinci-002]": ("40.00", "-"),
    }


def test_degree_plot_has_the_papers_form(tmp_path):
    root = tmp_path / "runs"
    for d, acc in ((1, 20.0), (2, 30.0), (4, 45.0)):
        write_run(root, f"d{d}", "multiarith", f"ft_cot_t70_{d}aug", "gpt2", acc)
    write_run(root, "ft", "multiarith", "ft", "gpt2", 5.0)
    write_run(root, "cot", "multiarith", "ft_cot", "gpt2", 18.0)
    cells = report.aggregate([report.load_result(p) for p in report.find_results([root])])
    fig = report.degree_figure(cells)
    (ax,) = [a for a in fig.axes if a.get_visible() and a.lines]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"] and ax.get_xscale() == "log"
    assert fig._suptitle.get_text() == "Accuracy by diverse reasoning degree D"
    lines = {line.get_label(): line.get_ydata() for line in ax.lines}
    assert list(lines["gpt2 (124M)"]) == [20.0, 30.0, 45.0]
    assert list(lines["vanilla fine-tuning, gpt2"]) == [5.0, 5.0] and list(lines["Fine-tune-CoT, gpt2"]) == [18.0, 18.0]
    teacher_line = lines["teacher (paper: GPT-3 175B, Zero-shot-CoT)"]
    assert teacher_line[0] == report.teacher_accuracy("multiarith") > 50


def test_plots_that_cannot_be_drawn_say_why(tmp_path, capsys):
    root = tmp_path / "runs"
    write_run(root, "d4", "multiarith", "ft_cot_t70_4aug", "gpt2", 45.0)
    written = report.build_report([str(root)], tmp_path / "out")
    err = capsys.readouterr().err
    assert "accuracy_vs_D.png not written: needs runs at two or more D values of one student and task; only D=4" in err
    assert "accuracy_vs_size.png not written: needs two or more student sizes" in err
    assert "accuracy_vs_D" not in written and not (tmp_path / "out" / "accuracy_vs_D.png").exists()
    assert "- accuracy_vs_size.png not written: needs two or more student sizes" in written["markdown"].read_text()


def test_accuracy_by_epoch_and_completions_table(tmp_path):
    root = tmp_path / "runs"
    for seed, accs in ((0, (10.0, 30.0)), (1, (20.0, 50.0))):
        epochs = [
            {"epoch": e, "accuracy": a, "num_test": 10, "max_new_tokens": 64, "ended": 50.0 + 10 * seed}
            | {"followed_format": 90.0, "contains_gold": 60.0, "length_mean": 20.0 + seed}
            | {"length_median": 18.0, "length_p90": 40.0}
            for e, a in enumerate(accs)
        ]
        write_run(root, f"s{seed}", "multiarith", "ft_cot", "gpt2", accs[1], seed=seed, epochs=epochs)
    results = [report.load_result(p) for p in report.find_results([root])]
    ((key, points),) = report.epoch_series(results).items()
    assert key[:3] == ("ft_cot", "gpt2", "multiarith")
    assert points == [
        (0, 15.0, pytest.approx(statistics.stdev([10, 20])), 2),
        (1, 40.0, pytest.approx(14.142, 1e-3), 2),
    ]
    written = report.build_report([str(root)], tmp_path / "out")
    assert matplotlib.image.imread(written["accuracy_by_epoch"]).shape[0] > 100
    text = written["markdown"].read_text()
    assert "![accuracy_by_epoch](accuracy_by_epoch.png)" in text
    header, body = parse_markdown(text, table=1)
    assert header[:4] == ["task", "run group", "max tokens", "ended before the limit (%)"]
    assert body[0]["ended before the limit (%)"] == "55.0" and body[0]["length mean"] == "20.5"  # mean over seeds


def test_same_recipe_fields_join_runs_that_differ_only_there(tmp_path):
    """The demo's D runs differ in train.num_epochs (a fixed step budget over more data): named as
    one recipe they form one D series; by default they stay apart and no D figure is drawn."""
    root = tmp_path / "runs"
    for d, epochs, acc in ((2, 38, 59.0), (4, 20, 80.2)):
        overrides = {"num_rationales": d} | ({"train.num_epochs": epochs} if epochs != 20 else {})
        write_run(root, f"d{d}", "multiarith", f"ft_cot_t70_{d}aug", "gpt2", acc, overrides=overrides)
    apart = report.build_report([str(root)], tmp_path / "apart")
    assert "accuracy_vs_D" not in apart
    joined = report.build_report([str(root)], tmp_path / "joined", same_recipe_fields=["train.num_epochs"])
    assert joined["accuracy_vs_D"].exists()
    series = report.degree_series(
        report.aggregate(
            [
                report.same_recipe(r, ["train.num_epochs"])
                for r in (report.load_result(p) for p in report.find_runs([str(root)])[0])
            ]
        )
    )
    assert [points for points in series.values()] == [[(2, 59.0), (4, 80.2)]]
