"""From a run config to its training batches: pairs -> tokens -> padded or packed BatchIterator.

    data = build_training_data(config, loaded.tokenizer, loaded.family,
                               context_length=decoding.context_length(loaded.config))
    for epoch in range(start_epoch, config.train.num_epochs):
        for batch in data.iterator.epoch_batches(epoch): ...
    checkpoint {"data": data.iterator.state_dict()}; on resume data.iterator.restore(saved["data"])

`config.train.packing = True` packs where it saves compute: the packed plan is used when it
needs fewer token slots per epoch than the padded one (almost always for Fine-tune-CoT data),
otherwise padding. `config.train.batch_size` counts rows: examples when padded, packed rows of
`max_seq_len` tokens when packed (see BUILD_NOTES, "Data pipeline").
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from rt_jax.data.batching import BatchIterator, token_slots
from rt_jax.data.packing import split_row
from rt_jax.data.pairs import TrainingPair, build_training_pairs, limit_questions, split_validation
from rt_jax.data.tokenize import TokenizeStats, tokenize_pairs
from rt_jax.tasks import load_dataset, load_split

if TYPE_CHECKING:
    from rt_jax.models.family import Family

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainingData:
    iterator: BatchIterator
    pairs: list[TrainingPair]
    validation: list[Any]  # rt_jax.tasks Examples held out of train (empty without validation_fraction)
    tokenize_stats: TokenizeStats
    slots: dict[str, float]  # token_slots() of epoch 0 for the plan in use
    packing: bool
    # teacher rationales: {"used", "filtered_out"} (rt_jax.data.pairs); empty without a teacher
    rationale_counts: dict = dataclasses.field(default_factory=dict)


def check_teacher_cache(config) -> list[str]:
    """The bad lines (`file:line: reason`) of the teacher-cache shard the run trains on: lines
    that do not parse, records of another schema or shard, a second different record of a key.
    config.data.bad_cache_lines decides: "refuse" (the default) raises a UserError naming the
    first and the count; "skip" logs each one and the count, and training goes on without them."""
    from rt_jax import methods
    from rt_jax.errors import UserError
    from rt_jax.teacher.store import RationaleStore

    source = methods.rationale_source(config.method, config.get("teacher_method", ""))
    if source is None or not config.teacher_cache_dir:
        return []
    problems: list[str] = []
    RationaleStore(config.teacher_cache_dir).read(config.teacher, source.teacher_method, config.task, problems)
    if not problems:
        return []
    policy = config.get("data", {}).get("bad_cache_lines", "refuse")
    if policy == "refuse":
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise UserError(
            f"teacher cache: {len(problems)} bad line(s): {problems[0]}{more}; fix the cache (python -m "
            "rt_jax.teacher stats lists them all) or train without them: --config.data.bad_cache_lines=skip"
        )
    for line in problems:
        log.warning("teacher cache: %s", line)
    log.warning("teacher cache: %d bad line(s) skipped (--config.data.bad_cache_lines=skip)", len(problems))
    return problems


def _host() -> tuple[int, int]:
    import jax

    return jax.process_index(), jax.process_count()


def build_training_data(
    config,
    tokenizer,
    family: Family,
    *,
    context_length: int | None = None,
    decoder_start_token_id: int = 0,
    process_index: int | None = None,
    process_count: int | None = None,
) -> TrainingData:
    """The run's training batches (this host's share) and its validation questions, for a
    student of `family` (its layout and tokenizer policy: rt_jax.models.family).

    context_length: most positions the student can attend over (GPT-2's n_positions); sequences
    are cut to min(max_seq_len, context_length) by rt_jax.data.tokenize's truncation policy.
    """
    if process_index is None or process_count is None:
        process_index, process_count = _host()
    is_encoder_decoder = family.is_encoder_decoder
    train_indices = load_split(config.task, config.data_dir, config.get("split", "default")).train
    train_indices, validation = split_validation(train_indices, config.eval.validation_fraction, config.seed)
    train_indices = limit_questions(train_indices, config.get("max_train_examples", 0))
    rationale_counts: dict = {}
    pairs = build_training_pairs(
        config.task,
        config.method,
        data_dir=config.data_dir,
        is_encoder_decoder=is_encoder_decoder,
        teacher_cache_dir=config.teacher_cache_dir,
        teacher=config.teacher,
        teacher_method=config.get("teacher_method", ""),
        sample_indices=train_indices,
        template=config.get("template") or None,
        rationale_weight=config.get("rationale_weight", 1.0),
        rationale_counts=rationale_counts,
        rationale_filter=config.get("rationale_filter", "correct"),
        max_rationale_tokens=config.get("max_rationale_tokens", 0),
    )
    seq_len = config.train.max_seq_len
    max_length = min(seq_len, context_length) if context_length else seq_len
    stats = TokenizeStats()
    examples = tokenize_pairs(pairs, tokenizer, family, max_length, stats)
    if stats.num_truncated:
        log.warning("%d of %d examples were cut to %d tokens", stats.num_truncated, stats.num_examples, max_length)
    pad = getattr(tokenizer, "pad_token_id", None)
    common = dict(
        examples=examples,
        batch_size=config.train.batch_size,
        seed=config.seed,
        seq_len=seq_len,
        process_index=process_index,
        process_count=process_count,
        is_encoder_decoder=is_encoder_decoder,
        pad_id=0 if pad is None else int(pad),
        decoder_start_token_id=decoder_start_token_id,
    )
    iterator = BatchIterator(packing=False, **common)
    slots = token_slots(iterator)
    if config.train.packing:
        packed = _packed_iterator(common)
        packed_slots = token_slots(packed) if packed is not None else None
        if packed is not None and packed_slots["slots"] < slots["slots"]:
            iterator, slots = packed, packed_slots
    val_examples = load_dataset(config.task, config.data_dir).select(validation) if validation else []
    return TrainingData(iterator, pairs, val_examples, stats, slots, iterator.packing, rationale_counts)


def _packed_iterator(common: dict) -> BatchIterator | None:
    """Decoder-only: rows of seq_len tokens. Encoder-decoder: seq_len split between encoder and
    decoder rows in the data's proportion (None when the longest example cannot fit)."""
    if not common["is_encoder_decoder"]:
        return BatchIterator(packing=True, **common)
    lengths = np.array([ex.length(True) for ex in common["examples"]])
    split = split_row(lengths, common["seq_len"])
    if split is None:
        return None
    return BatchIterator(packing=True, **{**common, "seq_len": split[0], "target_seq_len": split[1]})
