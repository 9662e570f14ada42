"""Config -> training batches on the real MultiArith data with Kojima's rationales."""

import pytest

from rt_jax.configs.base import get_config
from rt_jax.data.batching import BatchIterator, token_slots
from rt_jax.data.pipeline import build_training_data
from rt_jax.models import ByteTokenizer, gpt2
from rt_jax.teacher.import_kojima import import_log
from rt_jax.teacher.store import RationaleStore


@pytest.fixture(scope="module")
def config(data_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    import_log(
        RationaleStore(cache), data_dir / "raw/kojima_zero_shot_cot/log/multiarith_zero_shot_cot.log", data_dir, []
    )
    c = get_config()
    c.data_dir, c.teacher_cache_dir = str(data_dir), str(cache)
    c.train.max_seq_len = 1024
    c.eval.validation_fraction = 0.1
    return c


def test_ft_cot_batches_with_validation_held_out(config):
    data = build_training_data(
        config, ByteTokenizer(), gpt2.FAMILY, context_length=1024, process_index=1, process_count=2
    )
    trained = {p.sample_index for p in data.pairs}
    held = {ex.sample_index for ex in data.validation}
    assert len(held) == 42 and not trained & held
    assert data.packing and data.iterator.packing  # multiarith rationales are far shorter than 1024
    batch = data.iterator.batch(0, 0)
    assert batch["input_ids"].shape == (4, 1024)  # this host's half of 8 rows
    assert data.slots["slots"] == data.iterator.steps_per_epoch * 8 * 1024
    targets = sum(int((ex.target_ids > -1).sum()) for ex in data.iterator.examples)
    masked = sum(
        int(b["loss_mask"].sum())
        for h in (0, 1)
        for b in (
            build_training_data(config, ByteTokenizer(), gpt2.FAMILY, process_index=h, process_count=2).iterator.batch(
                0, s
            )
            for s in range(data.iterator.steps_per_epoch)
        )
    )
    assert masked == targets  # every target token of the epoch is trained on exactly once


def test_packing_is_used_only_where_it_saves_compute(config):
    config = config.copy_and_resolve_references()
    for seq_len, packing, expect_packed in ((1024, True, True), (1024, False, False), (128, True, False)):
        config.train.max_seq_len, config.train.packing = seq_len, packing
        data = build_training_data(config, ByteTokenizer(), gpt2.FAMILY, process_index=0, process_count=1)
        assert data.packing == expect_packed, (seq_len, packing)
        other = BatchIterator(data.iterator.examples, 8, config.seed, not data.packing, seq_len)
        if packing:  # the plan in use needs no more slots than the other one
            assert data.slots["slots"] <= token_slots(other)["slots"]
    # at 128 bytes every rationale is cut to fill its row: nothing to pack
    assert data.tokenize_stats.num_truncated == len(data.pairs)


def test_config_template_overrides_the_methods(config):
    config = config.copy_and_resolve_references()
    config.template = "ft_cot_natural"
    data = build_training_data(config, ByteTokenizer(), gpt2.FAMILY, process_index=0, process_count=1)
    assert all(p.prompt.startswith("Q: ") and "\n\nTherefore the answer is " in p.target for p in data.pairs)
