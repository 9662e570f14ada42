"""Zero-shot-CoT rationale generation with any backend, filling the cache and resuming it.

Two steps per completion, as Kojima et al. ran text-davinci-002:
1. reasoning: "Q: <question>\\nA: Let's think step by step." -> rationale (128 tokens, greedy or
   sampled at `temperature`);
2. answer: reasoning prompt + rationale + " " + the task's trigger -> answer text (32 tokens, greedy).
A record is written once both steps are done, chunk by chunk, so an interrupted run loses at most
the chunk in flight and a re-run only generates the (sample, completion) pairs not yet cached.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Iterable, Sequence

from rt_jax.teacher.backends import TeacherError
from rt_jax.teacher.record import Record
from rt_jax.teacher.store import RationaleStore

COT_TRIGGER = "Let's think step by step."
MAX_REASONING_TOKENS = 128
MAX_ANSWER_TOKENS = 32


def method_name(temperature: float) -> str:
    """The paper's names: "zs_cot" for greedy, "zs_cot_t70" for temperature 0.7."""
    return "zs_cot" if temperature == 0 else f"zs_cot_t{round(temperature * 100)}"


def reasoning_prompt(question: str) -> str:
    return f"Q: {question.strip()}\nA: {COT_TRIGGER}"


def answer_prompt(reasoning: str, rationale: str, trigger: str) -> str:
    return f"{reasoning}{rationale} {trigger}"


@dataclasses.dataclass
class GenerateReport:
    task: str
    requested: int = 0  # (sample, completion) pairs asked for
    cached: int = 0  # already in the cache, skipped
    written: int = 0


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm  # rate and ETA for free

    return tqdm(total=total, desc=desc, unit="completion", disable=not enabled, smoothing=0.1)


def generate_rationales(
    store: RationaleStore,
    backend,
    task: str,
    examples: Sequence,
    teacher: str,
    num_completions: int = 1,
    temperature: float = 0.0,
    method: str | None = None,
    trigger: str | None = None,
    max_reasoning_tokens: int = MAX_REASONING_TOKENS,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
    chunk_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    problems: list[str] | None = None,
) -> GenerateReport:
    """Fill completions 0..num_completions-1 of every example (rt_jax.tasks.Example) for `task`."""
    from rt_jax.tasks import score, task_info

    trigger = task_info(task).trigger if trigger is None else trigger
    method = method or method_name(temperature)
    report = GenerateReport(task)
    with store.writer(teacher, method, task, problems) as writer:
        todo = []
        for ex in examples:
            for c in range(num_completions):
                report.requested += 1
                if (teacher, method, task, ex.sample_index, c) in writer:
                    report.cached += 1
                else:
                    todo.append((ex, c))
        bar = _progress(len(todo), f"{teacher}/{method}/{task}", progress)
        try:
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start : start + chunk_size]
                # A chunk's seed depends on its first item, so a resumed run does not replay old draws.
                chunk_seed = seed + zlib.crc32(f"{task}/{chunk[0][0].sample_index}/{chunk[0][1]}".encode())
                prompts = [reasoning_prompt(ex.question) for ex, _ in chunk]
                rationales = backend.complete(prompts, max_reasoning_tokens, temperature, chunk_seed)
                second = [answer_prompt(p, r.text, trigger) for p, r in zip(prompts, rationales)]
                answers = backend.complete(second, max_answer_tokens, 0.0, chunk_seed)
                if not len(rationales) == len(answers) == len(chunk):
                    raise TeacherError(
                        f"{type(backend).__name__} returned {len(rationales)}/{len(answers)} "
                        f"completions for {len(chunk)} prompts"
                    )
                for (ex, c), p1, r, p2, a in zip(chunk, prompts, rationales, second, answers):
                    result = score(task, a.text, ex.answer)
                    writer.append(
                        Record(
                            teacher=teacher,
                            method=method,
                            task=task,
                            sample_index=ex.sample_index,
                            completion_index=c,
                            reasoning_prompt=p1,
                            reasoning_completion=r.text,
                            answer_prompt=p2,
                            answer_completion=a.text,
                            reasoning_finish_reason=r.finish_reason,
                            answer_finish_reason=a.finish_reason,
                            prediction=None if result.prediction is None else str(result.prediction),
                            correct=bool(result.correct),
                            extra={"temperature": temperature},
                        )
                    )
                    report.written += 1
                bar.update(len(chunk))
        finally:
            bar.close()
    return report


def examples_for(dataset, sample_indices: Iterable[int] | None):
    """Examples of `dataset` at `sample_indices` (all available ones when None)."""
    return list(dataset) if sample_indices is None else dataset.select(sample_indices)
