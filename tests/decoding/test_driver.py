"""The text driver: bad input rejected before compiling, order kept, stop strings, buckets, mesh."""
import jax
import numpy as np
import pytest

from rt_jax.decoding import DecodeConfig, Decoder, decode_texts
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


@pytest.fixture
def char_gpt2(gpt2_pair):
    hf_model, loaded = gpt2_pair
    loaded.tokenizer = CharTokenizer()
    return hf_model, loaded


@pytest.mark.parametrize("settings,field", [
    (dict(num_beams=0, strategy="beam"), "num_beams"),
    (dict(top_p=0.0, strategy="sample"), "top_p"),
    (dict(top_p=1.5, strategy="sample"), "top_p"),
    (dict(temperature=-0.1, strategy="sample"), "temperature"),
    (dict(strategy="nucleus"), "strategy"),
    (dict(num_beams=2, num_return_sequences=3, strategy="beam"), "num_return_sequences"),
])
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
    assert decoder._run._cache_size() == 0


def test_texts_in_input_order_with_stop_string(char_gpt2):
    hf_model, loaded = char_gpt2
    prompts = ["What is 2+2?", "Q", "A longer question, padded less?", "hi"]
    free = Decoder(loaded, DecodeConfig(max_new_tokens=10, batch_size=3)).decode_texts(prompts)
    assert [d.finish_reason for d in free] == ["length"] * 4
    singles = [Decoder(loaded, DecodeConfig(max_new_tokens=10)).decode_texts([p])[0] for p in prompts]
    assert free == singles  # batching and bucketing change nothing, order kept
    stop = free[0].text[3:5]  # a string greedy decoding of prompt 0 emits mid-way
    outs = decode_texts(loaded, prompts, DecodeConfig(max_new_tokens=10, stop_strings=(stop,), batch_size=3))
    assert outs[0].finish_reason == "stop"
    assert outs[0].text == free[0].text[:free[0].text.find(stop) + len(stop)]
    assert len(outs[0].tokens) == len(outs[0].text)  # the loop itself stopped there
    for full, cut in zip(free, outs):
        assert full.text.startswith(cut.text)


def test_context_limit_caps_new_tokens(char_gpt2):
    _, loaded = char_gpt2
    out = decode_texts(loaded, ["x" * 60], DecodeConfig(max_new_tokens=10))[0]
    assert len(out.tokens) == 4 and out.finish_reason == "length"  # 60 + 4 = n_positions


def test_buckets_bound_compilations(char_gpt2):
    _, loaded = char_gpt2
    decoder = Decoder(loaded, DecodeConfig(max_new_tokens=3, batch_size=4))
    prompts = ["y" * n for n in range(1, 41)]
    outs = decoder.decode_texts(prompts)
    assert len(outs) == 40
    assert decoder._run._cache_size() <= 3  # prompt buckets 16, 32, 64 at batch 4
    assert bucket(5, 16) == 16 and bucket(17, 16) == 32 and bucket(3, 1, 8) == 8


def test_left_padding_layout():
    ids, mask = pad_prompts([[7, 8], [9]], 4, 3, 0, "left")
    np.testing.assert_array_equal(ids, [[0, 0, 7, 8], [0, 0, 0, 9], [0, 0, 0, 0]])
    np.testing.assert_array_equal(mask, [[0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 1]])


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_mesh_sharded_decoding_matches_single_device(char_gpt2, strategy):
    _, loaded = char_gpt2
    from rt_jax import parallel
    mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    config = DecodeConfig(strategy=strategy, num_beams=2, max_new_tokens=6)
    prompts = ["abc", "hello there", "x"]
    assert decode_texts(loaded, prompts, config, mesh=mesh) == decode_texts(loaded, prompts, config)
