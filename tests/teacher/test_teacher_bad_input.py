"""Bad input to `python -m rt_jax.teacher generate / batch_write / batch_import`, as subprocesses:
each case exits 2 with one stderr line, no traceback, no secret; flag errors send no request; and
a failing server leaves the cache as it was."""

import socket

import pytest
from openai_server import KEY, FakeOpenAI
from teacher_helpers import cli, http_args

from rt_jax.tasks import load_dataset
from rt_jax.teacher.store import RationaleStore

SECRET = "qs-secret-token-31337"  # a query value of the URL


@pytest.fixture(scope="module")
def answers(data_dir):
    return {ex.question.strip(): ex.answer for ex in load_dataset("coin_flip", data_dir)}


@pytest.fixture(scope="module")
def server(answers):
    with FakeOpenAI(answers) as srv:
        yield srv


@pytest.fixture(scope="module")
def filled(server, data_dir, tmp_path_factory):
    """A cache with 2 questions done; failing runs ask for 2 more."""
    root = tmp_path_factory.mktemp("filled")
    out = cli(*http_args("generate", server.url, root, data_dir, "--limit=2"), env={"RT_KEY": KEY})
    assert out.returncode == 0, out.stderr
    return root


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_error_line(out, *expected):
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr and KEY not in out.stderr and SECRET not in out.stderr
    for text in expected:
        assert text in lines[0], lines[0]


# (extra flags, what the line says): refused by the flags, before any request
FLAG_CASES = [
    (["--max_retries=-1"], "--max_retries=-1"),
    (["--limit=-3"], "--limit=-3"),
    (["--batch_size=0"], "--batch_size=0"),
    (["--backend=local", "--batch_size=-1"], "--batch_size=-1"),
    (["--num_completions=0"], "--num_completions=0"),
    (["--concurrency=0"], "--concurrency=0"),
    (["--answers_per_request=0"], "--answers_per_request=0"),
    (["--rate_limit=-1"], "--rate_limit=-1"),
    (["--max_reasoning_tokens=0"], "--max_reasoning_tokens=0"),
    (["--max_answer_tokens=-2"], "--max_answer_tokens=-2"),
    (["--temperature=-0.5"], "--temperature=-0.5"),
    (["--temperature=0", "--num_completions=3"], "--num_completions > 1 needs --temperature > 0"),
    (["--api=bogus"], "--api"),
    (["--backend=local", "--api=chat"], "--api is for --backend=http"),
    (["--backend=local", "--stop=x"], "--stop is for --backend=http"),
    (["--extra_body={bad"], "--extra_body: not valid JSON"),
    (["--extra_body=[1]"], "--extra_body: expected a JSON object"),
    (['--extra_body={"n": 4}'], "--extra_body: 'n' is set by rt_jax (--num_completions)"),
    (['--extra_body={"messages": []}'], "--extra_body: 'messages' is set by rt_jax"),
    ([r"--stop=a\q"], "--stop='a\\\\q': unknown escape"),
    (["--stop=a,,b"], "an empty stop string"),
    (["--backend=local"], "--backend=local: batch files hold requests to an HTTP API"),
    (["--model="], "--model"),
    (["--tasks=nope"], "--tasks: unknown ['nope']"),
    (["--split=dev"], "--split"),
    (["--not_a_flag=1"], "not_a_flag"),
]


# generate only: it sends requests (batch_write needs neither the URL nor the key)
GENERATE_CASES = [
    (["--url=notaurl"], "--url=notaurl: expected http(s)://"),
    (["--url=ftp://h/v1"], "--url=ftp://h/v1"),
    (["--url=http://h:port/v1"], "--url=http://h:port/v1"),
    ([f"--url=http://h:port/v1?key={SECRET}"], "--url=http://h:port/v1?key=***"),
    (["--api_key_env=RT_TEST_UNSET_VARIABLE"], "--api_key_env=RT_TEST_UNSET_VARIABLE: environment variable is not set"),
]
# batch_write parses the same flags; these are the ones its own code reads
BATCH_WRITE_FLAGS = ("--limit", "--temperature=0", "--backend", "--extra_body={bad", "--stop=a,", "--model")
CASES = [("generate", f, s) for f, s in FLAG_CASES + GENERATE_CASES if f != ["--backend=local"]]
CASES += [("batch_write", f, s) for f, s in FLAG_CASES if f[0].startswith(BATCH_WRITE_FLAGS)]
# In the default suite (a subprocess each); the rest of the table runs with -m slow.
DEFAULT = {
    ("generate", "--max_retries=-1"),
    ("generate", "--limit=-3"),
    ("generate", "--batch_size=-1"),
    ("generate", "--num_completions=0"),
    ("generate", "--concurrency=0"),
    ("generate", "--answers_per_request=0"),
    ("generate", "--extra_body={bad"),
    ("generate", r"--stop=a\q"),
    ("generate", "--url=notaurl"),
    ("generate", f"--url=http://h:port/v1?key={SECRET}"),
    ("batch_write", "--limit=-3"),
    ("batch_write", "--backend=local"),
}


