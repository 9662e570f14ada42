"""The OpenAI-compatible HTTP backend against the loopback server of openai_server.py: both APIs,
`n` per request, list prompts, usage, retries, and what never shows in a message."""

import logging
import socket
import time

import pytest
from openai_server import COT, KEY, FakeOpenAI

from rt_jax.errors import UserError
from rt_jax.tasks import load_dataset, load_split, task_info
from rt_jax.teacher.backends import HttpBackend, TeacherError, endpoint_url
from rt_jax.teacher.generate import generate_rationales, item_seed, reasoning_prompt
from rt_jax.teacher.openai_api import ApiFormat, BadReply, Request, split_usage
from rt_jax.teacher.store import RationaleStore

TRIGGER = task_info("multiarith").trigger


@pytest.fixture
def answers(data_dir):
    return {ex.question.strip(): ex.answer for ex in load_dataset("multiarith", data_dir)}


@pytest.fixture
def server(answers):
    with FakeOpenAI(answers) as srv:
        yield srv


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("RT_TEST_KEY", KEY)
    return "RT_TEST_KEY"


def prompt(i):
    return f"Q: question {i}?\nA: {COT}"


def test_requests_carry_model_limits_stop_extra_fields_and_key_and_run_concurrently(server, key_env):
    server.plan.extend([0.05] * 8)
    fmt = ApiFormat("completions", "teacher-x", stop=("\n\n", "Q:"), extra_body={"top_p": 0.9}, prompts_per_request=1)
    backend = HttpBackend(server.url, fmt, key_env, concurrency=4)
    outs = backend.sample([prompt(i) for i in range(8)], 1, 128, 0.7, seeds=list(range(8)))
    assert [o[0].text for o in outs] == [
        f" The question, draw {i}-0, has {len(f'question {i}?')} characters and 1 spaces." for i in range(8)
    ]
    bodies = sorted((b for _, b in server.requests), key=lambda b: b["seed"])
    assert [b["prompt"] for b in bodies] == [prompt(i) for i in range(8)]
    for b in bodies:
        assert (b["model"], b["max_tokens"], b["temperature"], b["n"]) == ("teacher-x", 128, 0.7, 1)
        assert b["stop"] == ["\n\n", "Q:"] and b["top_p"] == 0.9
    assert 2 <= server.max_in_flight <= 4


def test_list_prompts_and_n_choices_are_matched_by_index(server, key_env, answers):
    backend = HttpBackend(server.url, ApiFormat("completions", "m", prompts_per_request=2), key_env)
    questions = list(answers)[:3]
    # answer-step prompts after rationales of draws 0, 1, 2: the fake teacher answers the even draws
    answer_prompts = [f"Q: {q}\nA: {COT} A draw 7-{i}.{TRIGGER}" for i, q in enumerate(questions)]
    outs = backend.sample(answer_prompts, 1, 32, 0.0, seeds=[None] * 3)
    # 2 + 1 prompts (replies reversed); concurrent requests reach the server in either order
    assert sorted(type(b["prompt"]).__name__ for _, b in server.requests) == ["list", "str"]
    assert [o[0].text for o in outs] == [f" {answers[questions[0]]}.", " unknown.", f" {answers[questions[2]]}."]
    server.requests.clear()
    outs = backend.sample([prompt(0), prompt(1)], 3, 64, 0.7, seeds=[5, 9])
    sent = sorted((b["seed"], b["n"], b["prompt"]) for _, b in server.requests)  # concurrent: any order
    assert sent == [(5, 3, prompt(0)), (9, 3, prompt(1))]
    assert [[c.text.split(",")[1] for c in per] for per in outs] == [
        [" draw 5-0", " draw 5-1", " draw 5-2"],
        [" draw 9-0", " draw 9-1", " draw 9-2"],
    ]
    assert all(c.finish_reason == "stop" for per in outs for c in per)


def test_chat_requests_send_messages_to_chat_completions(server, key_env):
    backend = HttpBackend(server.url, ApiFormat("chat", "m", prompts_per_request=20), key_env)
    conversations = [[{"role": "user", "content": prompt(i)}] for i in range(2)]
    outs = backend.sample(conversations, 2, 64, 0.7, seeds=[1, 2])
    assert [path for path, _ in server.requests] == ["/v1/chat/completions"] * 2  # one request per conversation
    assert sorted(b["messages"][0]["content"] for _, b in server.requests) == [prompt(0), prompt(1)]
    assert [[c.text.split(",")[1] for c in per] for per in outs] == [
        [" draw 1-0", " draw 1-1"],
        [" draw 2-0", " draw 2-1"],
    ]


