"""Sampling: reproducible per key, first-token law = softmax, top-k/top-p sets respected."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from scipy import stats
from transformers.generation import logits_process

from rt_jax.decoding import DecodeConfig, Decoder
from rt_jax.decoding.sampling import filter_logits

PROMPTS = [[5, 17, 33], [40, 41, 42, 43, 44, 45, 46], [9]]


def hf_next_logits(hf_model, prompt):
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        if hf_model.config.is_encoder_decoder:
            start = torch.tensor([[hf_model.config.decoder_start_token_id]])
            return hf_model(input_ids=ids, decoder_input_ids=start).logits[0, -1].numpy()
        return hf_model(ids).logits[0, -1].numpy()


@pytest.mark.parametrize("top_k,top_p,temperature", [(5, 1.0, 1.0), (0, 0.6, 1.0), (7, 0.8, 0.7), (0, 1e-6, 2.0)])
def test_filter_keeps_transformers_warper_set(top_k, top_p, temperature):
    logits = np.random.default_rng(0).normal(size=(4, 50)).astype(np.float32) * 3
    expected = torch.tensor(logits)
    for warper in [
        logits_process.TemperatureLogitsWarper(temperature),
        logits_process.TopKLogitsWarper(top_k) if top_k else None,
        logits_process.TopPLogitsWarper(top_p) if top_p < 1 else None,
    ]:
        if warper is not None:
            expected = warper(None, expected)
    got = np.asarray(filter_logits(jnp.asarray(logits), temperature, top_k, top_p))
    np.testing.assert_array_equal(np.isfinite(got), torch.isfinite(expected).numpy())
    np.testing.assert_allclose(got[np.isfinite(got)], expected.numpy()[np.isfinite(got)], rtol=1e-6)


def test_same_key_same_samples_whatever_the_batching(gpt2_pair):
    _, loaded = gpt2_pair
    config = DecodeConfig(strategy="sample", num_return_sequences=3, max_new_tokens=8, eos_token_id=-1)
    decoder = Decoder(loaded, config)
    first = decoder.decode_ids(PROMPTS, key=jax.random.PRNGKey(3))
    again = Decoder(loaded, dataclasses.replace(config, batch_size=1)).decode_ids(PROMPTS, key=jax.random.PRNGKey(3))
    other = decoder.decode_ids(PROMPTS, key=jax.random.PRNGKey(4))
    assert first == again
    assert first != other
    samples = [s[0] for outs in first for s in outs]
    assert len(set(samples)) > 1  # the N samples of a prompt differ


@pytest.mark.parametrize("pair", ["gpt2_pair", pytest.param("t5_pair", marks=pytest.mark.slow)])
def test_first_token_distribution_is_the_softmax(request, pair):
    hf_model, loaded = request.getfixturevalue(pair)
    prompt, temperature, n = [5, 17, 33], 0.7, 4000
    config = DecodeConfig(
        strategy="sample", temperature=temperature, num_return_sequences=n, max_new_tokens=1, eos_token_id=-1
    )
    outs = Decoder(loaded, config).decode_ids([prompt], key=jax.random.PRNGKey(0))[0]
    counts = np.bincount([o[0][0] for o in outs], minlength=loaded.config.vocab_size)
    probs = torch.softmax(torch.tensor(hf_next_logits(hf_model, prompt)) / temperature, -1).double().numpy()
    expected = probs * n
    big = expected >= 5  # pool rare tokens so every chi-square bin expects >= 5
    f_obs = np.append(counts[big], counts[~big].sum())
    f_exp = np.append(expected[big], expected[~big].sum())
    keep = f_exp > 0
    f_exp = f_exp[keep] * f_obs[keep].sum() / f_exp[keep].sum()
    assert stats.chisquare(f_obs[keep], f_exp).pvalue > 1e-3
    # and a distribution clearly different from it is rejected by the same test
    shifted = np.roll(f_exp, 1)
    assert stats.chisquare(f_obs[keep], shifted).pvalue < 1e-3


def test_every_sampled_token_is_in_the_allowed_set(gpt2_pair):
    hf_model, loaded = gpt2_pair
    temperature, top_k, top_p = 1.5, 4, 0.5
    config = DecodeConfig(
        strategy="sample",
        num_return_sequences=16,
        max_new_tokens=6,
        top_k=top_k,
        top_p=top_p,
        temperature=temperature,
        eos_token_id=-1,
    )
    outs = Decoder(loaded, config).decode_ids(PROMPTS, key=jax.random.PRNGKey(1))
    warpers = [
        logits_process.TemperatureLogitsWarper(temperature),
        logits_process.TopKLogitsWarper(top_k),
        logits_process.TopPLogitsWarper(top_p),
    ]
    sizes = []
    for prompt, samples in zip(PROMPTS, outs):
        seqs = torch.tensor([list(prompt) + list(s[0]) for s in samples])
        with torch.inference_mode():
            logits = hf_model(seqs).logits[:, len(prompt) - 1 : -1]
        for step in range(logits.shape[1]):
            scores = logits[:, step]
            for w in warpers:
                scores = w(None, scores)
            sizes.append(torch.isfinite(scores).sum(-1))
            chosen = seqs[:, len(prompt) + step]
            assert torch.isfinite(scores[torch.arange(len(chosen)), chosen]).all()
    sizes = torch.cat(sizes)
    assert (sizes > 1).any() and (sizes < top_k).any()  # both filters were binding somewhere
