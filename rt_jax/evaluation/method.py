"""Evaluating a method's prompts: its prompt and answer prefix per question (Zero-shot-CoT in
Kojima et al.'s two steps, Few-shot-CoT with the paper's exemplars, every other method or
template by rt_jax.formats), and Wang et al.'s self-consistency over sampled completions."""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Any, Sequence

from rt_jax import decoding, formats, methods
from rt_jax.errors import UserError
from rt_jax.evaluation import predictions
from rt_jax.evaluation.score import decode, decode_config, evaluate_prompts
from rt_jax.models import chat


def check_chat_template(config, tokenizer=None) -> None:
    """Before any work: config.eval.chat_template is for the prompting baselines (fine-tuning
    trains and tests on the paper's plain format), and `tokenizer`, when given, has a template."""
    if not config.eval.get("chat_template", False):
        return
    method = methods.find(config.method)
    if method is None or not method.is_prompting or config.template:
        raise UserError(
            f"--config.eval.chat_template: for the prompting baselines zs, zs_cot and fs_cot only; "
            f"{config.method!r} trains and tests on the paper's plain format"
        )
    if tokenizer is not None:
        chat.chat_prompt(tokenizer, "")  # a one-line UserError without a template


def in_chat_template(tokenizer, prompt: str) -> str:
    """`prompt` as the user turn of the tokenizer's chat template, as text the decoder encodes
    (with the tokenizer's special tokens) to exactly the template's ids: a BOS the template
    writes is dropped when the tokenizer adds it itself."""
    text = chat.chat_prompt(tokenizer, prompt)
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos) and tokenizer.encode("")[:1] == [tokenizer.bos_token_id]:
        text = text[len(bos) :]
    return text


def prompts_for(
    method: str, task: str, examples: Sequence[Any], loaded, data_dir, chat_template: bool = False
) -> tuple[list[str], str | None]:
    """One prompt per example and the answer prefix to score with, for a method or template
    name (not zs_cot: two steps, see evaluate_method); with `chat_template`, each prompt is
    the user turn of the student tokenizer's chat template."""
    template = methods.template(method)
    if template == "fs_cot":
        prompts = [formats.fs_cot_prompt(task, ex.question, data_dir) for ex in examples]
    else:
        kind = formats.model_type(loaded.is_encoder_decoder)
        prompts = [formats.format_example(template, kind, ex.question).prompt for ex in examples]
    if chat_template:
        prompts = [in_chat_template(loaded.tokenizer, p) for p in prompts]
    return prompts, formats.answer_prefix(template)


def evaluate_method(
    loaded,
    params,
    task: str,
    examples: Sequence[Any],
    method: str,
    settings: decoding.DecodeConfig,
    out_dir: str | os.PathLike,
    epoch: int,
    *,
    model: str = "student",
    saved_as: str | None = None,
    data_dir=None,
    mesh=None,
    chat_template: bool = False,
) -> dict[str, Any]:
    """Accuracy of `params` on `examples` prompted as `method` (a method or an rt_jax.formats
    template name); the predictions of `model` are saved under out_dir as method `saved_as`
    (default `method`). Zero-shot-CoT runs Kojima et al.'s two steps: a rationale, then the
    answer after the task's trigger (with `chat_template`, the reasoning prompt is the template's
    user turn and the trigger follows the rationale in the assistant's turn). Returns
    evaluate_prompts' summary."""
    common = dict(model=model, method=saved_as or method, mesh=mesh)
    if method != "zs_cot":
        prompts, prefix = prompts_for(method, task, examples, loaded, data_dir, chat_template)
        return evaluate_prompts(loaded, params, task, examples, prompts, prefix, settings, out_dir, epoch, **common)
    reasoning = [formats.zs_cot_reasoning_prompt(ex.question) for ex in examples]
    if chat_template:
        reasoning = [in_chat_template(loaded.tokenizer, p) for p in reasoning]
    step1 = decoding.validate(dataclasses.replace(settings, max_new_tokens=formats.ZS_COT_REASONING_MAX_TOKENS))
    rationales = [d.text for d in decode(loaded, params, reasoning, step1, mesh)]
    answers = [formats.zs_cot_answer_prompt(task, p, r) for p, r in zip(reasoning, rationales)]
    step2 = decoding.validate(
        dataclasses.replace(settings, strategy="greedy", num_beams=1, max_new_tokens=formats.ZS_COT_ANSWER_MAX_TOKENS)
    )
    return evaluate_prompts(loaded, params, task, examples, answers, None, step2, out_dir, epoch, **common)


def evaluate_run_method(
    loaded, params, config, examples: Sequence[Any], out_dir, epoch: int, *, settings=None, saved_as=None, mesh=None
) -> dict[str, Any]:
    """evaluate_method as a run config says: its template (else its method), its decoding
    settings (config.eval; `settings` replaces them), its student's name, task and data_dir;
    predictions saved as config.method (or `saved_as`)."""
    return evaluate_method(
        loaded,
        params,
        config.task,
        examples,
        config.template or config.method,
        settings or decode_config(config),
        out_dir,
        epoch,
        model=config.student,
        saved_as=saved_as or config.method,
        data_dir=config.data_dir,
        mesh=mesh,
        chat_template=config.eval.get("chat_template", False),
    )


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most frequent prediction (None ignored); ties go to the one seen first."""
    counts = collections.Counter(p for p in answers if p is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(p for p in answers if p is not None and counts[p] == top)


def self_consistency(
    loaded,
    params,
    config,
    examples: Sequence[Any],
    out_dir,
    epoch: int,
    num_samples: int,
    temperature: float = 0.7,
    *,
    mesh=None,
) -> dict:
    """Wang et al.'s self-consistency: sample `num_samples` completions per question and score
    the majority answer. Returns {"accuracy", "num_test", "num_correct", "sample_accuracy",
    "predictions_path"}; sample_accuracy is the mean accuracy of single samples. Predictions
    are saved as method `<method>-sc<N>`."""
    if config.method == "zs_cot":
        raise UserError(
            "--self_consistency: zs_cot answers in two steps; use it with zs, fs_cot or a fine-tuned method"
        )
    if num_samples < 1:
        raise UserError(f"--self_consistency={num_samples}: expected a number of samples >= 1")
    settings = decode_config(
        config, strategy="sample", temperature=temperature, num_beams=1, num_return_sequences=num_samples
    )
    method = f"{config.method}-sc{num_samples}"
    out = evaluate_run_method(
        loaded, params, config, examples, out_dir, epoch, mesh=mesh, settings=settings, saved_as=method
    )
    records = predictions.read_predictions(
        out_dir, config.student, predictions.predictions_method(method, epoch), config.task
    )
    num_correct, sample_correct = 0, 0
    for ex in examples:
        recs = records[int(ex.sample_index)][:num_samples]
        vote = majority_vote([r.prediction for r in recs])
        # a record holding the majority prediction carries its score against the gold answer
        num_correct += any(r.prediction == vote and r.correct for r in recs) if vote is not None else 0
        sample_correct += sum(r.correct for r in recs)
    n = len(examples)
    return {
        "accuracy": 100.0 * num_correct / n,
        "num_test": n,
        "num_correct": num_correct,
        "sample_accuracy": 100.0 * sample_correct / (n * num_samples),
        "predictions_path": out["predictions_path"],
    }
