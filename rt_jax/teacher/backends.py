"""Teacher backends: something that completes a list of prompts.

    backend.complete(prompts, max_tokens, temperature, seed) -> [Completion(text, finish_reason)]

- `HttpCompletionsBackend`: any OpenAI-compatible `/completions` endpoint (OpenAI, vLLM, ...), one
  request per prompt on a thread pool, retries with exponential backoff on 429/5xx/network errors
  (honouring Retry-After), a requests-per-second limit, and the API key read from an environment
  variable; the key is sent only in the Authorization header and is scrubbed from every message.
- `LocalModelBackend`: an rt_jax model decoded with rt_jax's batched sampler (rt_jax.decoding).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request

from rt_jax.errors import UserError

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclasses.dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None  # "stop" (natural end / stop string) or "length" (token limit)


class TeacherError(RuntimeError):
    """The teacher could not complete a prompt (after retries). Work done before it is kept."""


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


class HttpCompletionsBackend:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 8,
        requests_per_second: float = 0.0,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        timeout_s: float = 120.0,
        extra_body: dict | None = None,
        sleep=time.sleep,
    ):
        self.url = base_url.rstrip("/") + "/completions"
        self.model = model
        self._key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and api_key_env not in os.environ:
            raise UserError(
                f"--api_key_env={api_key_env}: environment variable is not set "
                "(set it, or pass an empty --api_key_env for servers without a key)"
            )
        self.concurrency = max(1, concurrency)
        self.limiter = _RateLimiter(requests_per_second)
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.timeout_s = timeout_s
        self.extra_body = dict(extra_body or {})
        self._sleep = sleep
        self.retries = 0  # total retried requests, for reports and tests

    def __repr__(self) -> str:  # never shows the key
        return f"HttpCompletionsBackend(url={self.url!r}, model={self.model!r})"

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            return json.loads(response.read().decode("utf-8"))

    def _complete_one(self, prompt: str, max_tokens: int, temperature: float, seed: int | None) -> Completion:
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "n": 1,
            **self.extra_body,
        }
        if seed is not None:
            body["seed"] = seed
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            retry_after = None
            try:
                reply = self._post(body)
                choice = reply["choices"][0]
                return Completion(str(choice["text"]), choice.get("finish_reason"))
            except urllib.error.HTTPError as e:
                detail = self._scrub(e.read()[:300].decode("utf-8", "replace"))
                if e.code not in RETRY_STATUS:
                    raise TeacherError(f"{self.url}: HTTP {e.code}: {detail}") from None
                why = f"HTTP {e.code}"
                retry_after = e.headers.get("Retry-After") if e.headers else None
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as e:
                why = self._scrub(f"{type(e).__name__}: {getattr(e, 'reason', e)}")
            except (KeyError, IndexError, TypeError, ValueError) as e:
                raise TeacherError(f"{self.url}: unexpected reply ({type(e).__name__}: {e})") from None
            if attempt == self.max_retries:
                raise TeacherError(f"{self.url}: gave up after {attempt + 1} attempts ({why})")
            self.retries += 1
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
            if retry_after:
                try:
                    delay = max(delay, float(retry_after))
                except ValueError:
                    pass
            self._sleep(delay)
        raise AssertionError("unreachable")

    def complete(
        self, prompts: list[str], max_tokens: int, temperature: float, seed: int | None = None
    ) -> list[Completion]:
        seeds = [None if seed is None else seed + i for i in range(len(prompts))]
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            futures = [pool.submit(self._complete_one, p, max_tokens, temperature, s) for p, s in zip(prompts, seeds)]
            return [f.result() for f in futures]


class LocalModelBackend:
    """A loaded rt_jax model (rt_jax.models.LoadedModel) as the teacher, decoded with
    rt_jax.decoding: greedy at temperature 0, sampling otherwise."""

    def __init__(self, loaded, batch_size: int = 16, mesh=None, param_shardings=None):
        self.loaded, self.batch_size = loaded, batch_size
        self.mesh, self.param_shardings = mesh, param_shardings

    def complete(
        self, prompts: list[str], max_tokens: int, temperature: float, seed: int | None = None
    ) -> list[Completion]:
        import jax

        from rt_jax.decoding import DecodeConfig, decode_texts

        # The seed travels in the key, not the config: a config change would recompile the decoder.
        config = DecodeConfig(
            strategy="greedy" if temperature == 0 else "sample",
            temperature=temperature or 1.0,
            max_new_tokens=max_tokens,
            batch_size=self.batch_size,
        )
        key = jax.random.PRNGKey((seed or 0) % 2**31)
        outs = decode_texts(
            self.loaded, list(prompts), config, key=key, mesh=self.mesh, param_shardings=self.param_shardings
        )
        # OpenAI's vocabulary: an end-of-sequence or stop string is "stop"; the token limit is "length".
        return [Completion(o.text, "length" if o.finish_reason == "length" else "stop") for o in outs]
