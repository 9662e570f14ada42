"""The cache store: append-only, crash-safe, one writer, validated on read."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rt_jax.errors import UserError
from rt_jax.teacher.record import SCHEMA_VERSION, Record, record_from_json
from rt_jax.teacher.store import Conflict, RationaleStore

SHARD = ("t", "zs_cot", "multiarith")


def make_record(i: int, c: int = 0, correct: bool = True, rationale: str | None = None) -> Record:
    return Record(
        teacher="t",
        method="zs_cot",
        task="multiarith",
        sample_index=i,
        completion_index=c,
        reasoning_prompt=f"Q: question {i}\nA: Let's think step by step.",
        reasoning_completion=rationale if rationale is not None else f" rationale {i}/{c}\nline 2",
        answer_prompt="...",
        answer_completion=f" {i}.",
        reasoning_finish_reason="stop",
        answer_finish_reason=None,
        prediction=str(i),
        correct=correct,
        extra={"k": [1, "ü"]},
    )


def test_append_then_read_round_trips_and_ignores_identical_repeats(tmp_path):
    store = RationaleStore(tmp_path)
    records = [make_record(i, c) for i in range(3) for c in range(2)]
    with store.writer(*SHARD) as w:
        assert all(w.append(r) for r in records)
        assert not w.append(records[0])  # same record again: nothing written
    assert store.read(*SHARD) == records
    lines = store.shard_path(*SHARD).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["schema_version"] == SCHEMA_VERSION
    assert store.by_sample(*SHARD)[1] == records[2:4]
    assert store.shards() == [SHARD]


def test_different_record_under_existing_key_is_refused_and_file_unchanged(tmp_path):
    store = RationaleStore(tmp_path)
    with store.writer(*SHARD) as w:
        w.append(make_record(0))
    before = store.shard_path(*SHARD).read_bytes()
    with store.writer(*SHARD) as w, pytest.raises(Conflict, match="sample 0 completion 0"):
        w.append(make_record(0, correct=False))
    assert store.shard_path(*SHARD).read_bytes() == before


def test_second_writer_is_refused_while_first_holds_the_lock(tmp_path):
    store = RationaleStore(tmp_path)
    with store.writer(*SHARD):
        with pytest.raises(UserError, match="another process is writing"):
            RationaleStore(tmp_path).writer(*SHARD)
    with store.writer(*SHARD) as w:  # released on close
        assert w.append(make_record(1))


def test_truncated_last_line_is_reported_on_read_and_cut_with_a_backup_by_a_writer(tmp_path):
    store = RationaleStore(tmp_path)
    with store.writer(*SHARD) as w:
        w.append(make_record(0))
    path = store.shard_path(*SHARD)
    partial = (make_record(1).to_json() + "\n").encode()[:37]
    with open(path, "ab") as f:
        f.write(partial)
    problems = []
    assert store.read(*SHARD, problems) == [make_record(0)]
    assert len(problems) == 1 and f"{path}:2: truncated last line" in problems[0]
    problems = []
    with store.writer(*SHARD, problems=problems) as w:
        assert w.append(make_record(1))
    assert problems == [] and len(store.repairs) == 1  # nothing was skipped
    assert f"{path}: repaired: cut a truncated last line (37 bytes" in store.repairs[0]
    assert (path.parent / f"{path.name}.partial-0").read_bytes() == partial  # nothing lost
    assert store.read(*SHARD) == [make_record(0), make_record(1)]


def test_complete_record_missing_only_its_newline_is_kept(tmp_path):
    store = RationaleStore(tmp_path)
    path = store.shard_path(*SHARD)
    path.parent.mkdir(parents=True)
    path.write_text(make_record(0).to_json(), encoding="utf-8")
    with store.writer(*SHARD) as w:
        assert not w.append(make_record(0))
        assert w.append(make_record(1))
    assert store.read(*SHARD) == [make_record(0), make_record(1)]


def test_invalid_lines_are_reported_with_file_and_line_and_the_rest_is_read(tmp_path):
    store = RationaleStore(tmp_path)
    path = store.shard_path(*SHARD)
    path.parent.mkdir(parents=True)
    good = [make_record(0), make_record(2)]
    future = json.loads(make_record(1).to_json()) | {"schema_version": 99}
    wrong_type = json.loads(make_record(3).to_json()) | {"correct": "yes"}
    other_task = json.loads(make_record(4).to_json()) | {"task": "svamp"}
    path.write_text(
        "\n".join(
            [
                good[0].to_json(),
                json.dumps(future),
                "{not json",
                json.dumps(wrong_type),
                json.dumps(other_task),
                good[1].to_json(),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    problems = []
    assert store.read(*SHARD, problems) == good
    assert [p.split(": ")[0] for p in problems] == [f"{path}:{n}" for n in (2, 3, 4, 5)]
    assert "unknown schema_version 99" in problems[0]
    assert "not valid JSON" in problems[1]
    assert "'correct' must be true or false" in problems[2]
    assert "svamp" in problems[3]


def test_record_validation_names_the_field():
    d = json.loads(make_record(0).to_json())
    del d["prediction"]
    with pytest.raises(ValueError, match=r"missing field\(s\) \['prediction'\]"):
        record_from_json(json.dumps(d))
    with pytest.raises(ValueError, match="teacher"):
        record_from_json(json.dumps(json.loads(make_record(0).to_json()) | {"teacher": "../x"}))


WRITER_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_teacher_store import make_record
    from rt_jax.teacher.store import RationaleStore
    with RationaleStore({root!r}).writer("t", "zs_cot", "multiarith") as w:
        for i in range(100000):
            w.append(make_record(i, rationale="x" * 5000))
            if i == 20:
                print("ready", flush=True)
""")


