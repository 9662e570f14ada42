"""Teacher backends: what generate.py asks for completions.

A backend has `complete(prompts, max_tokens, temperature, seed) -> [Completion]`, one completion per
text prompt (the rule-based teacher of the synthetic task), or, when it can draw `n` completions of
a prompt in one go and speaks an `api` ("completions" for text prompts, "chat" for message lists),
`sample(prompts, n, max_tokens, temperature, seeds)` -> [[Completion] * n]; generate.py uses
`sample` when it is there (both backends here have it).

- `HttpBackend`: an OpenAI-compatible server (OpenAI, vLLM, SGLang, ...), requests as
  rt_jax.teacher.openai_api lays them out, sent on a thread pool; retries with exponential backoff on
  429/5xx/network errors (honouring Retry-After), a requests-per-second limit, and the API key read
  from an environment variable. The key goes only into the Authorization header; it and every value
  of the URL's query string (e.g. `?api-key=...`) are scrubbed from every message.
- `LocalModelBackend`: an rt_jax model decoded with rt_jax's batched sampler (rt_jax.decoding), the
  `n` samples of a prompt as `n` rows of one decoding call; with a chat template, the same
  conversation a chat server is sent.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import random
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Sequence

from rt_jax.errors import UserError
from rt_jax.teacher.openai_api import ApiFormat, BadReply, Completion, Request

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
# Before any reply came back, these mean a wrong address rather than a hiccup: not retried.
_WRONG_ADDRESS = (ConnectionRefusedError, socket.gaierror, ssl.SSLError)
_SHORTEST_SECRET = 4  # query values shorter than this are masked in the URL but not hunted in free text


class TeacherError(UserError):
    """The teacher could not complete a prompt (after retries). Reported like bad input, in one
    line naming the scrubbed URL and the reason; work done before it is kept."""


class _Retry(Exception):
    def __init__(self, why: str, retry_after: str | None = None):
        super().__init__(why)
        self.why, self.retry_after = why, retry_after


class _RateLimiter:
    """At most `per_second` starts per second, shared by all threads (0 = unlimited)."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.lock = threading.Lock()
        self.next_start = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        time.sleep(max(0.0, start - now))


def _masked(base_url: str) -> tuple[urllib.parse.SplitResult, str, list[str]]:
    """(parsed URL, the URL with every query value and any password shown as ***, the secrets)."""
    parts = urllib.parse.urlsplit(base_url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    secrets = [v for _, v in query if v] + ([parts.password] if parts.password else [])
    shown_query = "&".join(f"{k}=***" if v else k for k, v in query)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    shown = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, shown_query, ""))
    raw_values = [v for piece in parts.query.split("&") for v in piece.split("=", 1)[1:] if v]
    return parts, shown, secrets + raw_values


def endpoint_url(base_url: str, path: str) -> tuple[str, str]:
    """(the URL to POST to, the same URL for messages): `path` joined to the base URL's path, before
    its query string (`https://h/v1?api-version=x` + `/completions` -> `https://h/v1/completions?api-version=x`)."""
    parts, shown, _ = _masked(base_url)
    try:
        parts.port  # noqa: B018 -- raises on a port that is not a number
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise UserError(f"--url={shown}: expected http(s)://host[:port][/path][?query]")
    joined = parts._replace(path=parts.path.rstrip("/") + path, fragment="")
    shown_parts = urllib.parse.urlsplit(shown)
    return joined.geturl(), shown_parts._replace(path=joined.path).geturl()


class HttpBackend:
    def __init__(
        self,
        base_url: str,
        api_format: ApiFormat,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 8,
        requests_per_second: float = 0.0,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        timeout_s: float = 120.0,
        sleep=time.sleep,
    ):
        self.format = api_format
        self.url, self.shown_url = endpoint_url(base_url, api_format.path)
        if api_key_env and api_key_env not in os.environ:
            raise UserError(
                f"--api_key_env={api_key_env}: environment variable is not set "
                "(set it, or pass an empty --api_key_env for servers without a key)"
            )
        self._key = os.environ.get(api_key_env) if api_key_env else None
        secrets = _masked(base_url)[2] + ([self._key] if self._key else [])
        self._secrets = sorted({s for s in secrets if len(s) >= _SHORTEST_SECRET}, key=len, reverse=True)
        for name, value, least in (("--concurrency", concurrency, 1), ("--max_retries", max_retries, 0)):
            if value < least:
                raise UserError(f"{name}={value}: expected >= {least}")
        if requests_per_second < 0:
            raise UserError(f"--rate_limit={requests_per_second}: expected >= 0 (0 = no limit)")
        self.concurrency = concurrency
        self.limiter = _RateLimiter(requests_per_second)
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._lock = threading.Lock()
        self._reached = False  # a reply came back: network errors are hiccups from now on
        self.retries = 0  # total retried requests, for reports and tests

    @property
    def api(self) -> str:
        return self.format.api

    def __repr__(self) -> str:  # never shows the key or the query's values
        return f"HttpBackend(url={self.shown_url!r}, api={self.api!r}, model={self.format.model!r})"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _fail(self, reason: str) -> TeacherError:
        one_line = " ".join(self._scrub(reason).split())
        return TeacherError(f"{self.shown_url}: {one_line}")

    def _post(self, body: dict):
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            if e.code in RETRY_STATUS:
                raise _Retry(f"HTTP {e.code}", e.headers.get("Retry-After") if e.headers else None) from None
            raise self._fail(f"HTTP {e.code} {e.reason}: {_error_detail(e)}") from None
        except urllib.error.URLError as e:
            why = _describe(e.reason)
            if not self._reached and isinstance(e.reason, _WRONG_ADDRESS):
                raise self._fail(f"cannot connect ({why}); check --url and that the server runs") from None
            raise _Retry(why) from None
        except (http.client.HTTPException, TimeoutError, ConnectionError) as e:
            raise _Retry(_describe(e)) from None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise self._fail(f"the reply is not JSON: {raw[:100]!r}") from None

    def _send(self, request: Request) -> list[list[Completion]]:
        attempt = 0
        while True:
            self.limiter.wait()
            try:
                reply = self._post(request.body)
                self._reached = True
                return self.format.completions(reply, request)
            except BadReply as e:
                raise self._fail(f"unexpected reply: {e}") from None
            except _Retry as e:
                if attempt == self.max_retries:
                    raise self._fail(f"gave up after {attempt + 1} attempt(s) ({e.why})") from None
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                try:
                    delay = max(delay, float(e.retry_after or 0))
                except ValueError:
                    pass
            with self._lock:
                self.retries += 1
            attempt += 1
            self._sleep(delay)

    def sample(
        self, prompts: Sequence, n: int, max_tokens: int, temperature: float, seeds: Sequence[int | None]
    ) -> list[list[Completion]]:
        """`n` completions of each prompt, in prompt order; the requests run `concurrency` at a time,
        and the first failure cancels the ones not started."""
        requests = self.format.requests(prompts, n, max_tokens, temperature, seeds)
        pool = concurrent.futures.ThreadPoolExecutor(self.concurrency)
        try:
            futures = [pool.submit(self._send, r) for r in requests]
            return [per_prompt for f in futures for per_prompt in f.result()]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _describe(reason) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return f"{type(reason).__name__}: {reason.strerror}"
    return f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)


