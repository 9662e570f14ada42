"""One teacher completion: the versioned record kept in the rationale cache.

A record is the full input/output of one Zero-shot-CoT run of a teacher on one question:
the reasoning step ("Q: ...\\nA: Let's think step by step." -> rationale) and the answer step
(prompt + rationale + trigger -> answer text), with the parsed prediction and its score.

Schema versions: 1 had no `messages` or `usage`; 2 (this one) adds them, both optional (null when
unknown). A version-1 line still reads, as a record whose new fields are null; any other version,
and a version-1 line that carries a version-2 field, is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any

SCHEMA_VERSION = 2

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
    # Chat teachers: the whole conversation, [{"role", "content"}, ...] (rt_jax.teacher.generate
    # says which turns are sent); null for text prompts.
    messages: list | None = None
    # Tokens the server billed for this record's share of its requests: {"prompt_tokens": int,
    # "completion_tokens": int} over both steps (rt_jax.teacher.openai_api.split_usage); null when unknown.
    usage: dict | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        return (self.teacher, self.method, self.task, self.sample_index, self.completion_index)

    def to_json(self) -> str:
        """One line of JSON (no newline inside: json escapes them)."""
        return json.dumps({name: getattr(self, name) for name in _FIELDS}, ensure_ascii=False)


_FIELDS = {f.name: f for f in dataclasses.fields(Record)}
_ALL = frozenset(_FIELDS)
_NEW_IN_2 = frozenset({"messages", "usage"})
_ALLOWED = {1: _ALL - _NEW_IN_2, SCHEMA_VERSION: _ALL}
USAGE_KEYS = ("prompt_tokens", "completion_tokens")
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
    allowed = _ALLOWED.get(version) if type(version) is int else None
    if allowed is None:
        raise InvalidRecord(f"unknown schema_version {version!r} (this rt_jax reads {sorted(_ALLOWED)})")
    keys = d.keys()
    if keys != allowed:
        if keys - allowed:
            raise InvalidRecord(f"unknown field(s) {sorted(keys - allowed)} for schema_version {version}")
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
    _check_messages(d.get("messages"))
    _check_usage(d.get("usage"))
    _check_shard_names(d["teacher"], d["method"], d["task"])
    return Record(**{**d, "schema_version": SCHEMA_VERSION})  # an older line reads as today's record


def _check_messages(messages: Any) -> None:
    if messages is None:
        return
    if type(messages) is not list or not all(
        type(m) is dict and m.keys() == {"role", "content"} and type(m["role"]) is str and type(m["content"]) is str
        for m in messages
    ):
        raise InvalidRecord('field \'messages\' must be null or a list of {"role": str, "content": str}')


def _check_usage(usage: Any) -> None:
    if usage is None:
        return
    if (
        type(usage) is not dict
        or usage.keys() != set(USAGE_KEYS)
        or not all(type(usage[k]) is int and usage[k] >= 0 for k in USAGE_KEYS)
    ):
        raise InvalidRecord('field \'usage\' must be null or {"prompt_tokens": n, "completion_tokens": n}, n >= 0')


def record_from_json(line: str) -> Record:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise InvalidRecord(f"not valid JSON ({e.msg} at column {e.colno})") from None
    return record_from_dict(d)
