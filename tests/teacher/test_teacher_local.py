"""A local rt_jax model as the teacher (tiny random GPT-2, byte tokenizer): it fills and resumes a cache,
and what it writes is what rt_jax's sampler decodes for the same prompts."""

import jax
import pytest
from transformers import GPT2Config

from rt_jax.decoding import DecodeConfig, decode_texts
from rt_jax.models import ByteTokenizer, from_config
from rt_jax.tasks import Example, score
from rt_jax.teacher.backends import LocalModelBackend
from rt_jax.teacher.generate import answer_prompt, generate_rationales, reasoning_prompt
from rt_jax.teacher.store import RationaleStore

TRIGGER = "\nTherefore, the answer (arabic numerals) is"


@pytest.fixture(scope="module")
def tiny_teacher():
    tok = ByteTokenizer()
    config = GPT2Config(
        n_layer=1,
        n_embd=16,
        n_head=2,
        n_positions=256,
        vocab_size=tok.vocab_size,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return from_config(config, seed=3, tokenizer=tok)


def _examples(n):
    return [Example(i, f"What is {i} + {i}?", str(2 * i)) for i in range(n)]


def test_local_teacher_fills_and_resumes_a_cache(tiny_teacher, tmp_path):
    store = RationaleStore(tmp_path)
    backend = LocalModelBackend(tiny_teacher, batch_size=4)
    kwargs = dict(
        num_completions=2, temperature=0.7, max_reasoning_tokens=6, max_answer_tokens=3, chunk_size=4, progress=False
    )
    first = generate_rationales(store, backend, "multiarith", _examples(2), "tiny", **kwargs)
    assert (first.requested, first.cached, first.written) == (4, 0, 4)
    before = store.read("tiny", "zs_cot_t70", "multiarith")
    second = generate_rationales(store, backend, "multiarith", _examples(4), "tiny", **kwargs)
    assert (second.requested, second.cached, second.written) == (8, 4, 4)
    records = store.read("tiny", "zs_cot_t70", "multiarith")
    assert records[:4] == before
    assert sorted(r.key[3:] for r in records) == [(i, c) for i in range(4) for c in range(2)]
    for r in records:
        ex = _examples(4)[r.sample_index]
        assert r.reasoning_prompt == f"Q: {ex.question}\nA: Let's think step by step."
        assert r.answer_prompt == answer_prompt(r.reasoning_prompt, r.reasoning_completion, TRIGGER)
        assert r.reasoning_finish_reason in ("stop", "length") and r.answer_finish_reason in ("stop", "length")
        s = score("multiarith", r.answer_completion, ex.answer)
        assert r.correct == s.correct


def test_local_backend_returns_the_samplers_output(tiny_teacher):
    # The answer step's settings above, so the compiled decoder is reused.
    prompts = [answer_prompt(reasoning_prompt(ex.question), " 2 and 2.", TRIGGER) for ex in _examples(3)]
    outs = LocalModelBackend(tiny_teacher, batch_size=4).complete(prompts, 3, 0.0, seed=0)
    expect = decode_texts(
        tiny_teacher, prompts, DecodeConfig(max_new_tokens=3, batch_size=4), key=jax.random.PRNGKey(0)
    )
    assert [o.text for o in outs] == [e.text for e in expect]
    assert [o.finish_reason for o in outs] == ["length" if e.finish_reason == "length" else "stop" for e in expect]


@pytest.mark.slow
def test_cli_generate_with_a_saved_local_model(tmp_path, data_dir):
    import os
    import subprocess
    import sys

    from rt_jax.models import save_pretrained
    from rt_jax.teacher.store import RationaleStore

    tok = ByteTokenizer()
    config = GPT2Config(
        n_layer=1,
        n_embd=16,
        n_head=2,
        n_positions=1024,
        vocab_size=tok.vocab_size,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    teacher = from_config(config, tokenizer=tok)  # coin_flip prompts are ~400 bytes
    model_dir = tmp_path / "model"
    save_pretrained(teacher, model_dir)
    tok.save_pretrained(model_dir)
    args = [
        sys.executable,
        "-m",
        "rt_jax.teacher",
        "generate",
        "--backend=local",
        f"--model={model_dir}",
        "--teacher=tiny",
        f"--cache_dir={tmp_path / 'cache'}",
        f"--data_dir={data_dir}",
        "--tasks=coin_flip",
        "--limit=2",
        "--max_reasoning_tokens=4",
        "--max_answer_tokens=2",
        "--batch_size=2",
    ]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert "coin_flip: requested=2 cached=0 written=2" in out.stdout
    records = RationaleStore(tmp_path / "cache").read("tiny", "zs_cot", "coin_flip")
    assert [r.sample_index for r in records] == sorted(load_split_train(data_dir)[:2])


def load_split_train(data_dir):
    from rt_jax.tasks import load_split

    return load_split("coin_flip", data_dir).train