def _error_detail(error: urllib.error.HTTPError) -> str:
    """The server's own words: the message of a JSON error body (OpenAI's {"error": {"message"}},
    vLLM's {"message"}), else the body's start."""
    try:
        raw = error.read()[:2000].decode("utf-8", "replace")
    except OSError:
        return ""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:300]
    if not isinstance(body, dict):
        return raw[:300]
    inner = body.get("error")
    message = inner.get("message") if isinstance(inner, dict) else inner or body.get("message")
    return message[:300] if isinstance(message, str) else raw[:300]


class LocalModelBackend:
    """A loaded rt_jax model (rt_jax.models.LoadedModel) as the teacher, decoded with rt_jax.decoding:
    greedy at temperature 0, sampling otherwise. `chat`: prompts are message lists (api "chat", the
    conversation of rt_jax.teacher.generate) put in the tokenizer's chat template; else text
    (api "completions"). `mesh`: decoding rows split over its data axes, the parameters used where
    they lie (rt_jax.teacher.local loads them sharded)."""

    def __init__(self, loaded, batch_size: int = 16, mesh=None, chat: bool = False):
        import jax

        if batch_size < 1:
            raise UserError(f"--batch_size={batch_size}: expected >= 1")
        self.loaded, self.batch_size, self.mesh = loaded, batch_size, mesh
        self.api = "chat" if chat else "completions"
        # The parameters' own shardings: the decoder then places nothing anew (one object, so
        # rt_jax.decoding's decoder cache finds it again).
        self.param_shardings = None if mesh is None else jax.tree.map(lambda x: x.sharding, loaded.params)

    def _ids(self, prompt) -> list[int]:
        from rt_jax.models import chat

        tokenizer = self.loaded.tokenizer
        if self.api == "chat":  # the template writes its own special tokens
            return chat.conversation_ids(tokenizer, prompt)
        return list(tokenizer.encode(prompt))  # as rt_jax.decoding encodes a text prompt

    def sample(
        self, prompts: Sequence, n: int, max_tokens: int, temperature: float, seeds: Sequence[int | None]
    ) -> list[list[Completion]]:
        """`n` completions of each prompt, in prompt order: one decoding call with `n` rows per prompt
        (the key from the first seed). Each completion carries its share of the token counts, the
        prompt counted once per prompt as a server bills a request with `n` choices."""
        import jax

        from rt_jax.decoding import DecodeConfig, get_decoder
        from rt_jax.teacher.openai_api import split_usage

        greedy = temperature == 0
        rows = 1 if greedy else n  # greedy draws are all alike: decoded once, repeated
        # The seed travels in the key, not the config: a config change would recompile the decoder.
        config = DecodeConfig(
            strategy="greedy" if greedy else "sample",
            temperature=temperature or 1.0,
            num_return_sequences=rows,
            max_new_tokens=max_tokens,
            batch_size=max(1, self.batch_size // rows),  # --batch_size counts rows
        )
        key = jax.random.PRNGKey((seeds[0] or 0) % 2**31)
        ids = [self._ids(p) for p in prompts]
        decoder = get_decoder(self.loaded, config, self.mesh, self.param_shardings)
        out = []
        for prompt_ids, drawn in zip(ids, decoder.decode_ids(ids, key=key)):
            usage = {"prompt_tokens": len(prompt_ids), "completion_tokens": sum(len(d[0]) for d in drawn)}
            drawn = drawn * (n // rows)
            out.append([self._completion(d, share) for d, share in zip(drawn, split_usage(usage, n))])
        return out

    def _completion(self, drawn: tuple, usage: dict) -> Completion:
        tokens, reason, _ = drawn
        text = self.loaded.tokenizer.decode(list(tokens), skip_special_tokens=True)
        # OpenAI's vocabulary: an end-of-sequence or stop string is "stop"; the token limit is "length".
        return Completion(text, "length" if reason == "length" else "stop", usage)

    def complete(
        self, prompts: list[str], max_tokens: int, temperature: float, seed: int | None = None
    ) -> list[Completion]:
        """One completion of each prompt (`sample` with n = 1)."""
        return [c for (c,) in self.sample(prompts, 1, max_tokens, temperature, [seed] * len(prompts))]
