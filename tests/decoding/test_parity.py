"""Greedy and beam search give token-for-token transformers' generate output."""

import pytest
import torch
import transformers

from rt_jax.decoding import DecodeConfig, Decoder

PROMPTS = [[5, 17, 33], [40, 41, 42, 43, 44, 45, 46], [9], [70, 3, 3, 60, 12], [11] * 12]
NEW = 12


def hf_generate(hf_model, prompts, eos, **settings):
    """transformers' output per prompt: list of num_return_sequences generated id tuples,
    cut after the first EOS (everything after it is padding)."""
    enc_dec = hf_model.config.is_encoder_decoder
    width = max(map(len, prompts))
    ids = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):  # left padding (right padding for the T5 encoder)
        sl = slice(0, len(p)) if enc_dec else slice(width - len(p), width)
        ids[i, sl], mask[i, sl] = torch.tensor(p), 1
    fields = dict(  # every field that changes the output set explicitly, so no default differs
        max_new_tokens=NEW,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=eos,
        decoder_start_token_id=hf_model.config.decoder_start_token_id if enc_dec else None,
        num_beams=1,
        length_penalty=1.0,
        early_stopping=False,
        num_return_sequences=1,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        min_length=0,
    )
    config = transformers.GenerationConfig(**{**fields, **settings})
    with torch.inference_mode():
        out = hf_model.generate(ids, attention_mask=mask, generation_config=config).numpy()
    generated = out[:, 1:] if enc_dec else out[:, width:]
    n = settings.get("num_return_sequences", 1)
    results = []
    for row in generated:
        row = list(int(x) for x in row)
        if eos in row:
            row = row[: row.index(eos) + 1]
        results.append(tuple(row))
    return [results[i * n : (i + 1) * n] for i in range(len(prompts))]


def eos_seen_midway(hf_model):
    """An EOS id that greedy decoding emits part-way, so EOS handling is exercised."""
    free = hf_generate(hf_model, PROMPTS, eos=-100)
    return free[0][0][2]


def ours(loaded, eos, batch_size=16, **settings):
    config = DecodeConfig(max_new_tokens=NEW, eos_token_id=eos, batch_size=batch_size, **settings)
    return [[o[0] for o in outs] for outs in Decoder(loaded, config).decode_ids(PROMPTS)]


@pytest.mark.parametrize("arch", ["gpt2", pytest.param("t5", marks=pytest.mark.slow), "t5_v11", "llama"])
def test_greedy_matches_transformers(request, arch):
    hf_model, loaded = request.getfixturevalue(f"{arch}_pair")
    eos = eos_seen_midway(hf_model)
    expected = hf_generate(hf_model, PROMPTS, eos)
    assert any(len(e[0]) < NEW for e in expected)  # some rows stop at EOS
    assert ours(loaded, eos) == expected


BEAMS = {
    "k3_lp1_nrs2": dict(num_beams=3, length_penalty=1.0, early_stopping=False, num_return_sequences=2),
    "k4_lp2_early": dict(num_beams=4, length_penalty=2.0, early_stopping=True, num_return_sequences=1),
    "k2_neglp_never": dict(num_beams=2, length_penalty=-0.5, early_stopping="never", num_return_sequences=2),
    "k3_lp1.5_never": dict(num_beams=3, length_penalty=1.5, early_stopping="never", num_return_sequences=3),
}
# The default run covers each architecture and early_stopping mode once; the full matrix is slow.
DEFAULT = {("gpt2", "k3_lp1_nrs2"), ("t5", "k4_lp2_early"), ("gpt2", "k3_lp1.5_never"), ("llama", "k3_lp1_nrs2")}
CASES = [
    pytest.param(arch, name, marks=() if (arch, name) in DEFAULT else pytest.mark.slow, id=f"{arch}-{name}")
    for arch in ("gpt2", "t5", "t5_v11", "llama")
    for name in BEAMS
]


@pytest.mark.parametrize("arch,name", CASES)
def test_beam_matches_transformers(request, arch, name):
    hf_model, loaded = request.getfixturevalue(f"{arch}_pair")
    settings = BEAMS[name]
    eos = eos_seen_midway(hf_model)
    expected = hf_generate(hf_model, PROMPTS, eos, **settings)
    assert ours(loaded, eos, strategy="beam", **settings) == expected


@pytest.mark.slow
def test_beam_without_eos_runs_to_max_length(gpt2_pair):
    hf_model, loaded = gpt2_pair
    settings = dict(num_beams=3, length_penalty=1.0, early_stopping=False, num_return_sequences=3)
    expected = hf_generate(hf_model, PROMPTS, -100, **settings)
    got = ours(loaded, -100, strategy="beam", **settings)
    assert got == expected
    assert all(len(seq) == NEW for outs in got for seq in outs)
