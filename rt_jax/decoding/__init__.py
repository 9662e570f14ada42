"""Batched greedy, beam-search and sampled decoding with a KV cache (jit, while_loop).

from rt_jax.decoding import DecodeConfig, decode_texts
outs = decode_texts(loaded, prompts, DecodeConfig(strategy="sample", temperature=0.7,
                    num_return_sequences=8, max_new_tokens=128, stop_strings=("END",)))
"""

from rt_jax.decoding.config import DecodeConfig, validate
from rt_jax.decoding.driver import Decoded, Decoder, context_length, decode_texts, get_decoder

__all__ = ["DecodeConfig", "Decoded", "Decoder", "context_length", "decode_texts", "get_decoder", "validate"]