def test_usage_is_split_over_the_choices_and_sums_exactly(server, key_env):
    assert split_usage({"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}, 3) == [
        {"prompt_tokens": 4, "completion_tokens": 3},
        {"prompt_tokens": 3, "completion_tokens": 2},
        {"prompt_tokens": 3, "completion_tokens": 2},
    ]
    assert split_usage(None, 2) == [None, None] and split_usage({"prompt_tokens": 3}, 1) == [None]
    backend = HttpBackend(server.url, ApiFormat("completions", "m", prompts_per_request=3), key_env)
    outs = backend.sample([prompt(i) for i in range(7)], 1, 64, 0.0, seeds=[None] * 7)
    outs += backend.sample([prompt(7)], 5, 64, 0.7, seeds=[3])
    shares = [c.usage for per in outs for c in per]
    assert len(shares) == 12 and all(s is not None for s in shares)
    assert {k: sum(s[k] for s in shares) for k in server.usage} == server.usage


@pytest.mark.parametrize(
    "api, reply, match",
    [
        ("completions", {"object": "error"}, "no 'choices' list"),
        ("completions", [], "no 'choices' list"),
        ("completions", {"choices": [{"index": 0, "text": "a"}]}, "1 choices, expected 2"),
        ("completions", {"choices": [{"index": 0, "text": "a"}, {"index": 0, "text": "b"}]}, "index 0"),
        ("completions", {"choices": [{"index": 1, "text": "a"}, {"text": "b"}]}, "index None"),
        ("completions", {"choices": [{"index": 0, "text": "a"}, {"index": 1}]}, "choice 1 has no text"),
        ("chat", {"choices": [{"index": 0, "message": {"content": None}}, {"index": 1}]}, "message.content"),
    ],
)
def test_replies_without_the_choices_asked_for_are_refused(api, reply, match):
    with pytest.raises(BadReply, match=match):
        ApiFormat(api, "m").completions(reply, Request({}, 0, 1, 2))


@pytest.mark.parametrize("mode, reason", [("no_choices", "no 'choices'"), ("no_text", "no text"), ("not_json", "JSON")])
def test_a_broken_reply_is_one_error_naming_the_url(server, key_env, mode, reason):
    server.bad_reply = mode
    backend = HttpBackend(server.url, ApiFormat("completions", "m"), key_env, sleep=lambda s: None)
    with pytest.raises(TeacherError, match=reason) as err:
        backend.sample([prompt(0)], 1, 8, 0.0, seeds=[None])
    assert str(err.value).startswith(f"{server.url}/completions: ") and "\n" not in str(err.value)
    assert backend.retries == 0


def test_429_and_5xx_are_retried_with_backoff(server, key_env):
    server.plan.extend([429, 503, 500])
    sleeps = []
    backend = HttpBackend(server.url, ApiFormat("completions", "m"), key_env, backoff_s=1.0, sleep=sleeps.append)
    outs = backend.sample([prompt(0)], 2, 32, 0.7, seeds=[None])
    assert len(outs[0]) == 2 and backend.retries == 3 and len(server.requests) == 1
    assert len(sleeps) == 3 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0
    server.plan.extend([503] * 10)
    backend = HttpBackend(server.url, ApiFormat("completions", "m"), key_env, max_retries=2, sleep=lambda s: None)
    with pytest.raises(TeacherError, match=r"gave up after 3 attempt\(s\) \(HTTP 503\)"):
        backend.sample([prompt(2)], 1, 32, 0.0, seeds=[None])


def test_a_refused_connection_fails_at_once_with_one_line(key_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    sleeps = []
    backend = HttpBackend(f"http://127.0.0.1:{port}/v1", ApiFormat("chat", "m"), key_env, sleep=sleeps.append)
    with pytest.raises(TeacherError, match=r"/v1/chat/completions: cannot connect \(ConnectionRefusedError"):
        backend.sample([[{"role": "user", "content": "x"}]], 1, 8, 0.0, seeds=[None])
    assert sleeps == []


def test_rate_limit_spaces_out_requests(server, key_env):
    fmt = ApiFormat("completions", "m", prompts_per_request=1)
    backend = HttpBackend(server.url, fmt, key_env, concurrency=8, requests_per_second=20)
    start = time.monotonic()
    backend.sample([prompt(i) for i in range(6)], 1, 8, 0.0, seeds=[None] * 6)
    assert time.monotonic() - start >= 5 / 20 * 0.9


def test_the_path_goes_before_the_query_and_query_values_never_show(answers, key_env, caplog, capsys):
    assert endpoint_url("https://h.example/v1?api-version=x", "/chat/completions") == (
        "https://h.example/v1/chat/completions?api-version=x",
        "https://h.example/v1/chat/completions?api-version=***",
    )
    assert endpoint_url("http://me:pw0rd@h:8000/v1/", "/completions")[1] == "http://me:***@h:8000/v1/completions"
    for bad in ("notaurl", "ftp://h/v1", "http:///v1", "http://h:port/v1"):
        with pytest.raises(UserError, match="--url="):
            endpoint_url(bad, "/completions")
    secret = "qs-SECRET-value-42"
    with FakeOpenAI(answers, query={"api-key": secret, "api-version": "2024-06-01"}) as srv:
        good = HttpBackend(f"{srv.url}?api-version=2024-06-01&api-key={secret}", ApiFormat("chat", "m"), key_env)
        assert good.sample([[{"role": "user", "content": prompt(0)}]], 1, 64, 0.0, seeds=[None])
        assert srv.requests[0][0] == "/v1/chat/completions"
        caplog.set_level(logging.DEBUG)
        wrong = HttpBackend(f"{srv.url}/wrong?api-key={secret}", ApiFormat("chat", "m"), key_env)
        with pytest.raises(TeacherError) as err:  # the 404 body echoes the path and query back
            wrong.sample([[{"role": "user", "content": "x"}]], 1, 8, 0.0, seeds=[None])
    message = str(err.value)
    assert message.startswith(f"{srv.url}/wrong/chat/completions?api-key=***: HTTP 404")
    assert "no route for /v1/wrong/chat/completions?api-key=***" in message
    out = capsys.readouterr()
    for text in (message, repr(good), repr(wrong), caplog.text, out.out, out.err):
        assert secret not in text and KEY not in text


def test_key_comes_from_env_and_never_shows_in_messages_or_logs(server, key_env, monkeypatch, caplog, capsys):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(UserError, match="NO_SUCH_KEY_VAR"):
        HttpBackend(server.url, ApiFormat("completions", "m"), "NO_SUCH_KEY_VAR")
    server.key = "another-key"  # so the server refuses ours, and echoes it back
    backend = HttpBackend(server.url, ApiFormat("completions", "m"), key_env)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TeacherError) as err:
        backend.sample([prompt(0)], 1, 8, 0.0, seeds=[None])
    assert "HTTP 401" in str(err.value) and "bad key Bearer ***" in str(err.value)
    out = capsys.readouterr()
    for text in (str(err.value), repr(backend), caplog.text, out.out, out.err):
        assert KEY not in text


def _examples(data_dir, n):
    ds = load_dataset("multiarith", data_dir)
    return ds, ds.select(load_split("multiarith", data_dir).train[:n])


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_both_apis_fill_and_resume_a_d8_cache_with_one_reasoning_request_per_question(
    api, server, key_env, data_dir, tmp_path
):
    ds, examples = _examples(data_dir, 6)
    store = RationaleStore(tmp_path)
    backend = HttpBackend(server.url, ApiFormat(api, "m"), key_env, concurrency=4, max_retries=0)
    kwargs = dict(num_completions=8, temperature=0.7, chunk_size=160, progress=False)
    first = generate_rationales(store, backend, "multiarith", examples[:3], "fake", **kwargs)
    assert (first.requested, first.cached, first.written) == (24, 0, 24)
    assert [b["n"] for b in server.bodies("reasoning")] == [8, 8, 8]
    answer_sizes = [len(b["prompt"]) if api == "completions" else 1 for b in server.bodies("answer")]
    assert sorted(answer_sizes) == ([4, 20] if api == "completions" else [1] * 24)
    second = generate_rationales(store, backend, "multiarith", examples, "fake", **kwargs)
    assert (second.requested, second.cached, second.written) == (48, 24, 24)
    reasoned = [b["messages"][0]["content"] if api == "chat" else b["prompt"] for b in server.bodies("reasoning")]
    assert sorted(reasoned) == sorted(reasoning_prompt(ex.question) for ex in examples)  # once per question
    assert generate_rationales(store, backend, "multiarith", examples, "fake", **kwargs).written == 0
    assert len(server.requests) == 6 + (4 if api == "completions" else 48)

    records = store.read("fake", "zs_cot_t70", "multiarith")
    assert sorted(r.key[3:] for r in records) == sorted((ex.sample_index, c) for ex in examples for c in range(8))
    for r in records:
        gold = ds[r.sample_index].answer
        assert f"draw {item_seed(0, 'multiarith', r.sample_index, 0)}-{r.completion_index}," in r.reasoning_completion
        assert r.correct == (r.completion_index % 2 == 0)  # the answer came back to its own rationale
        assert r.answer_completion == (f" {gold}." if r.correct else " unknown.")
        assert r.reasoning_prompt == reasoning_prompt(ds[r.sample_index].question)
        if api == "chat":
            assert r.answer_prompt == "Therefore, the answer (arabic numerals) is"
            assert r.messages == [
                {"role": "user", "content": r.reasoning_prompt},
                {"role": "assistant", "content": r.reasoning_completion},
                {"role": "user", "content": r.answer_prompt},
                {"role": "assistant", "content": r.answer_completion},
            ]
        else:
            assert r.answer_prompt == f"{r.reasoning_prompt}{r.reasoning_completion} {TRIGGER}"
            assert r.messages is None
    assert {k: sum(r.usage[k] for r in records) for k in server.usage} == server.usage  # exactly what was billed
    answer_bodies = server.bodies("answer")
    assert all(b["max_tokens"] == 32 and b["temperature"] == 0.0 and b["n"] == 1 for b in answer_bodies)


def test_an_interrupted_run_keeps_its_records_and_a_larger_d_asks_only_for_the_rest(
    server, key_env, data_dir, tmp_path
):
    _, examples = _examples(data_dir, 6)
    store = RationaleStore(tmp_path)
    backend = HttpBackend(server.url, ApiFormat("completions", "m"), key_env, max_retries=0)
    kwargs = dict(temperature=0.7, chunk_size=5, progress=False)
    server.fail_after = 5  # two questions go through (a reasoning and an answer request each), then quota
    with pytest.raises(TeacherError, match="HTTP 400"):
        generate_rationales(store, backend, "multiarith", examples, "fake", num_completions=5, **kwargs)
    kept = store.read("fake", "zs_cot_t70", "multiarith")
    assert len(kept) == 10
    server.fail_after = None
    server.requests.clear()
    generate_rationales(store, backend, "multiarith", examples, "fake", num_completions=5, **kwargs)
    assert len(server.bodies("reasoning")) == 4
    server.requests.clear()
    report = generate_rationales(store, backend, "multiarith", examples, "fake", num_completions=8, **kwargs)
    assert (report.cached, report.written) == (30, 18)
    assert [b["n"] for b in server.bodies("reasoning")] == [3] * 6  # completions 5, 6, 7 of each question
    records = store.read("fake", "zs_cot_t70", "multiarith")
    assert records[:10] == kept
    for r in records:
        if r.completion_index >= 5:  # the seed of the request's first item, draws 0..2
            seed = item_seed(0, "multiarith", r.sample_index, 5)
            assert f"draw {seed}-{r.completion_index - 5}," in r.reasoning_completion


def test_a_flaky_slow_server_still_fills_the_cache_once(server, key_env, data_dir, tmp_path):
    _, examples = _examples(data_dir, 6)
    # 429s, 5xx and slow replies among the first requests, taken in arrival order
    server.plan.extend([429, 0.3, 500, 502, 0.2, 503, 429, 0.1, 504, 500])
    sleeps = []
    backend = HttpBackend(server.url, ApiFormat("chat", "m"), key_env, concurrency=4, sleep=sleeps.append)
    report = generate_rationales(
        RationaleStore(tmp_path), backend, "multiarith", examples, "fake", 8, 0.7, chunk_size=16, progress=False
    )
    assert report.written == 48 and backend.retries == 7 and len(sleeps) == 7
    assert len(server.bodies("reasoning")) == 6 and len(server.bodies("answer")) == 48  # retries reach no teacher
    records = RationaleStore(tmp_path).read("fake", "zs_cot_t70", "multiarith")
    assert sorted(r.key[3:] for r in records) == sorted((ex.sample_index, c) for ex in examples for c in range(8))


def test_a_reply_slower_than_the_timeout_is_retried(server, key_env):
    server.plan.append(1.0)
    backend = HttpBackend(server.url, ApiFormat("completions", "m"), key_env, timeout_s=0.3, sleep=lambda s: None)
    outs = backend.sample([prompt(0)], 1, 32, 0.7, seeds=[4])
    assert backend.retries == 1 and "draw 4-0" in outs[0][0].text
