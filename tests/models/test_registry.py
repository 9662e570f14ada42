"""Every paper student builds from its local config with the published parameter count."""

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
    _, published, _ = models.STUDENTS[name]
    config = models.student_config(name)
    ours = models.param_count(models.build_module(config))
    assert ours == published == reference_count(config)


def test_unknown_student_is_a_user_error():
    with pytest.raises(UserError, match="gpt2-medium"):
        models.student_config("gpt3")


def test_count_table_prints_ours_next_to_published(capsys):
    from rt_jax.models import registry

    registry.main(["registry", "t5-small"])
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line == ["t5-small", "google-t5/t5-small", "60,506,624", "60,506,624"]
