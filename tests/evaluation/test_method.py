"""Self-consistency's vote and the evaluate command's workdir rules (rt_jax.run_dir's, as
training's): checked before the student loads."""

import pytest

from rt_jax import evaluation, run_dir
from rt_jax.configs import paper
from rt_jax.errors import UserError


def test_majority_vote():
    assert evaluation.majority_vote(["3", None, "4", "4", "3"]) == "3"  # tie: first seen
    assert evaluation.majority_vote([None, "5", "6", "6"]) == "6"
    assert evaluation.majority_vote([None, None]) is None


def _config(tmp_path, data_dir, arg="multiarith,zs,gpt2"):
    c = paper.get_config(arg)
    c.model_path, c.data_dir = str(tmp_path / "no_such_student"), str(data_dir)  # loading it would fail
    return c


def test_the_workdir_of_another_run_is_refused_before_the_student_loads(tmp_path, data_dir):
    run_dir.write_snapshot(_config(tmp_path, data_dir, "multiarith,ft_cot,gpt2"), tmp_path / "run")
    with pytest.raises(UserError, match=r"different config \(method: 'ft_cot' there, 'zs' here; eval.max_new_tokens"):
        evaluation.run_evaluation(_config(tmp_path, data_dir), tmp_path / "run")
    with run_dir.lock(tmp_path / "other"):
        with pytest.raises(UserError, match="a run is already going on in it"):
            evaluation.run_evaluation(_config(tmp_path, data_dir), tmp_path / "other")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["run.lock"]
