"""The model-family registry: what the rest of rt_jax needs to know about an architecture.

A family is one module in rt_jax/models/ (gpt2.py, t5.py) that ends by declaring one `Family`
and passing it to `register`; rt_jax/models/__init__.py imports every family module, so the
registry is complete once `rt_jax.models` is imported. Code outside a family's module never
branches on a family name or a model_type: it asks `for_model_type(config.model_type)` or
`for_module(module)` and uses the fields below. This module is data and lookup only (it imports
nothing from rt_jax.models), so every other module can import it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from rt_jax.errors import UserError

PADDING_SIDES = ("left", "right")


@dataclasses.dataclass(frozen=True)
class TokenizerPolicy:
    """Where a family's special tokens go (rt_jax.data.tokenize and rt_jax.decoding read it).

    add_bos: BOS as the checkpoint's tokenizer places it: when the tokenizer starts an encoded
      text with its bos_token_id (Llama 2/3; not SmolLM2 or Qwen2.5), rt_jax places that BOS once
      at the start of the prompt (decoder-only: of prompt + target).
    append_eos: rt_jax appends EOS to training targets (GPT-2). False: the tokenizer's own special
      tokens end a text with EOS (T5), rt_jax adds it only where a tokenizer did not.
      When rt_jax places BOS or EOS itself, texts are encoded without the tokenizer's special
      tokens, so a tokenizer that adds BOS cannot put a second one before the target.
    prompt_padding: the side padding goes on when prompts are batched: "left" for decoder-only
      models (generation continues from the last prompt position), "right" for encoder-decoders.
    """

    add_bos: bool
    append_eos: bool
    prompt_padding: str

    def __post_init__(self):
        if self.prompt_padding not in PADDING_SIDES:
            raise ValueError(f"prompt_padding={self.prompt_padding!r}; expected one of {PADDING_SIDES}")


def dense_flops_per_token(num_params: int, layers: int, width: int, seq_len: int) -> float:
    """Training FLOPs per token of a transformer: 6N for the matmuls with the parameters (forward
    + backward) plus 12 * layers * width * seq_len for attention scores and values (PaLM
    appendix B). `layers` counts every attention stack (T5: encoder + decoder)."""
    return 6.0 * num_params + 12.0 * layers * width * seq_len


def _same_key(key: str) -> str:
    return key


def _no_extra_fields(module) -> dict[str, Any]:
    return {}


def _same_tokenizer(tokenizer, source):
    return tokenizer


@dataclasses.dataclass(frozen=True)
class Family:
    """One architecture. Every callable is pure; none touches weights except as documented."""

    name: str  # "gpt2", "t5"
    model_types: tuple[str, ...]  # HF config.model_type values this family reads
    is_encoder_decoder: bool
    module_class: type  # the flax module class `build` returns (for_module looks it up)
    build: Callable  # build(hf_config, dtype, param_dtype, **options) -> nn.Module
    tensor_table: Callable  # tensor_table(module) -> list[convert.Entry]: HF names <-> param paths
    flops_per_token: Callable  # flops_per_token(hf_config, num_params, seq_len) -> float (training)
    tokenizer: TokenizerPolicy
    init_inputs: Callable  # init_inputs() -> keyword inputs of the smallest forward, for module.init
    # Checkpoint tensor name -> the name the tensor table uses (GPT-2 files exist with and
    # without a "transformer." prefix).
    normalize_key: Callable[[str], str] = _same_key
    # Fields save_pretrained adds to config.json for rt_jax-only module options, so loading the
    # saved directory rebuilds the same module (GPT-2's rotary positions).
    extra_config_fields: Callable[[Any], dict[str, Any]] = _no_extra_fields
    # prepare_tokenizer(tokenizer or None, checkpoint directory) -> the tokenizer as rt_jax uses
    # it, or a UserError naming the directory (Llama: EOS required, EOS pads when there is no pad).
    prepare_tokenizer: Callable[[Any, Any], Any] = _same_tokenizer

    def make_config(self, model_type: str, **kwargs):
        """An instance of the transformers config class of `model_type`, one of model_types."""
        import transformers

        if model_type not in self.model_types:
            raise ValueError(f"model_type {model_type!r} is not one of family {self.name!r}'s {self.model_types}")
        return transformers.AutoConfig.for_model(model_type, **kwargs)


# name -> Family, filled by register() when a family module is imported.
FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Adds a family; a name or model_type that another family already holds is a bug."""
    for other in FAMILIES.values():
        taken = set(other.model_types) & set(family.model_types)
        if other.name == family.name or taken:
            raise ValueError(f"family {family.name!r} clashes with registered family {other.name!r}")
    FAMILIES[family.name] = family
    return family


def supported_model_types() -> list[str]:
    return [t for f in FAMILIES.values() for t in f.model_types]


def for_model_type(model_type, where: str = "config") -> Family:
    """The family reading `model_type`; else one UserError naming `where` (a file or "config")
    and the model_types rt_jax supports."""
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    raise UserError(
        f"{where}: model_type {model_type!r} is not supported; expected one of {', '.join(supported_model_types())}"
    )


def for_config(config, where: str = "config") -> Family:
    """The family of a transformers config (by its model_type)."""
    return for_model_type(getattr(config, "model_type", None), where)


def for_module(module) -> Family:
    """The family whose `build` made `module`."""
    for family in FAMILIES.values():
        if isinstance(module, family.module_class):
            return family
    raise ValueError(f"{type(module).__name__} is not the module of a registered family")
