"""Zero-shot-CoT rationale generation with any backend, filling the cache and resuming it.

Two steps per completion, as Kojima et al. ran text-davinci-002. With text prompts (the
`/completions` API, local and rule-based backends):
1. reasoning: "Q: <question>\\nA: Let's think step by step." -> rationale (128 tokens, greedy or
   sampled at `temperature`);
2. answer: reasoning prompt + rationale + " " + the task's trigger -> answer text (32 tokens, greedy).

With a chat API the two steps are one conversation. A chat server cannot be relied on to continue
a half-written assistant message, so each step ends with a user turn:
1. [user: "Q: <question>\\nA: Let's think step by step."] -> assistant: rationale;
2. [that user turn, assistant: the rationale, user: the task's trigger without its leading newline,
   e.g. "Therefore, the answer (arabic numerals) is"] -> assistant: answer text.
A chat record keeps `reasoning_prompt` = the first user turn, `answer_prompt` = the second and
`messages` = all four turns; a text record has `messages` = None.

Requests: the missing completions of a question are drawn together (`n` of them, one HTTP request);
answer prompts go `prompts_per_request` to a `/completions` request (rt_jax.teacher.openai_api).
A call's or request's seed is `seed + crc32("<task>/<sample>/<completion>")` of its first item, so
a resumed run does not replay old draws and a batch file carries the seeds `generate` would send.
Records are written once both steps are done, chunk by chunk (about `chunk_size` completions; a
question's completions are never split), so an interrupted run loses at most the chunk in flight
and a re-run only generates the (sample, completion) pairs not yet cached.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Iterator, Sequence

from rt_jax.teacher.backends import TeacherError
from rt_jax.teacher.openai_api import Completion, add_usage
from rt_jax.teacher.record import USAGE_KEYS, Record
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


def reasoning_input(api: str, question: str):
    """What the reasoning step sends: text, or the message list for a chat API."""
    prompt = reasoning_prompt(question)
    return [{"role": "user", "content": prompt}] if api == "chat" else prompt


def answer_input(reasoned: Record, trigger: str):
    """What the answer step sends after `reasoned` (a record whose reasoning step is done)."""
    if reasoned.messages is None:
        return answer_prompt(reasoned.reasoning_prompt, reasoned.reasoning_completion, trigger)
    return reasoned.messages + [{"role": "user", "content": trigger.strip()}]


def item_seed(seed: int | None, task: str, sample_index: int, completion_index: int) -> int | None:
    return None if seed is None else seed + zlib.crc32(f"{task}/{sample_index}/{completion_index}".encode())


def reasoning_record(
    teacher: str,
    method: str,
    task: str,
    sample_index: int,
    completion_index: int,
    sent,
    rationale: Completion,
    temperature: float,
) -> Record:
    """A record with its reasoning step done and its answer step empty (`sent` is what the
    reasoning step sent: reasoning_input)."""
    chat = isinstance(sent, list)
    return Record(
        teacher=teacher,
        method=method,
        task=task,
        sample_index=sample_index,
        completion_index=completion_index,
        reasoning_prompt=sent[0]["content"] if chat else sent,
        reasoning_completion=rationale.text,
        answer_prompt="",
        answer_completion="",
        reasoning_finish_reason=rationale.finish_reason,
        answer_finish_reason=None,
        prediction=None,
        correct=False,
        extra={"temperature": temperature},
        messages=sent + [{"role": "assistant", "content": rationale.text}] if chat else None,
        usage=rationale.usage,
    )


def answered_record(reasoned: Record, answer: Completion, trigger: str, gold_answer: str) -> Record:
    """`reasoned` with its answer step filled in and scored."""
    from rt_jax.tasks import score

    sent = answer_input(reasoned, trigger)
    chat = isinstance(sent, list)
    result = score(reasoned.task, answer.text, gold_answer)
    return dataclasses.replace(
        reasoned,
        answer_prompt=sent[-1]["content"] if chat else sent,
        answer_completion=answer.text,
        answer_finish_reason=answer.finish_reason,
        prediction=None if result.prediction is None else str(result.prediction),
        correct=bool(result.correct),
        messages=sent + [{"role": "assistant", "content": answer.text}] if chat else None,
        usage=add_usage(reasoned.usage, answer.usage),
    )


def missing(keys, teacher: str, method: str, task: str, examples: Sequence, num_completions: int) -> list:
    """[(example, [completion indices not in `keys`]), ...] for the examples that miss any."""
    todo = []
    for ex in examples:
        cs = [c for c in range(num_completions) if (teacher, method, task, ex.sample_index, c) not in keys]
        if cs:
            todo.append((ex, cs))
    return todo


def by_count(items: Sequence[tuple]) -> Iterator[tuple[int, list[tuple]]]:
    """(n, the (example, completion indices) items with n completions), in first-seen order: one
    `n` per call or request."""
    groups: dict[int, list[tuple]] = {}
    for item in items:
        groups.setdefault(len(item[1]), []).append(item)
    yield from groups.items()


@dataclasses.dataclass
class GenerateReport:
    task: str
    requested: int = 0  # (sample, completion) pairs asked for
    cached: int = 0  # already in the cache, skipped
    written: int = 0
    usage: dict | None = None  # summed usage of the written records (None if the server reported none)

    def add(self, record: Record) -> None:
        self.written += 1
        if record.usage is not None:
            self.usage = {k: (self.usage or {}).get(k, 0) + record.usage[k] for k in USAGE_KEYS}


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm  # rate and ETA for free

    # disable=None: only on a terminal, so a log or a pipe gets the report lines alone
    return tqdm(total=total, desc=desc, unit="completion", disable=None if enabled else True, smoothing=0.1)


def _sample(backend, prompts: list, n: int, max_tokens: int, temperature: float, seeds: list) -> list[list]:
    """`n` completions of each prompt: in one go where the backend can (`sample`), else each
    prompt repeated `n` times through `complete`, with the first prompt's seed."""
    if hasattr(backend, "sample"):
        out = backend.sample(prompts, n, max_tokens, temperature, seeds)
    else:
        flat = backend.complete([p for p in prompts for _ in range(n)], max_tokens, temperature, seeds[0])
        out = [flat[i * n : (i + 1) * n] for i in range(len(prompts))]
    if len(out) != len(prompts) or any(len(c) != n for c in out):
        raise TeacherError(
            f"{type(backend).__name__} returned the wrong number of completions for {len(prompts)} prompts"
        )
    return out