def test_writer_killed_mid_run_loses_nothing_and_a_rerun_adds_no_duplicates(tmp_path):
    root = tmp_path / "cache"
    script = WRITER_SCRIPT.format(tests=os.path.dirname(__file__), root=str(root))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = RationaleStore(root)
    problems = []
    with store.writer(*SHARD, problems=problems) as w:
        kept = len(w.keys())
        assert kept > 20
        added = sum(w.append(make_record(i, rationale="x" * 5000)) for i in range(kept + 50))
    assert added == 50
    records = store.read(*SHARD)
    assert [r.sample_index for r in records] == list(range(kept + 50))


def _version_1_line(record: Record) -> str:
    """The line rt_jax wrote before schema version 2 (no messages, no usage)."""
    d = json.loads(record.to_json())
    del d["messages"], d["usage"]
    return json.dumps(d | {"schema_version": 1}, ensure_ascii=False)


def test_version_1_lines_read_as_records_without_messages_or_usage_and_resume_over(tmp_path):
    old = make_record(0)
    assert record_from_json(_version_1_line(old)) == old and old.messages is None and old.usage is None
    store = RationaleStore(tmp_path)
    path = store.shard_path(*SHARD)
    path.parent.mkdir(parents=True)
    path.write_text(_version_1_line(old) + "\n", encoding="utf-8")
    with store.writer(*SHARD) as w:
        assert not w.append(make_record(0))  # the same record: already there, the old line stays
        assert w.append(make_record(1))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == _version_1_line(old) and json.loads(lines[1])["schema_version"] == SCHEMA_VERSION == 2


def test_messages_and_usage_round_trip_and_are_checked():
    chat = dataclasses.replace(
        make_record(0),
        messages=[
            {"role": "user", "content": "Q: x\nA: Let's think step by step."},
            {"role": "assistant", "content": "ü"},
        ],
        usage={"prompt_tokens": 12, "completion_tokens": 5},
    )
    assert record_from_json(chat.to_json()) == chat
    d = json.loads(chat.to_json())
    cases = [
        ({"schema_version": 1}, r"unknown field\(s\) \['messages', 'usage'\] for schema_version 1"),
        ({"schema_version": 3}, r"unknown schema_version 3 \(this rt_jax reads \[1, 2\]\)"),
        ({"schema_version": "2"}, "unknown schema_version '2'"),
        ({"messages": [{"role": "user"}]}, "'messages' must be null or a list"),
        ({"messages": "hello"}, "'messages' must be null or a list"),
        ({"usage": {"prompt_tokens": 1}}, "'usage' must be null or"),
        ({"usage": {"prompt_tokens": -1, "completion_tokens": 0}}, "'usage' must be null or"),
        ({"usage": {"prompt_tokens": 1.5, "completion_tokens": 0}}, "'usage' must be null or"),
    ]
    for change, match in cases:
        with pytest.raises(ValueError, match=match):
            record_from_json(json.dumps(d | change))
