"""rt_jax.student: the student's name is checked before any work."""

import pytest

from rt_jax.configs import paper
from rt_jax.errors import UserError
from rt_jax.student import check_student


def test_student_names():
    config = paper.get_config("multiarith,ft_cot,gpt2")
    check_student(config)
    config.student = "gpt2-tiny"
    with pytest.raises(UserError) as e:
        check_student(config)
    assert str(e.value).startswith("--config.student: student 'gpt2-tiny' is unknown; expected one of gpt2, ")
    assert str(e.value).endswith("(or set --config.model_path to a checkpoint folder)")
    check_student(config, loads=False)  # weights come from elsewhere: the name is only a label
    config.model_path = "/some/checkpoint"
    check_student(config)
    for bad in ("../../escape", "a/b", "", ".hidden"):
        config.student = bad
        with pytest.raises(UserError, match=r"^--config.student=.*: expected a name of letters, digits"):
            check_student(config, loads=False)
