"""gs:// workdirs: every file of a run goes to the bucket through etils epath, never to a local
folder named `gs:` (pathlib's reading of `gs://b/x`). The bucket is tests/fake_gcs.py."""

import io
import json
import os

import pytest
from tensorboardX.event_file_writer import event_pb2  # parse the uploaded event file

from rt_jax import run_dir
from rt_jax.configs.base import get_config
from rt_jax.errors import UserError
from rt_jax.train import checkpoint, metrics, storage

RUN = "gs://bucket/runs/r1"


@pytest.fixture(autouse=True)
def in_empty_dir(tmp_path, monkeypatch):
    """Relative local folders (`gs:/bucket/...`) would appear here; the tests check none does."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert os.listdir(tmp_path) == []


def _events(data: bytes) -> list:
    """The Event records of a TFRecord file (length, crc, payload, crc)."""
    out, f = [], io.BytesIO(data)
    while header := f.read(12):
        payload = f.read(int.from_bytes(header[:8], "little"))
        f.read(4)
        out.append(event_pb2.Event.FromString(payload))
    return out


def test_workdir_paths_keep_urls_and_make_local_paths_absolute():
    remote = storage.workdir_path(RUN)
    assert os.fspath(remote) == RUN and os.fspath(remote / "checkpoints") == RUN + "/checkpoints"
    assert not storage.is_local(remote) and storage.is_local("rel/dir")
    assert os.fspath(storage.workdir_path("rel/dir")) == os.path.join(os.getcwd(), "rel", "dir")


def test_config_results_and_logs_are_written_to_the_bucket(fake_gcs):
    config = get_config()
    run_dir.check(config, RUN)
    run_dir.write_snapshot(config, RUN)
    assert json.loads(fake_gcs[RUN + "/config.json"].getvalue()) == json.loads(config.to_json_best_effort())
    other = get_config()
    other.train.learning_rate = 1.0
    with pytest.raises(UserError, match=r"gs://bucket/runs/r1/config.json: .*different config"):
        run_dir.check(other, RUN)

    epochs = [{"epoch": 0, "accuracy": 10.0}, {"epoch": 1, "accuracy": 5.0}]
    run_dir.write_results(RUN, run_dir.results(config, epochs, 3.0))
    results = json.loads(fake_gcs[RUN + "/results.json"].getvalue())
    assert results["best"] == {"epoch": 0, "accuracy": 10.0} and results["final"]["epoch"] == 1

    log = metrics.RunLog(RUN, total_steps=4, stream=io.StringIO(), remote_flush_s=3600)
    log.write(1, {"loss": 2.5})
    log.write(2, {"loss": 2.0})  # within remote_flush_s of the first upload: uploaded at close
    log.close()
    lines = fake_gcs[RUN + "/metrics.jsonl"].getvalue().decode().splitlines()
    assert [json.loads(l) for l in lines] == [{"step": 1, "train/loss": 2.5}, {"step": 2, "train/loss": 2.0}]
    event_files = [k for k in fake_gcs if k.startswith(RUN + "/tensorboard/events.out.tfevents.")]
    assert len(event_files) == 1
    scalars = [
        (e.step, v.tag, v.simple_value) for e in _events(fake_gcs[event_files[0]].getvalue()) for v in e.summary.value
    ]
    assert scalars == [(1, "train/loss", 2.5), (2, "train/loss", 2.0)]

    resumed = metrics.RunLog(RUN, total_steps=4, stream=io.StringIO())  # a resumed run appends
    resumed.write(3, {"loss": 1.5})
    resumed.close()
    lines = fake_gcs[RUN + "/metrics.jsonl"].getvalue().decode().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [1, 2, 3]


def test_checkpoints_directory_stays_in_the_bucket(fake_gcs):
    ck = checkpoint.Checkpoints(RUN + "/checkpoints")
    assert os.fspath(ck.directory) == RUN + "/checkpoints" and ck.latest_step() is None
    ck.close()  # (creating it made no local folder: see in_empty_dir)
