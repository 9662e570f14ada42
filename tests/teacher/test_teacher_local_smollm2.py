"""SmolLM2-135M-Instruct as the teacher inside rt_jax, end to end on the 8-fake-device mesh: D = 4
samples of 4 coin_flip training questions with the command line (its chat template applied) into
the cache; the rerun adds nothing; `teacher stats` agrees with the cache; selection keeps exactly
the rationales the real scorer calls correct; a tiny student trains on them."""

import dataclasses
import json
import math
import subprocess
import sys

import pytest
import transformers

from rt_jax import models
from rt_jax.configs import paper
from rt_jax.models import ByteTokenizer, chat
from rt_jax.tasks import load_dataset, load_split, score
from rt_jax.teacher.generate import COT_TRIGGER
from rt_jax.teacher.record import USAGE_KEYS
from rt_jax.teacher.select import train_rationales
from rt_jax.teacher.store import RationaleStore

TEACHER, METHOD, D, QUESTIONS = "smollm2-135m-instruct", "zs_cot_t70", 4, 4


def teacher_cli(*args):
    """The command line, with time for SmolLM2 on 8 fake devices (~5 min on the shared machine)."""
    return subprocess.run([sys.executable, "-m", "rt_jax.teacher", *args], capture_output=True, text=True, timeout=1500)


def generate(smollm2_dir, cache, data_dir):
    return teacher_cli(
        "generate",
        "--backend=local",
        f"--model={smollm2_dir}",
        "--mesh=data=2,fsdp=2,tensor=2",
        "--dtype=float32",
        f"--teacher={TEACHER}",
        f"--cache_dir={cache}",
        f"--data_dir={data_dir}",
        "--tasks=coin_flip",
        f"--limit={QUESTIONS}",
        f"--num_completions={D}",
        "--temperature=0.7",
        "--max_reasoning_tokens=32",
        "--max_answer_tokens=8",
    )


def tiny_student_dir(directory):
    tok = ByteTokenizer()
    config = transformers.GPT2Config(
        vocab_size=tok.vocab_size,
        n_positions=1024,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    models.save_pretrained(models.from_config(config, seed=0, tokenizer=tok), directory)
    return directory


@pytest.mark.slow  # loads SmolLM2 twice and trains: ~10 minutes on the shared 2-core machine
def test_smollm2_teacher_to_trained_student(smollm2_dir, data_dir, tmp_path):
    cache = tmp_path / "cache"
    first = generate(smollm2_dir, cache, data_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"coin_flip: requested={D * QUESTIONS} cached=0 written={D * QUESTIONS}" in first.stdout

    store = RationaleStore(cache)
    records = store.read(TEACHER, METHOD, "coin_flip")
    train = load_split("coin_flip", data_dir).train
    questions = sorted(train)[:QUESTIONS]
    assert sorted(r.key[3:] for r in records) == [(i, c) for i in questions for c in range(D)]
    dataset = load_dataset("coin_flip", data_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(smollm2_dir)
    for r in records:
        assert r.reasoning_prompt == f"Q: {dataset[r.sample_index].question.strip()}\nA: {COT_TRIGGER}"
        assert [m["role"] for m in r.messages] == ["user", "assistant", "user", "assistant"]
        assert r.answer_prompt == "Therefore, the answer (Yes or No) is"
        assert r.correct == score("coin_flip", r.answer_completion, dataset[r.sample_index].answer).correct
    # the template was applied: the prompt tokens are the templated conversations', a question's
    # reasoning prompt counted once over its D samples
    for i in questions:
        mine = [r for r in records if r.sample_index == i]
        prompt = len(chat.conversation_ids(tokenizer, mine[0].messages[:1]))
        answers = sum(len(chat.conversation_ids(tokenizer, r.messages[:3])) for r in mine)
        assert sum(r.usage["prompt_tokens"] for r in mine) == prompt + answers
    assert len({r.reasoning_completion for r in records if r.sample_index == questions[0]}) > 1  # sampled

    again = generate(smollm2_dir, cache, data_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"coin_flip: requested={D * QUESTIONS} cached={D * QUESTIONS} written=0" in again.stdout
    assert store.read(TEACHER, METHOD, "coin_flip") == records

    out = teacher_cli(
        "stats", f"--cache_dir={cache}", f"--data_dir={data_dir}", f"--teacher={TEACHER}", f"--method={METHOD}"
    )
    assert out.returncode == 0, out.stderr
    out_json = teacher_cli(
        "stats",
        "--json",
        f"--cache_dir={cache}",
        f"--data_dir={data_dir}",
        f"--teacher={TEACHER}",
        f"--method={METHOD}",
    )
    stats = json.loads(out_json.stdout)["coin_flip"]
    correct = [r for r in records if r.correct]
    assert (stats["samples"], stats["completions"], stats["train_samples"]) == (QUESTIONS, D * QUESTIONS, QUESTIONS)
    assert stats["accuracy"] == pytest.approx(100 * len(correct) / len(records))
    assert stats["train_samples_with_correct"] == len({r.sample_index for r in correct})
    for key in USAGE_KEYS:
        assert stats[key] == sum(r.usage[key] for r in records)
        assert str(stats[key]) in out.stdout

    chosen = train_rationales(store, "coin_flip", data_dir, TEACHER, METHOD, max_per_sample=D)
    by_order = sorted(correct, key=lambda r: (train.index(r.sample_index), r.completion_index))
    assert chosen == by_order
    assert chosen, "the teacher got no question right: nothing to train on"

    from rt_jax.data.pipeline import build_training_data
    from rt_jax.student import load_student
    from rt_jax.train import loop

    config = paper.get_config(f"coin_flip,ft_cot_t70_{D}aug,gpt2")
    config.model_path = str(tiny_student_dir(tmp_path / "student"))
    config.data_dir, config.teacher_cache_dir, config.teacher = str(data_dir), str(cache), TEACHER
    config.train.num_epochs, config.train.batch_size, config.train.max_seq_len = 1, 8, 512
    config.train.log_every_steps, config.eval.max_new_tokens, config.eval.batch_size = 1, 8, 64
    loaded = load_student(config)
    data = build_training_data(config, loaded.tokenizer, loaded.family)
    assert sorted(p.sample_index for p in data.pairs) == sorted(r.sample_index for r in chosen)
    loop.train(config, tmp_path / "run", loaded=dataclasses.replace(loaded), data=data)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["teacher"]["name"] == TEACHER and results["teacher"]["cache_method"] == METHOD
    assert results["teacher"]["rationales_used"] == len(chosen)
    assert results["teacher"]["rationales_filtered_out"] == len(records) - len(chosen)
    assert results["epochs"][0]["num_test"] == len(load_split("coin_flip", data_dir).test)
    assert 0 <= results["final"]["accuracy"] <= 100
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [line["train/loss"] for line in lines if "train/loss" in line]
    assert losses and all(math.isfinite(loss) for loss in losses)
