"""tokenize_pairs honours the family's TokenizerPolicy: BOS once at the start, EOS where it says."""

import collections
import dataclasses

from rt_jax.data.tokenize import tokenize_pairs
from rt_jax.models import TokenizerPolicy, gpt2, t5

Pair = collections.namedtuple("Pair", "sample_index prompt target")
BOS, EOS = 1, 2


class BosTokenizer:
    """Bytes + 3 as ids; with its special tokens it prepends BOS, as Llama's tokenizer does."""

    bos_token_id, eos_token_id = BOS, EOS

    def encode(self, text, add_special_tokens=True):
        ids = [b + 3 for b in text.encode()]
        return [BOS] + ids if add_special_tokens else ids


def ids(text):
    return [b + 3 for b in text.encode()]


BOS_DECODER = dataclasses.replace(
    gpt2.FAMILY, name="bos", tokenizer=TokenizerPolicy(add_bos=True, append_eos=True, prompt_padding="left")
)


def test_bos_family_gets_one_bos_at_the_start_and_an_eos_at_the_end():
    (ex,) = tokenize_pairs([Pair(0, "Q: 2+2? ###", " 4")], BosTokenizer(), BOS_DECODER, max_length=64)
    assert ex.prompt_ids.tolist() == [BOS] + ids("Q: 2+2? ###")
    assert ex.target_ids.tolist() == ids(" 4") + [EOS]  # no BOS before the target
    whole = ex.prompt_ids.tolist() + ex.target_ids.tolist()
    assert whole.count(BOS) == 1


def test_bos_survives_truncation():
    (ex,) = tokenize_pairs([Pair(0, "p" * 20, " t")], BosTokenizer(), BOS_DECODER, max_length=8)
    assert ex.prompt_ids.tolist() == [BOS] + ids("p" * 6) and ex.target_ids.tolist() == ids(" ")


def test_gpt2_and_t5_policies_place_no_bos():
    (dec,) = tokenize_pairs([Pair(0, "q", " a")], BosTokenizer(), gpt2.FAMILY, max_length=16)
    assert dec.prompt_ids.tolist() == ids("q") and dec.target_ids.tolist() == ids(" a") + [EOS]
    # T5 leaves special tokens to its tokenizer (here one that prepends BOS) and ensures EOS last
    (enc,) = tokenize_pairs([Pair(0, "q", " a")], BosTokenizer(), t5.FAMILY, max_length=16)
    assert enc.prompt_ids.tolist() == [BOS] + ids("q") + [EOS]
    assert enc.target_ids.tolist() == [BOS] + ids(" a") + [EOS]


class QuietBosTokenizer(BosTokenizer):
    """Has a BOS token but never adds it (SmolLM2); with bos_token_id None, has none (Qwen2.5)."""

    def encode(self, text, add_special_tokens=True):
        return ids(text)


def test_bos_only_where_the_tokenizer_itself_starts_texts_with_it():
    quiet, none = QuietBosTokenizer(), QuietBosTokenizer()
    none.bos_token_id = None
    for tokenizer in (quiet, none):
        (ex,) = tokenize_pairs([Pair(0, "q", " a")], tokenizer, BOS_DECODER, max_length=16)
        assert ex.prompt_ids.tolist() == ids("q") and ex.target_ids.tolist() == ids(" a") + [EOS]
