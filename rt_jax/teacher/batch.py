"""Generation through OpenAI's Batch API: the requests of a run as JSONL files, and the output
files back into the cache.

Zero-shot-CoT's answer step needs the rationale, so a run takes two rounds:
1. `batch_write` writes the reasoning requests (one per question, `n` = its missing completions);
   `batch_import` of their output keeps the rationales under `<cache_dir>/_batch_reasoning/` (a
   store of its own, in the cache's format, whose records have an empty answer step).
2. `batch_write` again writes the answer requests of the imported rationales; `batch_import` of
   their output writes finished records into the cache, as `generate` would have.

`batch_write` always writes the next step of every (sample, completion) not in the cache, so a user
repeats write / submit / import until it writes nothing. It writes only what is missing, and sends
the bodies and seeds `generate` would send (rt_jax.teacher.generate). A file written before the
previous one's output is imported holds those requests again. `batch_import` adds only what is
missing: an identical result again is a no-op, a different one is reported and never overwrites.
A failed request (its `error`, or a status other than 200) is reported and written again next time.

Input line:  {"custom_id", "method": "POST", "url": "/v1/completions" | "/v1/chat/completions", "body"}
Output line: {"custom_id", "response": {"status_code", "body": <the usual reply>}, "error"}
custom_id:   "<teacher>/<method>/<task>/<reasoning|answer>/<n>/<sample>.<completion>,..." with the
             (sample, completion) pairs in the order of the request's choices.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
from typing import Sequence

from rt_jax.errors import UserError
from rt_jax.teacher.generate import (
    answer_input,
    answered_record,
    by_count,
    item_seed,
    missing,
    reasoning_input,
    reasoning_record,
)
from rt_jax.teacher.openai_api import ApiFormat, Request
from rt_jax.teacher.store import Conflict, RationaleStore

STAGING = "_batch_reasoning"  # not a valid teacher name, so never a shard of the cache itself
STEPS = ("reasoning", "answer")
# The Batch API's limits on one input file (requests, bytes): a new file starts before either.
MAX_REQUESTS = 50_000
MAX_BYTES = 100 * 1000 * 1000


def staging_store(store: RationaleStore) -> RationaleStore:
    """Where imported rationales wait for their answer step."""
    return RationaleStore(store.root / STAGING, store.repairs)


def custom_id(teacher: str, method: str, task: str, step: str, n: int, items: Sequence[tuple[int, int]]) -> str:
    return f"{teacher}/{method}/{task}/{step}/{n}/" + ",".join(f"{s}.{c}" for s, c in items)


def parse_custom_id(text: str) -> tuple[str, str, str, str, int, list[tuple[int, int]]]:
    try:
        teacher, method, task, step, n, items = text.split("/")
        pairs = [tuple(int(x) for x in item.split(".")) for item in items.split(",")]
        n = int(n)
        ok = step in STEPS and n >= 1 and len(pairs) % n == 0 and all(len(p) == 2 and min(p) >= 0 for p in pairs)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"custom_id {text!r} is not one batch_write writes")
    return teacher, method, task, step, n, pairs


class RequestFiles:
    """Batch input files `batch-000.jsonl`, ... in a folder that must not exist yet."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = pathlib.Path(folder)
        if self.folder.exists():
            raise UserError(f"--out={self.folder}: already exists; batch_write writes a new folder")
        self.paths: list[pathlib.Path] = []
        self.requests = 0
        self._file, self._lines, self._bytes = None, 0, 0

    def write(self, custom: str, path: str, body: dict) -> None:
        line = {"custom_id": custom, "method": "POST", "url": "/v1" + path, "body": body}
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        if self._file is None or self._lines == MAX_REQUESTS or self._bytes + len(data) > MAX_BYTES:
            self._next()
        self._file.write(data)
        self._lines, self._bytes, self.requests = self._lines + 1, self._bytes + len(data), self.requests + 1

    def _next(self) -> None:
        self.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"batch-{len(self.paths):03d}.jsonl"
        self._file, self._lines, self._bytes = open(path, "xb"), 0, 0
        self.paths.append(path)

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


