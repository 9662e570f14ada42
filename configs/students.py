"""The paper's students: where each checkpoint comes from and what differs per student.
(Their sizes as the paper writes them are in rt_jax/paper_results.py, used by the report.)

Everything else (optimiser, batch size 8, 20 epochs, greedy decoding) is shared and lives in
configs/base.py. The paper fine-tunes every open-source student with the same hyperparameters;
the entries below only add what a student needs to fit or run (lengths, memory layout).
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Student:
    hub_id: str  # Hugging Face checkpoint, loaded by rt_jax.models.from_pretrained
    overrides: tuple = ()  # (dotted config key, value) pairs applied on top of base


# Biggest students: shard parameters and optimiser state over every device (FSDP), keep
# activations in bfloat16 and recompute them in the backward pass; the paper ran these on GPUs.
_LARGE = (("mesh.data", 1), ("mesh.fsdp", -1), ("train.compute_dtype", "bfloat16"), ("train.remat", "full"))
# T5 students read the question with the encoder: 512 tokens is T5's trained length.
_T5 = (("train.max_seq_len", 512),)

STUDENTS = {
    "gpt2": Student("openai-community/gpt2"),
    "gpt2-medium": Student("openai-community/gpt2-medium"),
    "gpt2-large": Student("openai-community/gpt2-large"),
    "gpt2-xl": Student("openai-community/gpt2-xl", _LARGE),
    "t5-small": Student("google-t5/t5-small", _T5),
    "t5-base": Student("google-t5/t5-base", _T5),
    "t5-large": Student("google-t5/t5-large", _T5),
    "t5-3b": Student("google-t5/t5-3b", _T5 + _LARGE),
    "flan-t5-small": Student("google/flan-t5-small", _T5),
    "flan-t5-base": Student("google/flan-t5-base", _T5),
    "flan-t5-large": Student("google/flan-t5-large", _T5),
    "flan-t5-xl": Student("google/flan-t5-xl", _T5 + _LARGE),
}
