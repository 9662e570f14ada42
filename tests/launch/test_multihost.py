"""Multi-host training on one machine: two processes joined by jax.distributed.initialize on
localhost, 2 CPU devices each, train the same tiny GPT-2 with rt_jax's sharded train step.
The reference is the same training in one process over 4 local devices."""

import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(HERE, "multihost_worker.py")


def start(args, log_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, WORKER, *map(str, args)], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def wait_all(procs, logs, timeout=600):
    for proc, log in zip(procs, logs):
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        assert rc == 0, open(log).read()[-3000:]


@pytest.mark.slow
def test_two_processes_see_global_devices_and_train_the_same_model(tmp_path, coordinator_port):
    port = coordinator_port
    outs = [tmp_path / f"process{i}.npz" for i in range(2)] + [tmp_path / "single.npz"]
    logs = [str(o) + ".log" for o in outs]
    procs = [start([i, 2, 2, port, outs[i]], logs[i]) for i in range(2)]
    procs.append(start([0, 1, 4, 0, outs[2]], logs[2]))
    wait_all(procs, logs)
    p0, p1, single = (np.load(o) for o in outs)

    for p in (p0, p1):  # each process sees all 4 devices: 2 of its own, 2 of the other's
        assert int(p["process_count"]) == 2
        assert int(p["local_device_count"]) == 2
        np.testing.assert_array_equal(p["device_processes"], [0, 0, 1, 1])
    np.testing.assert_array_equal(p0["device_ids"], p1["device_ids"])
    assert len(set(p0["device_ids"].tolist())) == 4 == len(single["device_ids"])

    param_keys = [k for k in p0.files if k.startswith("param")]
    assert param_keys and sorted(param_keys) == sorted(k for k in single.files if k.startswith("param"))
    changed = 0
    for k in param_keys:
        np.testing.assert_array_equal(p0[k], p1[k], err_msg=k)  # one model, not two
        # Adam turns rounding noise in zero gradients (GPT-2's key bias) into updates of up to
        # lr * 1e-3; a wrong batch or a missed all-reduce moves parameters by ~lr = 1e-2.
        np.testing.assert_allclose(p0[k], single[k], rtol=1e-4, atol=1e-4, err_msg=k)
        changed += not np.allclose(p0[k], p0["init" + k[len("param") :]])
    assert changed == len(param_keys)  # every parameter was trained
    np.testing.assert_array_equal(p0["losses"], p1["losses"])
    np.testing.assert_allclose(p0["losses"], single["losses"], rtol=1e-5)


def train_command(process_id, num_processes, local_devices, port, workdir, student, data_dir):
    """`python -m rt_jax.train` as each worker of a slice runs it (launch.vm run)."""
    return [
        sys.executable,
        "-m",
        "rt_jax.train",
        "--config=paper:multiarith,ft,gpt2,0",
        f"--config.data_dir={data_dir}",
        f"--config.model_path={student}",
        "--config.train.batch_size=8",
        "--config.train.max_seq_len=256",
        "--config.train.log_every_steps=1",
        "--config.train.max_steps=6",
        "--config.mesh.data=2",
        "--config.mesh.fsdp=2",
        f"--config.distributed.num_processes={num_processes}",
        f"--config.distributed.coordinator_address=127.0.0.1:{port}",
        f"--config.distributed.process_id={process_id}",
        f"--workdir={workdir}",
    ], local_devices


def losses(workdir):
    import json

    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["train/loss"]) for r in rows if "train/loss" in r]


@pytest.mark.slow
def test_train_command_on_two_hosts_trains_like_one_host(tmp_path, data_dir, coordinator_port):
    from rt_jax import configs, demo

    cfg = configs.load("demo:ft")
    cfg.demo.n_layer, cfg.demo.n_embd, cfg.demo.n_head, cfg.demo.n_positions = 1, 32, 2, 256
    student = demo.make_student(cfg, tmp_path)
    port = coordinator_port
    jobs = [train_command(i, 2, 2, port, tmp_path / "two_hosts", student, data_dir) for i in range(2)]
    jobs.append(train_command(0, 1, 4, 0, tmp_path / "one_host", student, data_dir))
    logs = [str(tmp_path / f"job{i}.log") for i in range(3)]
    procs = []
    for (argv, local_devices), log_path in zip(jobs, logs):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={local_devices}")
        with open(log_path, "wb") as log:
            procs.append(subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    wait_all(procs, logs)
    two, one = losses(tmp_path / "two_hosts"), losses(tmp_path / "one_host")
    assert [s for s, _ in two] == [s for s, _ in one] == [1, 2, 3, 4, 5, 6]  # process 0 logs once
    np.testing.assert_allclose([v for _, v in two], [v for _, v in one], rtol=1e-5)
    assert two[-1][1] < two[0][1]  # it trained