def _chunks(todo: list, chunk_size: int) -> Iterator[list]:
    chunk, size = [], 0
    for ex, cs in todo:
        if chunk and size + len(cs) > chunk_size:
            yield chunk
            chunk, size = [], 0
        chunk.append((ex, cs))
        size += len(cs)
    if chunk:
        yield chunk


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
    from rt_jax.tasks import task_info

    trigger = task_info(task).trigger if trigger is None else trigger
    method = method or method_name(temperature)
    api = getattr(backend, "api", "completions")
    report = GenerateReport(task, requested=len(examples) * num_completions)
    with store.writer(teacher, method, task, problems) as writer:
        todo = missing(writer, teacher, method, task, examples, num_completions)
        report.cached = report.requested - sum(len(cs) for _, cs in todo)
        bar = _progress(report.requested - report.cached, f"{teacher}/{method}/{task}", progress)
        try:
            for chunk in _chunks(todo, chunk_size):
                reasoned = []
                for n, items in by_count(chunk):
                    sent = [reasoning_input(api, ex.question) for ex, _ in items]
                    seeds = [item_seed(seed, task, ex.sample_index, cs[0]) for ex, cs in items]
                    drawn = _sample(backend, sent, n, max_reasoning_tokens, temperature, seeds)
                    for (ex, cs), prompt, rationales in zip(items, sent, drawn):
                        for c, rationale in zip(cs, rationales):
                            record = reasoning_record(
                                teacher, method, task, ex.sample_index, c, prompt, rationale, temperature
                            )
                            reasoned.append((ex, record))
                second = [answer_input(r, trigger) for _, r in reasoned]
                seeds = [item_seed(seed, task, r.sample_index, r.completion_index) for _, r in reasoned]
                answers = _sample(backend, second, 1, max_answer_tokens, 0.0, seeds)
                for (ex, r), (answer,) in zip(reasoned, answers):
                    record = answered_record(r, answer, trigger, ex.answer)
                    writer.append(record)
                    report.add(record)
                bar.update(len(reasoned))
        finally:
            bar.close()
    return report
