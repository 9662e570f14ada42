"""ByteTokenizer: UTF-8 round trips, specials, save/load."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rt_jax.errors import UserError
from rt_jax.models.byte_tokenizer import ByteTokenizer, is_byte_tokenizer_dir


@given(st.text())
def test_round_trip_any_text(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert tok.decode(ids) == text


def test_specials_and_eos():
    tok = ByteTokenizer(add_eos=True)
    assert tok.encode("ab") == [97, 98, tok.eos_token_id]
    assert tok.encode("ab", add_special_tokens=False) == [97, 98]
    ids = [tok.pad_token_id, 104, 105, tok.eos_token_id]
    assert tok.decode(ids) == "hi"
    assert tok.decode(ids, skip_special_tokens=False) == "<pad>hi<eos>"
    assert tok.batch_decode([[104], [105]]) == ["h", "i"]
    assert tok(["a", "bc"])["input_ids"] == [[97, tok.eos_token_id], [98, 99, tok.eos_token_id]]
    assert len(tok) == tok.vocab_size == 258
    assert tok.decode([0xE2, 0x82]) == "\ufffd"  # a cut multi-byte character decodes, replaced


def test_save_and_load(tmp_path):
    tok = ByteTokenizer(padding_side="left", add_eos=True)
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "ByteTokenizer"
    assert is_byte_tokenizer_dir(tmp_path)
    loaded = ByteTokenizer.from_pretrained(tmp_path)
    assert (loaded.padding_side, loaded.add_eos) == ("left", True)
    assert not is_byte_tokenizer_dir(tmp_path / "missing")
    with pytest.raises(UserError, match="tokenizer_class"):
        ByteTokenizer.from_pretrained(tmp_path / "missing")
