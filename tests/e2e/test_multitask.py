"""Multi-task training (Distilling Step-by-Step, `ft_cot_mt`) end to end on a tiny byte-level
student: real MultiArith questions, Kojima et al.'s rationales imported into the real cache, the
real config file, training loop, decoding and scoring, on a few questions (a small split file)."""

import json
import os

import pytest
from e2e_helpers import paper_config

from rt_jax.tasks import load_dataset, load_split, score
from rt_jax.teacher.import_kojima import LOG_DIR, import_log
from rt_jax.teacher.store import RationaleStore

NUM_TRAIN, NUM_TEST = 8, 8


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, data_dir):
    """(data_dir with a split `mt_small`: 8 train questions the teacher got right, 8 test ones; cache)."""
    cache = tmp_path_factory.mktemp("mt_cache")
    store = RationaleStore(cache)
    problems = []
    import_log(store, data_dir / LOG_DIR / "multiarith_zero_shot_cot.log", data_dir, problems)
    assert not problems
    split = load_split("multiarith", data_dir)
    right = {r.sample_index for r in store.read("text-davinci-002", "zs_cot", "multiarith") if r.correct}
    root = tmp_path_factory.mktemp("mt_data")
    os.symlink(data_dir / "raw", root / "raw")
    (root / "splits").mkdir()
    small = {"train": [i for i in split.train if i in right][:NUM_TRAIN], "test": split.test[:NUM_TEST]}
    (root / "splits" / "multiarith__mt_small.json").write_text(json.dumps(small))
    return root, cache


@pytest.mark.slow  # 15-25 s each on the shared 2-core machine (compiling the train step and decoder)
@pytest.mark.parametrize("model,sep", [("gpt2", " ###"), ("t5", "")])
def test_multitask_run_writes_results(model, sep, request, small_data, tmp_path):
    from rt_jax.student import load_student
    from rt_jax.train import loop

    root, cache = small_data
    config = paper_config("multiarith,ft_cot_mt,gpt2", request.getfixturevalue(f"tiny_{model}_dir"), root, cache)
    config.split, config.train.batch_size, config.eval.max_new_tokens = "mt_small", 8, 8
    config.rationale_weight = 2.0
    loaded = load_student(config)
    data = loop.build_data(config, loaded)
    # each question: one [label] example and, at weight 2, two [rationale] examples
    tasks = sorted((p.sample_index, p.prompt.split(" ")[0]) for p in data.pairs)
    train = load_split("multiarith", root, "mt_small").train
    assert tasks == sorted((i, t) for i in train for t in ("[label]", "[rationale]", "[rationale]"))
    results = loop.train(config, tmp_path / "run", loaded=loaded, data=data)

    written = json.loads((tmp_path / "run" / "results.json").read_text())
    assert written["method"] == "ft_cot_mt" and written["final"] == results["final"]
    assert written["teacher"]["cache_method"] == "zs_cot" and written["training_data"]["examples"] == 3 * NUM_TRAIN
    # evaluation prompted the label task and scored the completion as a direct answer
    dataset = load_dataset("multiarith", root)
    records = RationaleStore(tmp_path / "run" / "predictions").read("gpt2", "ft_cot_mt.epoch00", "multiarith")
    assert sorted(r.sample_index for r in records) == load_split("multiarith", root, "mt_small").test
    correct = 0
    for r in records:
        question = dataset[r.sample_index].question.strip()
        assert r.reasoning_prompt == f"[label] {question}{sep}"
        correct += score(
            "multiarith", r.reasoning_completion, dataset[r.sample_index].answer, answer_prefix=None
        ).correct
    assert written["final"]["accuracy"] == pytest.approx(100.0 * correct / NUM_TEST)