@pytest.mark.parametrize(
    "action, flags, says",
    [
        pytest.param(a, f, s, id=f"{a} {' '.join(f)}", marks=() if (a, f[-1]) in DEFAULT else pytest.mark.slow)
        for a, f, s in CASES
    ],
)
def test_bad_flags_are_one_line_before_any_request(action, flags, says, server, data_dir, tmp_path):
    before = len(server.requests)
    more = [f"--out={tmp_path / 'requests'}"] if action == "batch_write" else []
    out = cli(*http_args(action, server.url, tmp_path / "cache", data_dir, *more, *flags), env={"RT_KEY": KEY})
    one_error_line(out, says)
    assert len(server.requests) == before and not (tmp_path / "cache").exists()


def test_missing_action_arguments_are_one_line(server, data_dir, tmp_path):
    base = http_args("batch_write", server.url, tmp_path, data_dir)
    one_error_line(cli(*base), "batch_write: give --out=")
    one_error_line(cli("batch_import", *base[1:]), "batch_import: give --batch_files=")
    one_error_line(cli("batch_import", *base[1:], f"--batch_files={tmp_path / 'none.jsonl'}"), "cannot read")
    (tmp_path / "exists").mkdir()
    one_error_line(cli(*base, f"--out={tmp_path / 'exists'}"), "already exists")


# (url suffix or a whole url, env, server state, flags, what the line says)
SERVER_CASES = [
    ("refused", {}, {}, [], "cannot connect (ConnectionRefusedError"),
    ("/wrong", {}, {}, [], "/v1/wrong/completions: HTTP 404"),
    ("/wrong", {}, {}, ["--api=chat"], "/v1/wrong/chat/completions: HTTP 404"),
    ("", {"RT_KEY": "sk-wrong-0000000000"}, {}, [], "HTTP 401 Unauthorized: bad key Bearer ***"),
    ("", {}, {"plan": [403]}, [], "HTTP 403 Forbidden: try again"),
    ("", {}, {"plan": [400]}, ["--api=chat"], "HTTP 400"),
    ("", {}, {"bad_reply": "no_choices"}, [], "unexpected reply: the reply has no 'choices' list"),
    ("", {}, {"bad_reply": "no_text"}, [], "unexpected reply: choice "),
    ("", {}, {"bad_reply": "no_text"}, ["--api=chat"], "has no message.content string"),
    ("", {}, {"bad_reply": "not_json"}, [], "the reply is not JSON"),
    ("", {}, {"plan": [503] * 4}, ["--max_retries=1"], "gave up after 2 attempt(s) (HTTP 503)"),
    (f"?api-key={SECRET}", {}, {}, [], "?api-key=***: HTTP 404 Not Found: no route for /v1/completions?api-key=***"),
    (f"/wrong?api-key={SECRET}&v=1", {}, {"query": {"api-key": SECRET}}, [], "/v1/wrong/completions?api-key=***&v=***"),
]


SLOW_SERVER_CASES = ("HTTP 400", "has no message.content string", "gave up after", "the reply is not JSON")


@pytest.mark.parametrize(
    "url, env, state, flags, says",
    [
        pytest.param(*c, id=c[-1][:40], marks=pytest.mark.slow if c[-1].startswith(SLOW_SERVER_CASES) else ())
        for c in SERVER_CASES
    ],
)
def test_a_failing_server_is_one_line_naming_the_scrubbed_url_and_the_cache_stays(
    url, env, state, flags, says, server, filled, data_dir
):
    shard = RationaleStore(filled).shard_path("fake-teacher", "zs_cot_t70", "coin_flip")
    before = shard.read_bytes()
    server.plan.extend(state.get("plan", []))
    server.bad_reply, server.query = state.get("bad_reply"), state.get("query", {})
    base = f"http://127.0.0.1:{closed_port()}/v1" if url == "refused" else server.url + url
    try:
        out = cli(*http_args("generate", base, filled, data_dir, "--limit=4", *flags), env={"RT_KEY": KEY, **env})
    finally:
        server.plan.clear()
        server.bad_reply, server.query = None, {}
    one_error_line(out, says)
    assert "sk-wrong-0000000000" not in out.stderr
    assert shard.read_bytes() == before  # the 2 questions done stay, nothing half-written


def test_a_secret_in_the_url_reaches_no_file_and_no_output(answers, data_dir, tmp_path):
    with FakeOpenAI(answers, query={"api-key": SECRET}) as srv:
        url = f"{srv.url}?api-key={SECRET}"
        runs = [
            cli(*http_args("generate", url, tmp_path / "cache", data_dir, "--limit=2", *api), env={"RT_KEY": KEY})
            for api in (["--api=completions"], ["--api=chat", "--teacher=fake-chat"])
        ]
    runs.append(
        cli(*http_args("batch_write", url, tmp_path / "cache", data_dir, "--limit=3", f"--out={tmp_path / 'b'}"))
    )
    for out in runs:
        assert out.returncode == 0, out.stderr
        assert SECRET not in out.stdout + out.stderr and KEY not in out.stdout + out.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 3  # the shard, its lock, the request file
    for path in files:
        data = path.read_bytes()
        assert SECRET.encode() not in data and KEY.encode() not in data, path
