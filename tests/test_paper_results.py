"""Paper numbers loaded from the packaged CSV match the shared copy of the paper's tables."""

import csv

import pytest

from rt_jax import paper_results as pr


def test_packaged_csv_matches_shared_tables(data_dir):
    with open(data_dir / "paper_results" / "fine_tune_cot_tables.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    loaded = pr.load_paper_results()
    assert len(loaded) == len(rows) == 816
    for row, got in zip(rows, loaded):
        assert (got.student_family, got.method, got.size, got.task) == (
            row["student_family"],
            row["method"],
            row["size"],
            row["task"],
        )
        assert got.accuracy == (float(row["accuracy"]) if row["accuracy"] else None)


def test_lookup_with_rt_jax_names(data_dir):
    with open(data_dir / "paper_results" / "fine_tune_cot_tables.csv", newline="") as f:
        table = {(r["student_family"], r["method"], r["size"], r["task"]): r["accuracy"] for r in csv.DictReader(f)}

    def expect(key):
        return float(table[key]) if table[key] else None

    assert pr.paper_accuracy("gpt2-medium", "ft_cot", "coin_flip") == expect(("gpt2", "ft_cot", "355M", "coin_flip"))
    assert pr.paper_accuracy("flan-t5-large", "zs", "svamp") == expect(("flan_t5", "zs", "700M", "svamp"))
    # Diverse reasoning: D=64 on multiarith/svamp, D=8 elsewhere; other degrees have no paper entry.
    assert pr.paper_accuracy("gpt2", "ft_cot_t70_64aug", "multiarith") == expect(
        ("gpt2", "ft_cot_diverse", "124M", "multiarith")
    )
    assert pr.paper_accuracy("t5-base", "ft_cot_t70_8aug", "date_understanding") == expect(
        ("t5", "ft_cot_diverse", "220M", "date_understanding")
    )
    assert pr.paper_accuracy("gpt2", "ft_cot_t70_8aug", "multiarith") is None
    assert pr.paper_accuracy("gpt2-xl", "ft", "multiarith") is None  # not in the paper
    assert pr.paper_accuracy("gpt2", "ft_cot_t70_8aug", "gsm8k") is None  # empty cell


@pytest.mark.parametrize("label,params", [("124M", 124e6), ("1.5B", 1.5e9), ("60M", 60e6)])
def test_size_in_params(label, params):
    assert pr.size_in_params(label) == pytest.approx(params)
