"""The text driver: bad input rejected before compiling, order kept, stop strings, buckets, mesh."""

import numpy as np
import pytest

from rt_jax.decoding import DecodeConfig, Decoder, decode_texts, get_decoder
from rt_jax.decoding.batching import bucket, pad_prompts
from rt_jax.errors import UserError


class CharTokenizer:
    """Printable ASCII, one id per character (id = ord - 32); id 95 ('\\x7f') is EOS."""

    eos_token_id = 95
    pad_token_id = 95

    def encode(self, text):
        return [ord(c) - 32 for c in text]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i + 32) for i in ids if not (skip_special_tokens and i == self.eos_token_id))


GREEDY = DecodeConfig(max_new_tokens=10, batch_size=2)


@pytest.fixture
def char_gpt2(gpt2_pair):
    hf_model, loaded = gpt2_pair
    loaded.tokenizer = CharTokenizer()
    return hf_model, loaded


@pytest.mark.parametrize(
    "settings,field",
    [
        (dict(num_beams=0, strategy="beam"), "num_beams"),
        (dict(top_p=0.0, strategy="sample"), "top_p"),
        (dict(top_p=1.5, strategy="sample"), "top_p"),
        (dict(temperature=-0.1, strategy="sample"), "temperature"),
        (dict(strategy="nucleus"), "strategy"),
        (dict(num_beams=2, num_return_sequences=3, strategy="beam"), "num_return_sequences"),
        (dict(slots=0), "slots"),
        (dict(batching="dynamic"), "batching"),
        (dict(layer_layout="unrolled"), "layer_layout"),
    ],
)
def test_bad_settings_are_user_errors(char_gpt2, settings, field):
    _, loaded = char_gpt2
    with pytest.raises(UserError, match=field):
        decode_texts(loaded, ["abc"], DecodeConfig(**settings))


def test_bad_prompts_fail_before_compiling(char_gpt2):
    _, loaded = char_gpt2
    decoder = Decoder(loaded, DecodeConfig(max_new_tokens=4))
    with pytest.raises(UserError, match="empty list"):
        decoder.decode_texts([])
    with pytest.raises(UserError, match="prompt 1 has 64 tokens.*context of 64"):
        decoder.decode_texts(["ok", "x" * 64])
    assert decoder._run._cache_size() == 0 and decoder.slot_loop.compiled_shapes() == 0


def test_texts_in_input_order_with_stop_string(char_gpt2):
    _, loaded = char_gpt2
    prompts = ["What is 2+2?", "Q", "Why, padded?", "hi"]  # one prompt-length bucket
    free = get_decoder(loaded, GREEDY).decode_texts(prompts)
    assert [d.finish_reason for d in free] == ["length"] * 4
    one_by_one = Decoder(loaded, DecodeConfig(max_new_tokens=10, batch_size=1))
    assert free == [one_by_one.decode_texts([p])[0] for p in prompts]  # batching changes nothing
    stop = free[0].text[3:5]  # a string greedy decoding of prompt 0 emits mid-way
    outs = decode_texts(loaded, prompts, DecodeConfig(max_new_tokens=10, stop_strings=(stop,), batch_size=2))
    assert outs[0].finish_reason == "stop"
    assert outs[0].text == free[0].text[: free[0].text.find(stop) + len(stop)]
    assert len(outs[0].tokens) == len(outs[0].text)  # the loop itself stopped there
    for full, cut in zip(free, outs):
        assert full.text.startswith(cut.text)


def test_buckets_bound_compilations_and_context_caps_length(char_gpt2):
    _, loaded = char_gpt2
    decoder = Decoder(loaded, DecodeConfig(max_new_tokens=10, batch_size=4, batching="static"))
    prompts = ["y" * n for n in range(1, 8)] + ["x" * 60]
    outs = decoder.decode_texts(prompts)
    assert len(outs) == 8
    assert decoder._run._cache_size() == 2  # 8 prompt lengths, 2 (batch, prompt) buckets: (4, 64) (4, 16)
    assert len(outs[-1].tokens) == 4 and outs[-1].finish_reason == "length"  # 60 + 4 = n_positions
    assert bucket(5, 16) == 16 and bucket(17, 16) == 32 and bucket(3, 1, 8) == 8


def test_left_padding_layout():
    ids, mask = pad_prompts([[7, 8], [9]], 4, 3, 0, "left")
    np.testing.assert_array_equal(ids, [[0, 0, 7, 8], [0, 0, 0, 9], [0, 0, 0, 0]])
    np.testing.assert_array_equal(mask, [[0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 1]])


MESH_CONFIGS = {
    "greedy": GREEDY,
    "beam": DecodeConfig(strategy="beam", num_beams=2, max_new_tokens=6),
    # 2 prompts x 3 samples = 6 rows do not split over 4 data shards: rows are padded to 12.
    "sample": DecodeConfig(strategy="sample", num_return_sequences=3, max_new_tokens=6, batch_size=2),
}


@pytest.mark.parametrize(
    "strategy", ["greedy", pytest.param("beam", marks=pytest.mark.slow), pytest.param("sample", marks=pytest.mark.slow)]
)
def test_mesh_sharded_decoding_matches_single_device(char_gpt2, strategy):
    _, loaded = char_gpt2
    from rt_jax import parallel

    mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    config = MESH_CONFIGS[strategy]
    prompts = ["abc", "hello there", "x", "why?"]  # the single-device greedy decoder is already compiled
    sharded, single = decode_texts(loaded, prompts, config, mesh=mesh), decode_texts(loaded, prompts, config)
    assert [(d.text, d.tokens, d.finish_reason) for d in sharded] == [
        (d.text, d.tokens, d.finish_reason) for d in single
    ]
    if strategy == "beam":  # sharded reductions round differently
        np.testing.assert_allclose([d.score for d in sharded], [d.score for d in single], rtol=1e-5)


def test_t5_without_decoder_start_field_starts_from_pad():
    import types

    from rt_jax.decoding.adapters import adapter_for
    from rt_jax.models import t5

    config = types.SimpleNamespace(pad_token_id=0)  # transformers 5's bare T5Config has no such field
    loaded = types.SimpleNamespace(module=None, config=config, is_encoder_decoder=True, family=t5.FAMILY)
    assert adapter_for(loaded, 8).decoder_start_token_id == 0
    config.decoder_start_token_id = 5
    assert adapter_for(loaded, 8).decoder_start_token_id == 5
