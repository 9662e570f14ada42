"""OpenAI Batch API files: write the requests, import fake output files (made here by the loopback
server's teacher, no network), two rounds, resumable, and the same records `generate` makes."""

import dataclasses
import json

import pytest
from openai_server import KEY, FakeOpenAI, reply_body
from teacher_helpers import cli, http_args

from rt_jax.tasks import load_dataset, load_split
from rt_jax.teacher.batch import STAGING, parse_custom_id
from rt_jax.teacher.store import RationaleStore

SHARD = ("fake-teacher", "zs_cot_t70", "coin_flip")


@pytest.fixture(scope="module")
def answers(data_dir):
    return {ex.question.strip(): ex.answer for ex in load_dataset("coin_flip", data_dir)}


def read_requests(folder):
    lines = [json.loads(line) for path in sorted(folder.glob("batch-*.jsonl")) for line in path.open()]
    return lines


def outputs(requests, answers, path, fail=(), edit=None):
    """A Batch API output file for `requests`: the ones at positions in `fail` failed."""
    with open(path, "w") as f:
        for i, req in enumerate(requests):
            line = {"id": f"batch_req_{i}", "custom_id": req["custom_id"], "response": None, "error": None}
            if i in fail:
                line["error"] = {"code": "server_error", "message": "boom"}
            else:
                body = reply_body(req["body"], answers)
                if edit:
                    edit(body)
                line["response"] = {"status_code": 200, "request_id": f"req_{i}", "body": body}
            f.write(json.dumps(line) + "\n")
    return path


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_two_rounds_of_batch_files_fill_the_cache_as_generate_would(api, answers, data_dir, tmp_path):
    cache = tmp_path / "cache"
    flags = http_args("batch_write", "http://unused.invalid/v1", cache, data_dir, f"--api={api}", "--limit=3")
    write = lambda n: cli(*flags, f"--out={tmp_path / f'round{n}'}")  # noqa: E731
    imp = lambda *files: cli("batch_import", *flags[1:], "--batch_files=" + ",".join(map(str, files)))  # noqa: E731
    train = load_split("coin_flip", data_dir).train[:3]

    out = write(1)
    assert out.returncode == 0, out.stderr
    first = read_requests(tmp_path / "round1")
    path = "/v1/completions" if api == "completions" else "/v1/chat/completions"
    assert [(r["method"], r["url"], r["body"]["n"]) for r in first] == [("POST", path, 2)] * 3  # one per question
    assert [parse_custom_id(r["custom_id"])[3:] for r in first] == [("reasoning", 2, [(s, 0), (s, 1)]) for s in train]

    out1 = outputs(first, answers, tmp_path / "out1.jsonl", fail={2})
    done = imp(out1)
    assert done.returncode == 1  # the failed request is reported, the rest imported
    assert "rationales=4" in done.stdout and f"{out1}:3: the request failed (server_error: boom)" in done.stderr
    again = imp(out1)  # importing the same file again adds nothing
    assert "rationales=0, records=0, already=4, not_imported=1" in again.stdout
    assert RationaleStore(cache).read(*SHARD) == []  # rationales wait outside the cache
    assert len(RationaleStore(cache / STAGING).read(*SHARD)) == 4

    assert write(2).returncode == 0
    second = read_requests(tmp_path / "round2")
    steps = [parse_custom_id(r["custom_id"])[3] for r in second]
    assert steps == ["reasoning"] + ["answer"] * (1 if api == "completions" else 4)  # the failed one again
    assert imp(outputs(second, answers, tmp_path / "out2.jsonl")).returncode == 0
    assert len(RationaleStore(cache).read(*SHARD)) == 4

    assert write(3).returncode == 0
    third = read_requests(tmp_path / "round3")
    assert [parse_custom_id(r["custom_id"])[3] for r in third] == ["answer"] * (1 if api == "completions" else 2)
    assert imp(outputs(third, answers, tmp_path / "out3.jsonl")).returncode == 0
    last = write(4)
    assert "0 request(s): nothing is missing" in last.stdout and not (tmp_path / "round4").exists()
    assert RationaleStore(cache).shards() == [SHARD]

    # generate against a server with the same teacher makes the same records. Their usage shares
    # differ only where the rounds split the answers differently (4 + 2 prompts here, 6 there).
    with FakeOpenAI(answers) as server:
        live = tmp_path / "live"
        gen = cli(*http_args("generate", server.url, live, data_dir, f"--api={api}", "--limit=3"), env={"RT_KEY": KEY})
        assert gen.returncode == 0, gen.stderr
    batch, generated = (sorted(RationaleStore(c).read(*SHARD), key=lambda r: r.key) for c in (cache, live))
    assert len(generated) == 6
    assert [dataclasses.replace(r, usage=None) for r in batch] == [
        dataclasses.replace(r, usage=None) for r in generated
    ]
    total = lambda records: {k: sum(r.usage[k] for r in records) for k in server.usage}  # noqa: E731
    assert total(batch) == total(generated) == server.usage
    if api == "chat":  # one conversation per request: the same shares
        assert batch == generated


def test_import_never_rewrites_and_names_what_it_skips(answers, data_dir, tmp_path):
    cache = tmp_path / "cache"
    flags = http_args("batch_write", "http://unused.invalid/v1", cache, data_dir, "--limit=2")
    assert cli(*flags, f"--out={tmp_path / 'r1'}").returncode == 0
    requests = read_requests(tmp_path / "r1")
    imp = lambda *more: cli("batch_import", *flags[1:], *more)  # noqa: E731
    assert imp(f"--batch_files={outputs(requests, answers, tmp_path / 'o1.jsonl')}").returncode == 0
    staged = RationaleStore(cache / STAGING).shard_path(*SHARD).read_bytes()

    def other_text(body):
        for choice in body["choices"]:
            choice["text"] = " a different rationale"

    changed = imp(f"--batch_files={outputs(requests, answers, tmp_path / 'o2.jsonl', edit=other_text)}")
    assert changed.returncode == 1 and changed.stderr.count("already holds a different record; not overwritten") == 4
    other = imp("--teacher=another", f"--batch_files={tmp_path / 'o1.jsonl'}")
    assert "a request of fake-teacher/zs_cot_t70, but the flags say another/zs_cot_t70" in other.stderr
    assert RationaleStore(cache / STAGING).shard_path(*SHARD).read_bytes() == staged
    (tmp_path / "bad.jsonl").write_text('{"custom_id": "x/y"}\nnot json\n')
    bad = imp(f"--batch_files={tmp_path / 'bad.jsonl'}")
    assert f"{tmp_path / 'bad.jsonl'}:1: custom_id 'x/y' is not one batch_write writes" in bad.stderr
    assert f"{tmp_path / 'bad.jsonl'}:2: " in bad.stderr and "Traceback" not in bad.stderr
    exists = cli(*flags, f"--out={tmp_path / 'r1'}")
    assert (
        exists.returncode == 2
        and exists.stderr == f"error: --out={tmp_path / 'r1'}: already exists; batch_write writes a new folder\n"
    )
