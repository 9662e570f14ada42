"""reasoning-teacher CompletionDataset import/export (lossless round trip) and the paper's selection."""

import json

import pytest

from rt_jax.errors import UserError
from rt_jax.tasks import load_dataset, score
from rt_jax.teacher.reasoning_teacher import export_rt, import_rt_file, write_json_new
from rt_jax.teacher.record import Record
from rt_jax.teacher.select import select_rationales
from rt_jax.teacher.store import RationaleStore

TRIGGER = "\nTherefore, the answer (arabic numerals) is"


def rt_file(data_dir, samples=(0, 5, 7), per_sample=3):
    """A CompletionDataset as reasoning-teacher's infer_completion_data saves it (zs_cot, sampled)."""
    ds = load_dataset("multiarith", data_dir)
    data = {}
    for s in samples:
        ex = ds[s]
        items = []
        for c in range(per_sample):
            reasoning_prompt = f"Q: {ex.question}\nA: Let's think step by step."
            rationale = f" Step {c}: the answer is {ex.answer if c != 1 else 'unclear'}."
            items.append(
                {
                    "sample_index": s,
                    "completion_index": c,
                    "question": ex.question,
                    "answer": ex.answer,
                    "reasoning_prompt": reasoning_prompt,
                    "reasoning_completion": rationale,
                    "reasoning_finish_reason": "stop" if c else "length",
                    "prompt": reasoning_prompt + rationale + TRIGGER,
                    "completion": f" {ex.answer if c != 1 else 0}.",
                    "finish_reason": "stop",
                }
            )
        data[str(s)] = items
    metadata = {
        "base_model": "text-davinci-002",
        "dataset_key": "multiarith",
        "completion_key": "zs_cot_t70",
        "finetune_key": None,
        "train_key": None,
        "epoch": None,
        "prediction_template": "zs_cot",
        "reasoning_temperature": 0.7,
        "reasoning_max_tokens": 128,
    }
    return {"metadata": metadata, "data": data}


def test_import_then_export_gives_back_the_same_json(tmp_path, data_dir):
    original = rt_file(data_dir)
    # Variations the format allows: an item without the reasoning step, a null, an unknown key.
    odd = original["data"]["7"][2]
    for key in ("reasoning_prompt", "reasoning_completion", "reasoning_finish_reason"):
        del odd[key]
    original["data"]["7"][1]["finish_reason"] = None
    original["data"]["5"][0]["reasoning_prompt"] = None
    original["data"]["5"][0]["logprobs"] = {"tokens": [" 1"], "top": [[0.5]]}
    path = tmp_path / "D_multiarith.json"
    path.write_text(json.dumps(original, indent=4), encoding="utf-8")
    store = RationaleStore(tmp_path / "cache")
    problems = []
    counts = import_rt_file(store, path, data_dir, problems)
    assert problems == [] and counts["written"] == counts["completions"] == 9
    exported = export_rt(store, "text-davinci-002", "zs_cot_t70", "multiarith")
    assert exported == original
    assert list(exported["data"]["7"][2]) == list(odd)  # key order kept too
    records = store.read("text-davinci-002", "zs_cot_t70", "multiarith")
    for r in records:
        item = original["data"][str(r.sample_index)][r.completion_index]
        assert r.correct == score("multiarith", item["completion"], item["answer"]).correct
        assert r.correct == (r.completion_index != 1)
    again = import_rt_file(store, path, data_dir, problems)
    assert (again["written"], again["already_cached"]) == (0, 9)


