"""Padding fraction of real Fine-tune-CoT batches: the reference's collation vs rt_jax's.

MultiArith train split, teacher rationales from Kojima et al.'s text-davinci-002 log (ft_cot:
the correct ones), formatted by rt_jax.formats, batch 8. Compared:
- reference: reasoning-teacher tokenizes the whole training set in one `map` call, so every
  example is padded to the longest of the dataset (decoder: left; encoder-decoder: input and
  label each to their longest);
- padded: rt_jax per-batch right padding to a bucketed length;
- packed: first-fit rows of --seq_len tokens.
No GPT-2 vocabulary is available offline, so token counts come from a stand-in: a byte-level
BPE (--vocab_size) trained on the task's questions and rationales, and raw bytes.

    python benchmarks/padding.py [--seq_len 1024] [--vocab_size 4096]
"""

import argparse
import tempfile

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from rt_jax.data.batching import BatchIterator, token_slots
from rt_jax.data.packing import split_row
from rt_jax.data.pairs import build_training_pairs
from rt_jax.data.tokenize import tokenize_pairs
from rt_jax.models import ByteTokenizer, gpt2, t5
from rt_jax.teacher.import_kojima import import_log
from rt_jax.teacher.store import RationaleStore

LOG = "raw/kojima_zero_shot_cot/log/multiarith_zero_shot_cot.log"


def bpe_tokenizer(texts, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def reference_slots(examples, is_encoder_decoder):
    """Slots of the reference's collation: everything padded to the dataset's longest."""
    if is_encoder_decoder:
        return len(examples) * (max(len(e.prompt_ids) for e in examples) + max(len(e.target_ids) for e in examples))
    return len(examples) * max(len(e.prompt_ids) + len(e.target_ids) for e in examples)


def report(name, examples, is_encoder_decoder, seq_len, batch_size):
    real = sum(len(e.prompt_ids) + len(e.target_ids) for e in examples)
    ref = reference_slots(examples, is_encoder_decoder)
    rows = [("reference (pad to dataset longest)", ref, -(-len(examples) // batch_size))]
    packed_rows = (seq_len, None)
    if is_encoder_decoder:  # encoder and decoder rows share seq_len, as rt_jax.data.pipeline does
        packed_rows = split_row(np.array([e.length(True) for e in examples]), seq_len)
    for label, packing in (("padded per batch, bucketed", False), (f"packed into {seq_len}-token rows", True)):
        enc_len, dec_len = packed_rows if packing else (seq_len, seq_len)
        it = BatchIterator(
            examples, batch_size, 0, packing, enc_len, target_seq_len=dec_len, is_encoder_decoder=is_encoder_decoder
        )
        s = token_slots(it)
        rows.append((label, s["slots"], s["steps"]))
    print(f"\n{name}: {len(examples)} examples, {real} real tokens, mean {real / len(examples):.0f} per example")
    for label, slots, steps in rows:
        print(
            f"  {label:40s} padding {100 * (1 - real / slots):5.1f}%   slots/epoch {slots:8d}   "
            f"steps/epoch {steps:4d}   useful/slot vs reference {ref / slots:4.2f}x"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", default="../shared/data")
    ap.add_argument("--seq_len", type=int, default=1024)
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--vocab_size", type=int, default=4096)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        import_log(RationaleStore(cache), f"{args.data_dir}/{LOG}", args.data_dir, [])
        pairs = {
            enc_dec: build_training_pairs(
                "multiarith", "ft_cot", data_dir=args.data_dir, is_encoder_decoder=enc_dec, teacher_cache_dir=cache
            )
            for enc_dec in (False, True)
        }
    texts = [p.prompt + p.target for p in pairs[False]]
    bpe = bpe_tokenizer(texts, args.vocab_size)
    words = sum(len(t.split()) for t in texts)
    tokens = sum(len(ids) for ids in bpe(texts)["input_ids"])
    print(f"multiarith ft_cot, batch {args.batch_size}; BPE stand-in: {tokens / words:.2f} tokens per word")
    for tok_name, tok in (("BPE", bpe), ("bytes", ByteTokenizer(add_eos=False))):
        for enc_dec in (False, True):
            examples = tokenize_pairs(pairs[enc_dec], tok, t5.FAMILY if enc_dec else gpt2.FAMILY, args.seq_len)
            kind = "encoder-decoder" if enc_dec else "decoder-only"
            report(f"{kind}, {tok_name}", examples, enc_dec, args.seq_len, args.batch_size)


if __name__ == "__main__":
    main()
