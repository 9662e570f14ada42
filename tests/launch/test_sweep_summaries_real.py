"""A tiny real sweep (`python -m rt_jax.train` on a 1-layer byte-level GPT-2, 8 training
questions, D = 1, 2 x seeds 0, 1): the per-epoch completion summaries in results.json agree with
the saved predictions, and the report averages the seeds and writes and links its plots."""

import json
import statistics

import pytest
from launch_helpers import make_tiny_setup, run_cli, write_sweep_config

from launch import grid
from rt_jax import configs, formats, methods
from rt_jax.evaluation import predictions, summaries
from rt_jax.tasks import score


@pytest.mark.slow
def test_tiny_real_sweep_summaries_and_plots(tmp_path, data_dir):
    student = make_tiny_setup(tmp_path / "tiny", data_dir)
    root = tmp_path / "sweep"
    config = write_sweep_config(
        tmp_path / "sweep.py",
        root,
        command=grid.DEFAULT_COMMAND,
        parallel=2,
        tasks=("multiarith",),
        methods=("ft_cot_t70_{D}aug",),
        num_rationales=(1, 2),
        seeds=(0, 1),
        overrides={
            "data_dir": str(data_dir),
            "teacher_cache_dir": str(tmp_path / "tiny" / "teacher_cache"),
            "teacher": "oracle",
            "model_path": str(student),
            "max_train_examples": 8,
            "train": {"num_epochs": 2, "batch_size": 8, "max_seq_len": 512},
            "eval": {"max_new_tokens": 12, "batch_size": 64},
        },
    )
    done = run_cli("sweep", f"--sweep={config}", "--poll_seconds=0.2", timeout=900)
    assert done.returncode == 0, done.stderr + done.stdout
    runs = grid.expand(configs.load(config))
    assert len(runs) == 4 and all(dict(r.overrides)["max_train_examples"] == "8" for r in runs)

    for run in runs:
        workdir = root / "runs" / run.name
        results = json.loads((workdir / "results.json").read_text())
        assert results["training_data"]["questions"] == 8
        template = methods.template(run.method)
        for epoch in results["epochs"]:
            shard = predictions.read_predictions(
                workdir / "predictions",
                run.student,
                predictions.predictions_method(run.method, epoch["epoch"]),
                run.task,
            )
            firsts = [recs[0] for recs in shard.values()]
            assert len(firsts) == epoch["num_test"] > 0
            assert {k: epoch[k] for k in summaries.SUMMARY_KEYS} == pytest.approx(summaries.summarize(firsts))
            # ... and from the completions' texts, independently of the stored flags
            prefix = formats.answer_prefix(template)
            texts = [r.reasoning_completion for r in firsts]
            assert epoch["followed_format"] == pytest.approx(100 * statistics.fmean(prefix in t for t in texts))
            gold_anywhere = [
                summaries.contains_gold(
                    run.task, score(run.task, r.reasoning_completion, r.extra["gold"]).candidates, r.extra["gold"]
                )
                for r in firsts
            ]
            assert epoch["contains_gold"] == pytest.approx(100 * statistics.fmean(gold_anywhere))
            assert epoch["contains_gold"] >= epoch["accuracy"]
            lengths = [r.extra["num_tokens"] for r in firsts]
            assert max(lengths) <= epoch["max_new_tokens"] == 12
            ended = [r.reasoning_finish_reason != "length" for r in firsts]
            assert epoch["ended"] == pytest.approx(100 * statistics.fmean(ended))
            assert all(n == 12 for n, e in zip(lengths, ended) if not e)  # cut ones used the whole budget

    out = root / "report"
    report_md = (out / "report.md").read_text()
    for name in ("accuracy_vs_D", "accuracy_by_epoch", "length_distribution"):
        assert (out / f"{name}.png").stat().st_size > 10_000
        assert f"![{name}]({name}.png)" in report_md
    assert "accuracy_vs_size.png not written: needs two or more student sizes" in report_md
    assert "(n=2)" in report_md  # two seeds, one cell
    assert "ended before the limit" in report_md