def test_bad_items_are_reported_by_position_and_the_rest_imported(tmp_path, data_dir):
    original = rt_file(data_dir)
    del original["data"]["0"][1]["completion"]
    original["data"]["5"][0]["sample_index"] = 6
    original["data"]["7"][2]["completion_index"] = "two"
    original["data"]["9"] = "not a list"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(original), encoding="utf-8")
    problems = []
    counts = import_rt_file(RationaleStore(tmp_path / "cache"), path, data_dir, problems)
    assert counts["written"] == 6 and counts["skipped"] == 4
    assert problems[0].startswith(f"{path}: data['0'][1]: missing ['completion']")
    assert problems[1].startswith(f"{path}: data['5'][0]: sample_index 6 filed under '5'")
    assert problems[2].startswith(f"{path}: data['7'][2]: 'completion_index' must be a non-negative integer")
    assert problems[3].startswith(f"{path}: data['9']: expected a list")
    path.write_text(json.dumps({"metadata": {"dataset_key": "nope"}, "data": {}}), encoding="utf-8")
    with pytest.raises(UserError, match="dataset_key='nope'"):
        import_rt_file(RationaleStore(tmp_path / "cache"), path, data_dir, [])


def test_records_from_elsewhere_export_in_reasoning_teachers_zs_cot_shape(tmp_path, data_dir):
    ds = load_dataset("multiarith", data_dir)
    store = RationaleStore(tmp_path / "a")
    with store.writer("tiny", "zs_cot", "multiarith") as w:
        for s in (3, 1):
            p1 = f"Q: {ds[s].question.strip()}\nA: Let's think step by step."
            w.append(
                Record(
                    "tiny",
                    "zs_cot",
                    "multiarith",
                    s,
                    0,
                    p1,
                    " r",
                    p1 + " r " + TRIGGER,
                    f" {ds[s].answer}",
                    "stop",
                    "length",
                    ds[s].answer,
                    True,
                    {},
                )
            )
    exported = export_rt(store, "tiny", "zs_cot", "multiarith", data_dir)
    assert exported["metadata"]["dataset_key"] == "multiarith" and exported["metadata"]["base_model"] == "tiny"
    item = exported["data"]["1"][0]
    assert (
        item["question"],
        item["answer"],
        item["completion"],
        item["finish_reason"],
        item["reasoning_finish_reason"],
    ) == (ds[1].question, ds[1].answer, f" {ds[1].answer}", "length", "stop")
    out = tmp_path / "out.json"
    write_json_new(out, exported)
    with pytest.raises(UserError, match="already exists"):
        write_json_new(out, exported)
    other = RationaleStore(tmp_path / "b")
    import_rt_file(other, out, data_dir, [])
    back = other.read("tiny", "zs_cot", "multiarith")
    assert [(r.sample_index, r.reasoning_completion, r.answer_completion, r.correct) for r in back] == [
        (r.sample_index, r.reasoning_completion, r.answer_completion, r.correct)
        for r in store.read("tiny", "zs_cot", "multiarith")
    ]


def _rec(s, c, correct, rationale):
    return Record("t", "zs_cot_t70", "multiarith", s, c, "p", rationale, "p2", " x", None, None, None, correct, {})


def test_selection_takes_the_first_d_then_the_correct_ones(tmp_path):
    store = RationaleStore(tmp_path)
    pattern = {0: [True, False, True, True], 1: [False, False, True, True], 2: [True, True, True, True]}
    with store.writer("t", "zs_cot_t70", "multiarith") as w:
        for s in (2, 0, 1):  # written out of order; completion order is what counts
            for c in reversed(range(4)):
                w.append(_rec(s, c, pattern[s][c], " same" if s == 2 and c < 3 else f" r{s}{c}"))
    pick = lambda **kw: [
        (r.sample_index, r.completion_index)
        for r in select_rationales(store, "multiarith", "t", "zs_cot_t70", **kw)  # noqa: E731
    ]
    assert pick(sample_indices=[0, 1, 2], max_per_sample=1) == [(0, 0), (2, 0)]
    assert pick(sample_indices=[0, 1, 2], max_per_sample=2) == [(0, 0), (2, 0), (2, 1)]
    assert pick(sample_indices=[1, 0], max_per_sample=4) == [(1, 2), (1, 3), (0, 0), (0, 2), (0, 3)]
    assert pick(sample_indices=[2], max_per_sample=4, dedupe=True) == [(2, 0), (2, 3)]
    assert pick(sample_indices=[1], max_per_sample=2, correct_only=False) == [(1, 0), (1, 1)]
    assert pick(sample_indices=[7], max_per_sample=64) == []
