"""Decoding on a mesh that spans two processes (jax.distributed on localhost, 2 CPU devices
each): every process gets every completion, equal to a one-process decode with no mesh."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "multihost_decode_worker.py")


def _same(got, want, name):
    assert len(got) == len(want), name
    for i, (g_outs, w_outs) in enumerate(zip(got, want)):
        assert [o[:2] for o in g_outs] == [o[:2] for o in w_outs], f"{name} prompt {i}"
        if w_outs[0][2] is not None:  # beam scores: sharded reductions round differently
            np.testing.assert_allclose([o[2] for o in g_outs], [o[2] for o in w_outs], rtol=1e-5)


@pytest.mark.slow
def test_two_process_mesh_decodes_like_one_process(tmp_path, coordinator_port):
    port = coordinator_port
    jobs = [(0, 2, 2, port), (1, 2, 2, port), (0, 1, 4, 0)]  # two hosts, then the reference
    outs = [tmp_path / f"out{i}.json" for i in range(len(jobs))]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = []
    for job, out in zip(jobs, outs):
        with open(f"{out}.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, WORKER, *map(str, job), str(out)], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
    try:
        for proc, out in zip(procs, outs):
            assert proc.wait(timeout=600) == 0, open(f"{out}.log").read()[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    p0, p1, single = (json.loads(o.read_text()) for o in outs)

    assert p0["process_count"] == p1["process_count"] == 2
    assert p0["mesh_processes"] == [0, 1] and single["mesh_processes"] == [0]
    for name in ("greedy", "greedy_train_params", "beam", "sample"):
        assert p0[name] == p1[name], name  # every process holds every completion
        reference = single[name.replace("_train_params", "") + "_no_mesh"]
        _same(p0[name], reference, name)
    assert len(p0["greedy"]) == 5 and all(len(o) == 2 for o in p0["beam"])
    assert all(len(o) == 3 for o in p0["sample"])
    assert len({tuple(o[0][0]) for o in p0["greedy"]}) > 1  # not one degenerate completion

    # Per-epoch evaluation: every process scores all questions; process 0 alone saves them.
    reference = single["evaluation_no_mesh"]
    assert len(reference["completions"]) == reference["num_test"] == 5 and any(reference["completions"])
    assert p0["evaluation"] == reference
    assert p1["evaluation"] == dict(reference, completions=[])