def write_requests(
    store: RationaleStore,
    files: RequestFiles,
    api_format: ApiFormat,
    task: str,
    examples: Sequence,
    teacher: str,
    method: str,
    num_completions: int,
    temperature: float,
    max_reasoning_tokens: int,
    max_answer_tokens: int,
    seed: int = 0,
    problems: list[str] | None = None,
) -> dict:
    """The next step's requests of every missing (sample, completion) of `task` into `files`."""
    from rt_jax.tasks import task_info

    trigger = task_info(task).trigger
    done = {r.key for r in store.read(teacher, method, task, problems)}
    staged = {r.key: r for r in staging_store(store).read(teacher, method, task, problems)}
    todo = missing(done, teacher, method, task, examples, num_completions)
    fresh, reasoned = [], []
    for ex, cs in todo:
        keys = [(teacher, method, task, ex.sample_index, c) for c in cs]
        reasoned += [staged[k] for k in keys if k in staged]
        new = [k[4] for k in keys if k not in staged]
        if new:
            fresh.append((ex, new))
    counts = {"task": task, "reasoning_requests": 0, "answer_requests": 0}
    for n, items in by_count(fresh):
        prompts = [reasoning_input(api_format.api, ex.question) for ex, _ in items]
        seeds = [item_seed(seed, task, ex.sample_index, cs[0]) for ex, cs in items]
        for request in api_format.requests(prompts, n, max_reasoning_tokens, temperature, seeds):
            part = items[request.first : request.first + request.num_prompts]
            ids = [(ex.sample_index, c) for ex, cs in part for c in cs]
            files.write(custom_id(teacher, method, task, "reasoning", n, ids), api_format.path, request.body)
            counts["reasoning_requests"] += 1
    prompts = [answer_input(r, trigger) for r in reasoned]
    seeds = [item_seed(seed, task, r.sample_index, r.completion_index) for r in reasoned]
    for request in api_format.requests(prompts, 1, max_answer_tokens, 0.0, seeds):
        part = reasoned[request.first : request.first + request.num_prompts]
        ids = [(r.sample_index, r.completion_index) for r in part]
        files.write(custom_id(teacher, method, task, "answer", 1, ids), api_format.path, request.body)
        counts["answer_requests"] += 1
    counts["rationales"] = sum(len(cs) for _, cs in fresh)
    counts["answers"] = len(reasoned)
    return counts


def _failure(line: dict) -> str | None:
    """Why a batch output line holds no reply (None when it holds one)."""
    error, response = line.get("error"), line.get("response")
    if error:
        if isinstance(error, dict):
            return f"{error.get('code')}: {error.get('message')}"
        return str(error)
    if not isinstance(response, dict):
        return "no response"
    if response.get("status_code") != 200:
        body = response.get("body")
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        return f"HTTP {response.get('status_code')}" + (f": {message}" if message else "")
    return None


def import_outputs(
    store: RationaleStore,
    paths: Sequence[str | os.PathLike],
    api_format: ApiFormat,
    teacher: str,
    method: str,
    temperature: float,
    data_dir,
    tasks: Sequence[str],
    problems: list[str],
) -> list[dict]:
    """Import batch output files; one count dict per file. Bad or failed lines go to `problems`."""
    from rt_jax.tasks import load_dataset, task_info

    staging = staging_store(store)
    datasets: dict[str, object] = {}
    reports = []
    with contextlib.ExitStack() as stack:
        writers: dict[tuple[str, str], object] = {}

        def writer(kind: str, task: str):
            if (kind, task) not in writers:
                where = staging if kind == "reasoning" else store
                writers[kind, task] = stack.enter_context(where.writer(teacher, method, task, problems))
            return writers[kind, task]

        def example(task: str, sample_index: int):
            if task not in datasets:
                datasets[task] = load_dataset(task, data_dir)
            if sample_index not in datasets[task]:
                raise ValueError(f"{task} has no sample {sample_index}")
            return datasets[task][sample_index]

        for path in paths:
            counts = {"file": str(path), "lines": 0, "rationales": 0, "records": 0, "already": 0, "not_imported": 0}
            try:
                lines = pathlib.Path(path).read_bytes().split(b"\n")
            except OSError as e:
                raise UserError(f"--batch_files: {path}: cannot read ({e.strerror})") from None
            for lineno, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                counts["lines"] += 1
                where = f"{path}:{lineno}"
                try:
                    line = json.loads(raw)
                    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
                        raise ValueError("not a batch output line (no custom_id)")
                    t, m, task, step, n, items = parse_custom_id(line["custom_id"])
                    if (t, m) != (teacher, method):
                        raise ValueError(f"a request of {t}/{m}, but the flags say {teacher}/{method}")
                    if task not in tasks:
                        raise ValueError(f"a request of task {task}, which --tasks leaves out")
                    failed = _failure(line)
                    if failed:
                        raise ValueError(f"the request failed ({failed}); batch_write writes it again")
                    request = Request({}, 0, len(items) // n, n)
                    choices = api_format.completions(line["response"].get("body"), request)
                except ValueError as e:  # json, custom_id, BadReply
                    problems.append(f"{where}: {e}; not imported")
                    counts["not_imported"] += 1
                    continue
                completions = [c for per_prompt in choices for c in per_prompt]
                for (s, c), completion in zip(items, completions):
                    try:
                        ex = example(task, s)
                        if step == "reasoning":
                            sent = reasoning_input(api_format.api, ex.question)
                            record = reasoning_record(teacher, method, task, s, c, sent, completion, temperature)
                            added, kind = writer("reasoning", task).append(record), "rationales"
                        else:
                            reasoned = writer("reasoning", task).get((teacher, method, task, s, c))
                            if reasoned is None:
                                raise ValueError("its rationale was never imported; import round 1's output first")
                            record = answered_record(reasoned, completion, task_info(task).trigger, ex.answer)
                            added, kind = writer("answer", task).append(record), "records"
                    except (ValueError, Conflict) as e:
                        problems.append(f"{where}: sample {s} completion {c}: {e}; not imported")
                        counts["not_imported"] += 1
                        continue
                    counts[kind if added else "already"] += 1
            reports.append(counts)
    return reports
