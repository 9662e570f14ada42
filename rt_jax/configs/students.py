"""What differs per student. The paper fine-tunes every open-source student with the same
hyperparameters (configs/base.py); the entries below only add what a student needs to fit or
run. Checkpoints and architectures are rt_jax.models.registry's; sizes as the paper writes them
are rt_jax/paper_results.py's.
"""

# Biggest students: shard parameters and optimiser state over every device (FSDP), keep
# activations in bfloat16 and recompute them in the backward pass.
_LARGE = (("mesh.data", 1), ("mesh.fsdp", -1), ("train.compute_dtype", "bfloat16"), ("train.remat", "layer"))
# T5 students read the question with the encoder: 512 tokens is T5's trained length.
_T5 = (("train.max_seq_len", 512),)

# student -> (dotted config key, value) pairs applied on top of base.py.
OVERRIDES = {
    "gpt2": (),
    "gpt2-medium": (),
    "gpt2-large": (),
    "gpt2-xl": _LARGE,
    "t5-small": _T5,
    "t5-base": _T5,
    "t5-large": _T5,
    "t5-3b": _T5 + _LARGE,
    "flan-t5-small": _T5,
    "flan-t5-base": _T5,
    "flan-t5-large": _T5,
    "flan-t5-xl": _T5 + _LARGE,
    "smollm2-135m": (),
    "smollm2-360m": (),
    "smollm2-1.7b": _LARGE,
    "qwen2.5-0.5b": (),
    "qwen2.5-1.5b": _LARGE,
    "qwen2.5-3b": _LARGE,
    "llama-3.2-1b": _LARGE,
    "llama-3.2-3b": _LARGE,
}
