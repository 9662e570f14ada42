"""One teacher completion: the versioned record kept in the rationale cache.

A record is the full input/output of one Zero-shot-CoT run of a teacher on one question:
the reasoning step ("Q: ...\\nA: Let's think step by step." -> rationale) and the answer step
(prompt + rationale + trigger -> answer text), with the parsed prediction and its score.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any

SCHEMA_VERSION = 1

# Teacher / method / task names become file names: keep them boring.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class InvalidRecord(ValueError):
    """A JSON line that is not a valid record (message says which field and why)."""


@dataclasses.dataclass(frozen=True)
class Record:
    teacher: str  # e.g. "text-davinci-002"
    method: str  # e.g. "zs_cot" (greedy), "zs_cot_t70" (temperature 0.7)
    task: str  # dataset key, e.g. "multiarith"
    sample_index: int
    completion_index: int
    reasoning_prompt: str
    reasoning_completion: str
    answer_prompt: str
    answer_completion: str
    reasoning_finish_reason: str | None  # "stop" / "length" / None when the source did not say
    answer_finish_reason: str | None
    prediction: str | None  # parsed answer, in the unified dataset's terms (e.g. its option letter)
    correct: bool
    extra: dict = dataclasses.field(default_factory=dict)  # source-specific, JSON-able, kept verbatim
    schema_version: int = SCHEMA_VERSION

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        return (self.teacher, self.method, self.task, self.sample_index, self.completion_index)

    def to_json(self) -> str:
        """One line of JSON (no newline inside: json escapes them)."""
        return json.dumps({name: getattr(self, name) for name in _FIELDS}, ensure_ascii=False)


_FIELDS = {f.name: f for f in dataclasses.fields(Record)}
_ALL = frozenset(_FIELDS)
_REQUIRED = frozenset(
    n for n, f in _FIELDS.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)
_STR_FIELDS = (
    "teacher",
    "method",
    "task",
    "reasoning_prompt",
    "reasoning_completion",
    "answer_prompt",
    "answer_completion",
)
_OPT_STR_FIELDS = ("reasoning_finish_reason", "answer_finish_reason", "prediction")
_INT_FIELDS = ("sample_index", "completion_index")


def check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidRecord(f"{kind} {value!r} must be letters, digits, '.', '_' or '-'")
    return value


@functools.lru_cache(maxsize=256)
def _check_shard_names(teacher: str, method: str, task: str) -> None:
    for kind, name in (("teacher", teacher), ("method", method), ("task", task)):
        check_name(kind, name)


def record_from_dict(d: Any) -> Record:
    """Validate a parsed JSON object and build a Record; raise InvalidRecord naming the field.
    (Runs once per cached line on every cold read, hence the plain type checks.)"""
    if type(d) is not dict:
        raise InvalidRecord(f"expected a JSON object, got {type(d).__name__}")
    version = d.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InvalidRecord(f"unknown schema_version {version!r} (this rt_jax reads {SCHEMA_VERSION})")
    keys = d.keys()
    if keys != _ALL:
        if keys - _ALL:
            raise InvalidRecord(f"unknown field(s) {sorted(keys - _ALL)}")
        if _REQUIRED - keys:
            raise InvalidRecord(f"missing field(s) {sorted(_REQUIRED - keys)}")
    for name in _STR_FIELDS:
        if type(d[name]) is not str:
            raise InvalidRecord(f"field {name!r} must be a string")
    for name in _OPT_STR_FIELDS:
        if d[name] is not None and type(d[name]) is not str:
            raise InvalidRecord(f"field {name!r} must be a string or null")
    for name in _INT_FIELDS:
        if type(d[name]) is not int or d[name] < 0:
            raise InvalidRecord(f"field {name!r} must be a non-negative integer")
    if type(d["correct"]) is not bool:
        raise InvalidRecord("field 'correct' must be true or false")
    if type(d.get("extra", {})) is not dict:
        raise InvalidRecord("field 'extra' must be an object")
    _check_shard_names(d["teacher"], d["method"], d["task"])
    return Record(**d)


def record_from_json(line: str) -> Record:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise InvalidRecord(f"not valid JSON ({e.msg} at column {e.colno})") from None
    return record_from_dict(d)
