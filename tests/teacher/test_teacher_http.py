"""The OpenAI-compatible HTTP backend against a completions server on 127.0.0.1 started here."""

import http.server
import json
import logging
import threading
import time

import pytest

from rt_jax.errors import UserError
from rt_jax.tasks import load_dataset, load_split, score
from rt_jax.teacher.backends import HttpCompletionsBackend, TeacherError
from rt_jax.teacher.generate import generate_rationales
from rt_jax.teacher.store import RationaleStore

KEY = "sk-test-0123456789secret"


class FakeCompletions(http.server.ThreadingHTTPServer):
    """Answers like a teacher that knows the answers: the rationale step echoes the question's
    length, the answer step says the gold answer when it can find it. Failures can be scripted."""

    daemon_threads = True

    def __init__(self, answers: dict[str, str]):
        super().__init__(("127.0.0.1", 0), Handler)
        self.answers = answers  # question text -> answer
        self.lock = threading.Lock()
        self.requests = []  # (body, headers) of every request
        self.fail_first = {}  # prompt substring -> list of statuses to send before succeeding
        self.fail_after = None  # after this many successful replies every request gets a 400
        self.in_flight = self.max_in_flight = 0
        self.delay_s = 0.0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def _reply(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        server: FakeCompletions = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            server.requests.append((body, dict(self.headers)))
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            statuses = next((v for k, v in server.fail_first.items() if k in body["prompt"]), None)
            status = statuses.pop(0) if statuses else None
            ok_so_far = sum(1 for b, _ in server.requests) - 1
        try:
            time.sleep(server.delay_s)
            if self.path != "/v1/completions" or self.headers.get("Authorization") != f"Bearer {KEY}":
                return self._reply(401, {"error": {"message": f"bad key {self.headers.get('Authorization')}"}})
            if status:
                return self._reply(status, {"error": {"message": "slow down"}}, [("Retry-After", "0")])
            if server.fail_after is not None and ok_so_far >= server.fail_after:
                return self._reply(400, {"error": {"message": "quota exceeded"}})
            prompt = body["prompt"]
            if prompt.endswith("Let's think step by step."):
                text, reason = f" The question has {len(prompt)} characters.", "stop"
            else:
                question = prompt[len("Q: ") : prompt.index("\nA: ")]
                text, reason = f" {server.answers.get(question, 'unknown')}.", "stop"
            self._reply(
                200, {"choices": [{"text": text[: body["max_tokens"] * 4], "index": 0, "finish_reason": reason}]}
            )
        finally:
            with server.lock:
                server.in_flight -= 1


@pytest.fixture
def server(data_dir):
    ds = load_dataset("multiarith", data_dir)
    srv = FakeCompletions({ex.question.strip(): ex.answer for ex in ds})
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("RT_TEST_KEY", KEY)
    return "RT_TEST_KEY"


def test_requests_carry_model_limits_and_key_and_run_concurrently(server, key_env):
    server.delay_s = 0.05
    backend = HttpCompletionsBackend(server.url, "teacher-x", key_env, concurrency=4)
    prompts = [f"Q: q{i}?\nA: Let's think step by step." for i in range(8)]
    outs = backend.complete(prompts, max_tokens=128, temperature=0.7, seed=5)
    assert [o.text for o in outs] == [f" The question has {len(p)} characters." for p in prompts]
    assert all(o.finish_reason == "stop" for o in outs)
    bodies = sorted((b for b, _ in server.requests), key=lambda b: b["seed"])
    assert [b["prompt"] for b in bodies] == prompts
    assert all((b["model"], b["max_tokens"], b["temperature"], b["n"]) == ("teacher-x", 128, 0.7, 1) for b in bodies)
    assert 2 <= server.max_in_flight <= 4


def test_429_and_5xx_are_retried_with_backoff(server, key_env):
    server.fail_first = {"q1?": [429, 503, 500]}
    sleeps = []
    backend = HttpCompletionsBackend(server.url, "m", key_env, backoff_s=1.0, sleep=sleeps.append)
    outs = backend.complete(["Q: q0?\nA: Let's think step by step.", "Q: q1?\nA: Let's think step by step."], 32, 0.0)
    assert len(outs) == 2 and backend.retries == 3
    assert len(sleeps) == 3 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0
    server.fail_first = {"q2?": [503] * 10}
    with pytest.raises(TeacherError, match="gave up after 3 attempts"):
        HttpCompletionsBackend(server.url, "m", key_env, max_retries=2, sleep=lambda s: None).complete(
            ["Q: q2?\nA: Let's think step by step."], 32, 0.0
        )


def test_rate_limit_spaces_out_requests(server, key_env):
    backend = HttpCompletionsBackend(server.url, "m", key_env, concurrency=8, requests_per_second=20)
    start = time.monotonic()
    backend.complete([f"Q: {i}\nA: Let's think step by step." for i in range(6)], 8, 0.0)
    assert time.monotonic() - start >= 5 / 20 * 0.9


def test_key_comes_from_env_and_never_shows_in_messages_or_logs(server, key_env, monkeypatch, caplog, capsys):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(UserError, match="NO_SUCH_KEY_VAR"):
        HttpCompletionsBackend(server.url, "m", "NO_SUCH_KEY_VAR")
    backend = HttpCompletionsBackend(server.url + "/wrong", "m", key_env)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TeacherError) as err:  # the server echoes the Authorization header back
        backend.complete(["Q: x\nA: Let's think step by step."], 8, 0.0)
    assert "HTTP 401" in str(err.value) and "***" in str(err.value)
    out = capsys.readouterr()
    for text in (str(err.value), repr(backend), caplog.text, out.out, out.err):
        assert KEY not in text


def test_generation_over_http_fills_the_cache_and_resumes_after_a_failure(server, key_env, data_dir, tmp_path):
    ds = load_dataset("multiarith", data_dir)
    examples = ds.select(load_split("multiarith", data_dir).train[:10])
    store = RationaleStore(tmp_path)
    backend = HttpCompletionsBackend(server.url, "m", key_env, concurrency=4, max_retries=0)
    server.fail_after = 8  # 4 chunks of 2 prompts x 2 steps go through, then the quota runs out
    with pytest.raises(TeacherError, match="HTTP 400"):
        generate_rationales(store, backend, "multiarith", examples, "fake", chunk_size=2, progress=False)
    first = store.read("fake", "zs_cot", "multiarith")
    assert len(first) == 4
    server.fail_after = None
    server.requests.clear()
    report = generate_rationales(store, backend, "multiarith", examples, "fake", chunk_size=2, progress=False)
    assert (report.requested, report.cached, report.written) == (10, 4, 6)
    assert len(server.requests) == 12  # only the 6 missing completions, 2 steps each
    records = store.read("fake", "zs_cot", "multiarith")
    assert records[:4] == first
    assert sorted(r.sample_index for r in records) == sorted(ex.sample_index for ex in examples)
    for r in records:
        ex = ds[r.sample_index]
        assert r.reasoning_prompt == f"Q: {ex.question.strip()}\nA: Let's think step by step."
        assert r.answer_prompt == (
            r.reasoning_prompt + r.reasoning_completion + " \nTherefore, the answer (arabic numerals) is"
        )
        assert r.answer_completion == f" {ex.answer}." and r.correct
        assert r.correct == score("multiarith", r.answer_completion, ex.answer).correct
    answer_bodies = [b for b, _ in server.requests if not b["prompt"].endswith("step by step.")]
    assert all(b["max_tokens"] == 32 and b["temperature"] == 0.0 for b in answer_bodies)
