"""Every paper student builds from its local config with the published parameter count, and
`python -m rt_jax.models` prints the table quickly and quietly."""

import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

from rt_jax import models
from rt_jax.errors import UserError


def reference_count(config) -> int:
    """transformers' own count on the meta device (no memory). transformers 5 always ties T5's
    lm_head to the embedding when building from a config, while the published v1.1 / Flan-T5
    checkpoints hold a separate [vocab, d_model] head: add it back for those."""
    cls = AutoModelForSeq2SeqLM if config.model_type == "t5" else AutoModelForCausalLM
    with torch.device("meta"):
        model = cls.from_config(config)
    count = sum(p.numel() for p in model.parameters())
    if config.model_type == "t5" and not getattr(config, "scale_decoder_outputs", True):
        count += config.vocab_size * config.d_model
    return count


@pytest.mark.parametrize("name", list(models.STUDENTS))
def test_student_parameter_count_matches_published_and_transformers(name):
    published = models.STUDENTS[name].num_params
    config = models.student_config(name)
    ours = models.param_count(models.build_module(config))
    assert ours == published == reference_count(config)


def test_unknown_student_is_a_user_error():
    with pytest.raises(UserError, match="gpt2-medium"):
        models.student_config("gpt3")


def _command(*args):
    """python -m rt_jax.models as a user runs it: JAX free to probe for a TPU (conftest pins the
    tests to the CPU platform, which would hide the probe's log line)."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    return subprocess.run(
        [sys.executable, "-m", "rt_jax.models", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_command_prints_every_student_with_ours_next_to_published():
    result = _command()
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == list(models.STUDENTS)
    for name, hub, ours, published in rows:
        student = models.STUDENTS[name]
        assert (hub, ours, published) == (student.hub_id, f"{student.num_params:,}", f"{student.num_params:,}")
    # no runpy "found in sys.modules" warning, no JAX backend probe, no transformers advisory
    assert result.stderr == ""


def test_command_refuses_an_unknown_name_in_one_line_before_any_output():
    result = _command("t5-small", "gpt3")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: student 'gpt3' is unknown; expected one of {', '.join(models.STUDENTS)}"
    ]


def test_count_table_in_process():
    from rt_jax.models.__main__ import count_table

    lines = count_table(["t5-small"])
    assert lines[1].split() == ["t5-small", "google-t5/t5-small", "60,506,624", "60,506,624"]
    with pytest.raises(UserError, match="'gpt3' is unknown"):
        count_table(["gpt2", "gpt3"])


HIDE_TORCH = "import sys; sys.modules['torch'] = None; "


def _stderr_of(code: str) -> str:
    return subprocess.run([sys.executable, "-c", HIDE_TORCH + code], capture_output=True, text=True, timeout=300).stderr


def test_transformers_torch_advisory_is_silenced_by_rt_jax_only():
    advisory = "PyTorch was not found"
    assert advisory in _stderr_of("import transformers")  # what a user without torch sees
    quiet = _stderr_of(
        "import rt_jax, transformers; transformers.logging.get_logger('transformers').warning('other warning')"
    )
    assert advisory not in quiet and "other warning" in quiet  # only that message is dropped
