"""Students as data (the paper's and today's small open models): hub id, published parameter
count, model_type, config kwargs.

Hyperparameters are those of the published checkpoints (gpt2*, t5-*, google/flan-t5-*; the
base models HuggingFaceTB/SmolLM2-*, Qwen/Qwen2.5-*, meta-llama/Llama-3.2-*), so
`from_config(student_config(name))` has exactly the parameter count of the real model and
`from_pretrained` on the downloaded checkpoint fills the same tree. `python -m rt_jax.models`
prints the table (rt_jax/models/__main__.py).
"""

import dataclasses

from rt_jax.errors import UserError
from rt_jax.models import family


@dataclasses.dataclass(frozen=True)
class Student:
    hub_id: str  # Hugging Face hub repository of the published checkpoint
    num_params: int  # the published checkpoint's parameter count
    model_type: str  # transformers config.model_type: picks the family (rt_jax.models.family)
    config: dict  # keyword arguments of the transformers config class of model_type


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

# Llama family (rt_jax/models/llama.py); RoPE spelled as in the published config.json files.
_SMOLLM2 = dict(
    vocab_size=49152,
    max_position_embeddings=8192,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    bos_token_id=0,
    eos_token_id=0,
)
_QWEN25 = dict(
    vocab_size=151936,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    rope_theta=1000000.0,
    use_sliding_window=False,
    bos_token_id=151643,
    eos_token_id=151643,
)
_LLAMA32 = dict(
    vocab_size=128256,
    max_position_embeddings=131072,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    head_dim=64,
    rope_theta=500000.0,
    rope_scaling=dict(
        rope_type="llama3",
        factor=32.0,
        low_freq_factor=1.0,
        high_freq_factor=4.0,
        original_max_position_embeddings=8192,
    ),
    bos_token_id=128000,
    eos_token_id=128001,
)

STUDENTS: dict[str, Student] = {
    "gpt2": Student("openai-community/gpt2", 124_439_808, "gpt2", dict(_GPT2, n_embd=768, n_layer=12, n_head=12)),
    "gpt2-medium": Student(
        "openai-community/gpt2-medium", 354_823_168, "gpt2", dict(_GPT2, n_embd=1024, n_layer=24, n_head=16)
    ),
    "gpt2-large": Student(
        "openai-community/gpt2-large", 774_030_080, "gpt2", dict(_GPT2, n_embd=1280, n_layer=36, n_head=20)
    ),
    "gpt2-xl": Student(
        "openai-community/gpt2-xl", 1_557_611_200, "gpt2", dict(_GPT2, n_embd=1600, n_layer=48, n_head=25)
    ),
    "t5-small": Student(
        "google-t5/t5-small",
        60_506_624,
        "t5",
        dict(_T5, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8),
    ),
    "t5-base": Student(
        "google-t5/t5-base",
        222_903_552,
        "t5",
        dict(_T5, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12),
    ),
    "t5-large": Student(
        "google-t5/t5-large",
        737_668_096,
        "t5",
        dict(_T5, d_model=1024, d_kv=64, d_ff=4096, num_layers=24, num_heads=16),
    ),
    "t5-3b": Student(
        "google-t5/t5-3b",
        2_851_598_336,
        "t5",
        dict(_T5, d_model=1024, d_kv=128, d_ff=16384, num_layers=24, num_heads=32),
    ),
    "flan-t5-small": Student(
        "google/flan-t5-small",
        76_961_152,
        "t5",
        dict(_FLAN, d_model=512, d_kv=64, d_ff=1024, num_layers=8, num_heads=6),
    ),
    "flan-t5-base": Student(
        "google/flan-t5-base",
        247_577_856,
        "t5",
        dict(_FLAN, d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_heads=12),
    ),
    "flan-t5-large": Student(
        "google/flan-t5-large",
        783_150_080,
        "t5",
        dict(_FLAN, d_model=1024, d_kv=64, d_ff=2816, num_layers=24, num_heads=16),
    ),
    "flan-t5-xl": Student(
        "google/flan-t5-xl",
        2_849_757_184,
        "t5",
        dict(_FLAN, d_model=2048, d_kv=64, d_ff=5120, num_layers=24, num_heads=32),
    ),
    "smollm2-135m": Student(
        "HuggingFaceTB/SmolLM2-135M",
        134_515_008,
        "llama",
        dict(
            _SMOLLM2,
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            rope_theta=100000.0,
        ),
    ),
    "smollm2-360m": Student(
        "HuggingFaceTB/SmolLM2-360M",
        361_821_120,
        "llama",
        dict(
            _SMOLLM2,
            hidden_size=960,
            intermediate_size=2560,
            num_hidden_layers=32,
            num_attention_heads=15,
            num_key_value_heads=5,
            rope_theta=100000.0,
        ),
    ),
    "smollm2-1.7b": Student(
        "HuggingFaceTB/SmolLM2-1.7B",
        1_711_376_384,
        "llama",
        dict(
            _SMOLLM2,
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=24,
            num_attention_heads=32,
            num_key_value_heads=32,
            rope_theta=130000.0,
        ),
    ),
    "qwen2.5-0.5b": Student(
        "Qwen/Qwen2.5-0.5B",
        494_032_768,
        "qwen2",
        dict(
            _QWEN25,
            hidden_size=896,
            intermediate_size=4864,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            max_position_embeddings=32768,
        ),
    ),
    "qwen2.5-1.5b": Student(
        "Qwen/Qwen2.5-1.5B",
        1_543_714_304,
        "qwen2",
        dict(
            _QWEN25,
            hidden_size=1536,
            intermediate_size=8960,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            max_position_embeddings=131072,
        ),
    ),
    "qwen2.5-3b": Student(
        "Qwen/Qwen2.5-3B",
        3_085_938_688,
        "qwen2",
        dict(
            _QWEN25,
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            max_position_embeddings=32768,
        ),
    ),
    "llama-3.2-1b": Student(
        "meta-llama/Llama-3.2-1B",
        1_235_814_400,
        "llama",
        dict(
            _LLAMA32,
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=16,
            num_attention_heads=32,
            num_key_value_heads=8,
        ),
    ),
    "llama-3.2-3b": Student(
        "meta-llama/Llama-3.2-3B",
        3_212_749_824,
        "llama",
        dict(
            _LLAMA32,
            hidden_size=3072,
            intermediate_size=8192,
            num_hidden_layers=28,
            num_attention_heads=24,
            num_key_value_heads=8,
            head_dim=128,
        ),
    ),
}


def student(name: str) -> Student:
    """A paper student by its short name; else a UserError listing the known names."""
    if name not in STUDENTS:
        raise UserError(f"student {name!r} is unknown; expected one of {', '.join(STUDENTS)}")
    return STUDENTS[name]


def student_config(name: str):
    """The transformers config of a paper student, e.g. student_config("flan-t5-base")."""
    entry = student(name)
    return family.for_model_type(entry.model_type, where=f"student {name!r}").make_config(
        entry.model_type, **entry.config
    )


def hub_id(name: str) -> str:
    """Hub repository of a paper student ("gpt2-medium" -> "openai-community/gpt2-medium")."""
    return student(name).hub_id
