"""The paper's students, as transformers configs built locally (no hub access).

Hyperparameters are those of the published checkpoints (gpt2*, t5-*, google/flan-t5-*), so
`from_config(student_config(name))` has exactly the parameter count of the real model and
`from_pretrained` on the downloaded checkpoint fills the same tree.
"""

from rt_jax.errors import UserError

# name -> (hub id, published parameter count, config kwargs)
_GPT2 = dict(vocab_size=50257, n_positions=1024)
_T5 = dict(
    vocab_size=32128,
    feed_forward_proj="relu",
    tie_word_embeddings=True,
    decoder_start_token_id=0,
    pad_token_id=0,
    eos_token_id=1,
)
_FLAN = dict(
    vocab_size=32128,
    feed_forward_proj="gated-gelu",
    tie_word_embeddings=False,
    decoder_start_token_id=0,
    pad_token_id=0,
    eos_token_id=1,
)

STUDENTS: dict[str, tuple[str, int, dict]] = {
    "gpt2": ("openai-community/gpt2", 124_439_808, dict(_GPT2, n_embd=768, n_layer=12, n_head=12)),
    "gpt2-medium": ("openai-community/gpt2-medium", 354_823_168, dict(_GPT2, n_embd=1024, n_layer=24, n_head=16)),
    "gpt2-large": ("openai-community/gpt2-large", 774_030_080, dict(_GPT2, n_embd=1280, n_layer=36, n_head=20)),
    "gpt2-xl": ("openai-community/gpt2-xl", 1_557_611_200, dict(_GPT2, n_embd=1600, n_layer=48, n_head=25)),
    "t5-small": (
        "google-t5/t5-small",
        60_506_624,
        dict(_T5, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8),
    ),
    "t5-base": (
        "google-t5/t5-base",
        222_903_552,
        dict(_T5, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12),
    ),
    "t5-large": (
        "google-t5/t5-large",
        737_668_096,
        dict(_T5, d_model=1024, d_kv=64, d_ff=4096, num_layers=24, num_heads=16),
    ),
    "t5-3b": (
        "google-t5/t5-3b",
        2_851_598_336,
        dict(_T5, d_model=1024, d_kv=128, d_ff=16384, num_layers=24, num_heads=32),
    ),
    "flan-t5-small": (
        "google/flan-t5-small",
        76_961_152,
        dict(_FLAN, d_model=512, d_kv=64, d_ff=1024, num_layers=8, num_heads=6),
    ),
    "flan-t5-base": (
        "google/flan-t5-base",
        247_577_856,
        dict(_FLAN, d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_heads=12),
    ),
    "flan-t5-large": (
        "google/flan-t5-large",
        783_150_080,
        dict(_FLAN, d_model=1024, d_kv=64, d_ff=2816, num_layers=24, num_heads=16),
    ),
    "flan-t5-xl": (
        "google/flan-t5-xl",
        2_849_757_184,
        dict(_FLAN, d_model=2048, d_kv=64, d_ff=5120, num_layers=24, num_heads=32),
    ),
}


def student_config(name: str):
    """The transformers config of a paper student, e.g. student_config("flan-t5-base")."""
    if name not in STUDENTS:
        raise UserError(f"student {name!r} is unknown; expected one of {', '.join(STUDENTS)}")
    from transformers import GPT2Config, T5Config

    _, _, kwargs = STUDENTS[name]
    return (GPT2Config if name.startswith("gpt2") else T5Config)(**kwargs)


def hub_id(name: str) -> str:
    """Hub repository of a paper student ("gpt2-medium" -> "openai-community/gpt2-medium")."""
    if name not in STUDENTS:
        raise UserError(f"student {name!r} is unknown; expected one of {', '.join(STUDENTS)}")
    return STUDENTS[name][0]


def count_table(names) -> list[str]:
    """One line per student: name, hub id, parameter count of rt_jax's model, published count."""
    from rt_jax.models.hf import build_module, param_count

    lines = [f"{'student':<14} {'hub id':<30} {'rt_jax params':>15} {'published':>15}"]
    for name in names:
        ours = param_count(build_module(student_config(name)))  # UserError for unknown names
        hub, published, _ = STUDENTS[name]
        lines.append(f"{name:<14} {hub:<30} {ours:>15,} {published:>15,}")
    return lines


def main(argv) -> None:
    """python -m rt_jax.models.registry [names...]: parameter counts from configs alone (no weights)."""
    for line in count_table(argv[1:] or list(STUDENTS)):
        print(line)


if __name__ == "__main__":
    from rt_jax.cli import run_main

    run_main(main)
