"""The OpenAI request and reply format, shared by live requests (backends.HttpBackend) and batch
files (rt_jax.teacher.batch): which bodies a list of prompts becomes, and how a reply maps back.

- `completions` (POST <base>/completions): a prompt is text. With `n = 1`, up to
  `prompts_per_request` prompts share one request as a list prompt (the answer step; the original
  sent 20). With `n > 1` every prompt is its own request (the reasoning step: one request per
  question with `n = D`).
- `chat` (POST <base>/chat/completions): a prompt is a list of messages; one request per
  conversation, with `n` choices.

Replies are matched to prompts by `choices[k].index`, never by list order: the OpenAI spec (and
vLLM, which computes `index = output.index + prompt_idx * n`) numbers the choices of a list prompt
prompt-major, so choice `k` is sample `k % n` of prompt `k // n`.

Usage: a request's `usage` is split over its choices (`split_usage`), integer shares that sum to the
request's totals exactly, so summing records gives exactly what the server billed for them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from rt_jax.errors import UserError
from rt_jax.teacher.record import USAGE_KEYS

APIS = ("completions", "chat")
# Body fields rt_jax sets itself -> the flag that sets them; --extra_body may not override them.
OWN_FIELDS = {
    "model": "--model",
    "prompt": "the prompts",
    "messages": "the prompts",
    "n": "--num_completions",
    "max_tokens": "--max_reasoning_tokens / --max_answer_tokens",
    "temperature": "--temperature",
    "seed": "--seed",
    "stop": "--stop",
    "stream": "nothing (replies are read whole)",
}


class BadReply(ValueError):
    """A reply that does not hold the choices asked for (the message says what is wrong)."""


@dataclasses.dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None  # "stop" (natural end / stop string) or "length" (token limit)
    usage: dict | None = None  # this choice's share of its request's usage (split_usage); None if unknown


@dataclasses.dataclass(frozen=True)
class Request:
    body: dict
    first: int  # index of the request's first prompt in the list given to `ApiFormat.requests`
    num_prompts: int
    n: int


@dataclasses.dataclass(frozen=True)
class ApiFormat:
    api: str  # "completions" or "chat"
    model: str
    stop: tuple[str, ...] = ()
    extra_body: dict = dataclasses.field(default_factory=dict)
    prompts_per_request: int = 20  # completions API, n = 1: prompts per list-prompt request

    def __post_init__(self):
        if self.api not in APIS:
            raise UserError(f"--api={self.api}: expected one of {', '.join(APIS)}")
        if self.prompts_per_request < 1:
            raise UserError(f"--answers_per_request={self.prompts_per_request}: expected >= 1")
        clash = sorted(set(self.extra_body) & set(OWN_FIELDS))
        if clash:
            raise UserError(f"--extra_body: {clash[0]!r} is set by rt_jax ({OWN_FIELDS[clash[0]]}); leave it out")

    @property
    def path(self) -> str:
        return "/completions" if self.api == "completions" else "/chat/completions"

    def requests(
        self, prompts: Sequence, n: int, max_tokens: int, temperature: float, seeds: Sequence[int | None]
    ) -> list[Request]:
        """The requests for `n` completions of each prompt (text, or a message list for chat);
        a request's seed is the seed of its first prompt."""
        per_request = self.prompts_per_request if self.api == "completions" and n == 1 else 1
        out = []
        for first in range(0, len(prompts), per_request):
            group = list(prompts[first : first + per_request])
            body: dict[str, Any] = {"model": self.model}
            if self.api == "chat":
                body["messages"] = group[0]
            else:
                body["prompt"] = group[0] if len(group) == 1 else group
            body.update(max_tokens=max_tokens, temperature=temperature, n=n)
            if self.stop:
                body["stop"] = list(self.stop)
            if seeds[first] is not None:
                body["seed"] = seeds[first]
            body.update(self.extra_body)
            out.append(Request(body, first, len(group), n))
        return out

    def completions(self, reply: Any, request: Request) -> list[list[Completion]]:
        """The `n` completions of each prompt of `request`, from its reply; BadReply if the reply
        lacks a choice or a choice lacks its text."""
        choices = reply.get("choices") if isinstance(reply, dict) else None
        if not isinstance(choices, list):
            raise BadReply("the reply has no 'choices' list")
        expected = request.num_prompts * request.n
        if len(choices) != expected:
            raise BadReply(f"the reply has {len(choices)} choices, expected {expected}")
        shares = split_usage(reply.get("usage"), expected)
        by_index: dict[int, Completion] = {}
        for choice in choices:
            index = choice.get("index") if isinstance(choice, dict) else None
            if type(index) is not int or not 0 <= index < expected or index in by_index:
                raise BadReply(f"a choice has index {index!r}; expected each of 0..{expected - 1} once")
            by_index[index] = Completion(self._text(choice, index), choice.get("finish_reason"), shares[index])
        return [[by_index[i * request.n + j] for j in range(request.n)] for i in range(request.num_prompts)]

    def _text(self, choice: dict, index: int) -> str:
        if self.api == "chat":
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
            where = "message.content"
        else:
            text, where = choice.get("text"), "text"
        if not isinstance(text, str):
            raise BadReply(f"choice {index} has no {where} string")
        return text


def split_usage(usage: Any, parts: int) -> list[dict | None]:
    """A request's {"prompt_tokens", "completion_tokens"} in `parts` integer shares, the first
    `total % parts` shares one token larger, so the shares sum to the totals exactly. All None when
    the reply reported no usage."""
    if not isinstance(usage, dict) or not all(type(usage.get(k)) is int for k in USAGE_KEYS):
        return [None] * parts
    shares = [{} for _ in range(parts)]
    for key in USAGE_KEYS:
        base, extra = divmod(max(0, usage[key]), parts)
        for i, share in enumerate(shares):
            share[key] = base + (i < extra)
    return shares


def add_usage(a: dict | None, b: dict | None) -> dict | None:
    """The usage of a record from its two steps' shares (None unless both are known)."""
    if a is None or b is None:
        return None
    return {k: a[k] + b[k] for k in USAGE_KEYS}
