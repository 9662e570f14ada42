"""Stands in for `python -m rt_jax.train` in launcher tests: same flags, a resumable "training"
of --config.fake_steps steps (a checkpoint file per step), then results.json in the documented
format. --config.fake_fail=1 exits 1 without results; each start is logged in starts.txt."""

import json
import pathlib
import sys
import time

flags = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
workdir = pathlib.Path(flags["workdir"])
task, method, student, seed = flags["config"].split(":", 1)[1].split(",")
steps = int(flags.get("config.fake_steps", 3))
step_seconds = float(flags.get("config.fake_step_seconds", 0.0))
workdir.mkdir(parents=True, exist_ok=True)
checkpoint = workdir / "checkpoint.json"
step = json.loads(checkpoint.read_text())["step"] if checkpoint.exists() else 0
with open(workdir / "starts.txt", "a") as f:
    f.write(f"{step}\n")
if flags.get("config.fake_fail") == "1":
    print("failing on purpose", file=sys.stderr)
    sys.exit(1)
while step < steps:
    time.sleep(step_seconds)
    step += 1
    checkpoint.write_text(json.dumps({"step": step}))
accuracy = 10.0 * int(seed) + len(task)
(workdir / "results.json").write_text(
    json.dumps(
        {
            "task": task,
            "method": method,
            "student": student,
            "seed": int(seed),
            "teacher": None,
            # the identity fields rt_jax.train records: its --config.<field> overrides
            "overrides": {
                k[len("config.") :]: v for k, v in flags.items() if k.startswith("config.") and "fake" not in k
            },
            "epochs": [{"epoch": 0, "step": steps, "accuracy": accuracy, "num_test": 10}],
            "best": {"epoch": 0, "accuracy": accuracy},
            "final": {"epoch": 0, "accuracy": accuracy},
            "wall_time_s": 0.0,
        }
    )
)
