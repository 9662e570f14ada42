"""Student models: GPT-2, T5 v1.0 and T5 v1.1 / Flan-T5, and the Llama family (Llama 2/3.x, SmolLM2,
TinyLlama, Qwen2/2.5, Mistral, Qwen3) in Flax linen, with Hugging Face checkpoint IO.

Model families (rt_jax/models/family.py)
- Each architecture is one module (gpt2.py, t5.py, llama.py) that ends by registering a
  `Family`: the HF model_types it reads, its module builder, HF tensor-name table, FLOPs per
  token and tokenizer policy. The import of the family modules below is the only place that
  lists them: a new family is its module plus its name on that line. An unknown model_type is
  one UserError naming the supported ones.

Loading and saving
- `from_pretrained(name_or_path, dtype=jnp.float32, param_dtype=jnp.float32, mesh=None) -> LoadedModel` with
  `.module` (flax linen), `.params` (plain pytree of arrays, not nn.Partitioned boxes), `.config`
  (the transformers config), `.tokenizer` (AutoTokenizer, rt_jax's ByteTokenizer, or None when the
  directory has no tokenizer files) and `.is_encoder_decoder`. A local directory holds config.json
  and model.safetensors (or a safetensors index, or pytorch_model.bin read weights-only); any other
  name is fetched from the Hugging Face hub. Bad input raises one UserError naming the file or tensor.
  With a `mesh`, each parameter is read straight into its sharding, device block by device block.
- `save_pretrained(loaded, directory, max_shard_bytes=5 GiB)`: config.json + model.safetensors (or
  model-0000i-of-0000n.safetensors + an index past the limit) that transformers loads back.
- `from_config(hf_config, seed=0, dtype=...) -> LoadedModel`: random init (tests, benchmarks, demo).
  GPT-2 options: `position_embedding="learned" | "rotary"`; all: `remat=True` (per-layer remat).
- `student_config(name)` / `STUDENTS`: transformers configs of the paper's students, built locally
  (rt_jax/models/registry.py; `python -m rt_jax.models [names]` prints their parameter counts).
- `logical_axes(loaded) -> pytree` like `.params`, leaves are tuples of logical axis names
  (batch, length, embed, mlp, heads, kv_heads, kv, vocab, relpos_buckets, layers; None = never sharded),
  for the rules in rt_jax/parallel.py.

Forward (logits are float32 [B, T, V]; optional `deterministic=False` with a "dropout" rng)
- GPT-2: `module.apply({"params": p}, input_ids, attention_mask=None, position_ids=None,
  segment_ids=None)`. Positions come from the mask when not given (left padding: position =
  cumsum(mask) - 1, clipped at 0). With `segment_ids` (packed sequences, 0 = padding) attention
  stays inside a segment and positions restart per segment.
- T5: `module.apply({"params": p}, input_ids, attention_mask, decoder_input_ids,
  decoder_attention_mask=None, encoder_segment_ids=None, decoder_segment_ids=None)`.
- Llama family: as GPT-2. Its layers are one nn.scan: params stacked on a leading "layers" axis.

KV-cache decoding (every cache leaf has the batch on axis 0: beam search reorders a cache with
`jax.tree.map(lambda x: x[idx], cache)`)
- GPT-2: `cache = module.apply({"params": p}, batch_size, max_length, method="init_cache")`
  (zeros in the compute dtype); `logits, cache = module.apply({"params": p}, input_ids [B, T],
  position_ids [B, T], cache, cache_index, kv_mask, method="extend")`. `cache_index` is an int32
  scalar (may be traced); `kv_mask` [B, max_length] bool marks cache slots holding real tokens (the
  caller sets the new T slots True for non-pad tokens). The call writes the K/V of the T tokens into
  slots [cache_index, cache_index + T) and a query in slot s attends to slots j <= s with
  kv_mask[b, j]. Prefill = one call with T = prompt length and cache_index 0; each step has T = 1.
- Llama family: as GPT-2; the cache is {"k", "v"} [B, layers, max_length, KV heads, head_dim].
- T5: `enc = module.apply(v, input_ids, attention_mask, method="encode")` -> [B, S, D];
  `cache = module.apply(v, enc, attention_mask, max_length, method="init_cache")` (self-attention
  K/V zeros + cross-attention K/V computed once from enc); `logits, cache = module.apply(v,
  decoder_input_ids [B, T], cache, cache_index, attention_mask [B, S] (encoder mask),
  method="extend")`. Decoder positions are cache_index + t; decoding starts from
  config.decoder_start_token_id.
"""

from rt_jax.models import gpt2, llama, t5  # the model families (importing one registers it)
from rt_jax.models.byte_tokenizer import ByteTokenizer
from rt_jax.models.family import Family, TokenizerPolicy
from rt_jax.models.gpt2 import GPT2LM, GPT2Settings
from rt_jax.models.hf import (
    LoadedModel,
    build_module,
    from_config,
    from_pretrained,
    logical_axes,
    param_count,
    param_shapes,
    save_pretrained,
)
from rt_jax.models.llama import LlamaLM, LlamaSettings
from rt_jax.models.registry import STUDENTS, student_config
from rt_jax.models.t5 import T5LM, T5Settings

__all__ = [
    "ByteTokenizer",
    "Family",
    "GPT2LM",
    "GPT2Settings",
    "LlamaLM",
    "LlamaSettings",
    "LoadedModel",
    "STUDENTS",
    "T5LM",
    "T5Settings",
    "TokenizerPolicy",
    "build_module",
    "from_config",
    "from_pretrained",
    "gpt2",
    "llama",
    "logical_axes",
    "param_count",
    "param_shapes",
    "save_pretrained",
    "student_config",
    "t5",
]
