"""Wall time of planning, dry-running and --status of a 5,100-run sweep, as a user runs them
(`python -m launch.sweep` in a fresh process, interpreter start included): 12 tasks x 17
students x 5 seeds x 5 learning rates. --status runs twice: on an empty root, and after every
run is given a finished state (sweep_state.json, config.json, results.json of 20 epochs, as a
done sweep leaves them; no checkpoints or predictions, which status never reads).

    python benchmarks/sweep_scale.py [--root /tmp/sweep_scale]
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = """
import ml_collections
from rt_jax.configs import students
from rt_jax.configs.sweeps.paper import TASKS


def get_config():
    c = ml_collections.ConfigDict()
    c.name, c.root, c.train_config = "scale", {root!r}, "paper"
    c.max_attempts, c.parallel = 2, 8
    c.tasks, c.students, c.methods = TASKS, tuple(students.OVERRIDES), ("ft_cot",)
    c.num_rationales, c.seeds, c.grids, c.overrides = (1,), (0, 1, 2, 3, 4), [], {{}}
    c.axes = {{"train": {{"learning_rate": (1e-5, 3e-5, 1e-4, 1e-3, 3e-3)}}}}
    return c
"""


def timed(*args) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "launch.sweep", *args], cwd=REPO, capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, done.stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="/tmp/sweep_scale")
    root = pathlib.Path(parser.parse_args().root)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    config = root / "scale.py"
    config.write_text(CONFIG.format(root=str(root)))
    sys.path.insert(0, str(REPO))
    from launch import grid
    from rt_jax import configs

    start = time.perf_counter()
    runs = grid.expand(configs.load(str(config)))
    plan = time.perf_counter() - start
    dry, out = timed(f"--sweep={config}", "--dry_run")
    assert out.count("\n    ") == len(runs)
    empty, out = timed(f"--sweep={config}", "--status")
    print(f"{len(runs)} runs: plan {plan:.2f} s in process; dry run {dry:.2f} s; status (empty root) {empty:.2f} s")
    now = time.time()
    for i, run in enumerate(runs):
        workdir = root / "runs" / run.name
        os.makedirs(workdir)
        (workdir / "sweep_state.json").write_text(
            json.dumps(
                {"status": "done", "attempts": 1, "started": now - 100 - i % 7, "finished": now, "best": "10.00"}
            )
        )
        (workdir / "config.json").write_text(json.dumps({"train": {"num_epochs": 20}}))
        epochs = [{"epoch": e, "accuracy": 10.0, "num_test": 100, "ended": 99.0} for e in range(20)]
        (workdir / "results.json").write_text(json.dumps({"epochs": epochs, "best": {"epoch": 3, "accuracy": 10.0}}))
    done, out = timed(f"--sweep={config}", "--status")
    assert out.splitlines()[0].startswith(f"done {len(runs)}, "), out.splitlines()[0]
    print(f"status (all done) {done:.2f} s: {out.splitlines()[0]}")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
