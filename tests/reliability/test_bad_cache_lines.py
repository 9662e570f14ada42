"""Training on a teacher cache with a garbage line and a wrong-schema record: the training
command refuses by default, naming each bad line (file:line) and the count, before the student
loads; with data.bad_cache_lines=skip it reports them and trains on the rest."""

import json
import logging

import pytest

from rt_jax.configs import paper
from rt_jax.data.pipeline import check_teacher_cache
from rt_jax.errors import UserError
from rt_jax.teacher.import_kojima import import_log
from rt_jax.teacher.store import RationaleStore
from rt_jax.train import loop

LOG = "raw/kojima_zero_shot_cot/log/multiarith_zero_shot_cot.log"


@pytest.fixture(scope="module")
def damaged_cache(data_dir, tmp_path_factory):
    """Kojima's MultiArith rationales with two bad lines appended: (root, shard, their line numbers)."""
    root = tmp_path_factory.mktemp("cache")
    problems = []
    import_log(RationaleStore(root), data_dir / LOG, data_dir, problems)
    assert not problems
    shard = RationaleStore(root).shard_path("text-davinci-002", "zs_cot", "multiarith")
    good = len(shard.read_bytes().splitlines())
    wrong_schema = json.dumps({"teacher": "text-davinci-002", "sample_index": "seven"})
    with open(shard, "a") as f:
        f.write("{not json at all\n" + wrong_schema + "\n")
    return root, shard, (good + 1, good + 2)


def config_for(root, data_dir, tmp_path, **data):
    c = paper.get_config("multiarith,ft_cot,gpt2")
    c.data_dir, c.teacher_cache_dir = str(data_dir), str(root)
    c.model_path = str(tmp_path / "no_such_student")  # loading it would fail with another message
    c.data.update(data)
    return c


def test_training_refuses_bad_cache_lines_before_the_student_loads(damaged_cache, data_dir, tmp_path):
    root, shard, (first, second) = damaged_cache
    with pytest.raises(UserError) as err:
        loop.train(config_for(root, data_dir, tmp_path), tmp_path / "run")
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"teacher cache: 2 bad line(s): {shard}:{first}: ")
    assert line.endswith("--config.data.bad_cache_lines=skip") and "and 1 more" in line
    assert not (tmp_path / "run").exists()  # nothing written


def test_skip_reports_each_bad_line_and_the_count(damaged_cache, data_dir, tmp_path, caplog):
    root, shard, (first, second) = damaged_cache
    with caplog.at_level(logging.WARNING):
        problems = check_teacher_cache(config_for(root, data_dir, tmp_path, bad_cache_lines="skip"))
    assert [p.split(": ")[0] for p in problems] == [f"{shard}:{first}", f"{shard}:{second}"]
    logged = [r.getMessage() for r in caplog.records]
    assert logged == [f"teacher cache: {p}" for p in problems] + [
        "teacher cache: 2 bad line(s) skipped (--config.data.bad_cache_lines=skip)"
    ]


def test_a_clean_cache_and_a_method_without_rationales_pass(data_dir, tmp_path):
    root = tmp_path / "cache"
    import_log(RationaleStore(root), data_dir / LOG, data_dir, [])
    assert check_teacher_cache(config_for(root, data_dir, tmp_path)) == []
    vanilla = config_for(tmp_path / "nowhere", data_dir, tmp_path)
    vanilla.method = "ft"
    assert check_teacher_cache(vanilla) == []
