"""Helpers for the launch tests: run a launch CLI in a subprocess, and a fake gcloud that
records its arguments (the launch CLIs define absl flags with the same names, so each runs in
its own process, as a user runs them)."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

FAKE_GCLOUD = textwrap.dedent('''\
    #!{python}
    """Stands in for gcloud: logs argv as JSON lines, answers describe/ssh/scp like the real one."""
    import json, os, shutil, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_GCLOUD_LOG"], "a") as f:
        f.write(json.dumps(args) + "\\n")
    flags = dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)
    if "--format=json" in args:
        print(json.dumps({{"networkEndpoints": [{{"ipAddress": "10.0.0.%d" % i}}
                                               for i in range(int(os.environ.get("FAKE_WORKERS", "1")))]}}))
    elif any(a.startswith("--format=value(") for a in args):
        states = os.environ["FAKE_STATES"].split(",")
        counter = os.environ["FAKE_GCLOUD_LOG"] + ".polls"
        n = int(open(counter).read()) if os.path.exists(counter) else 0
        open(counter, "w").write(str(n + 1))
        print(states[min(n, len(states) - 1)])
    elif "ssh" in args:
        worker = flags.get("--worker")
        print("worker %s ran: %s" % (worker, flags["--command"]))
        sys.exit(3 if worker == os.environ.get("FAKE_FAIL_WORKER") else 0)
    elif "scp" in args:
        shutil.copy(args[args.index("scp") + 1], os.environ["FAKE_SCP_COPY"])
    ''')


def run_cli(module: str, *args: str, env: dict | None = None, timeout: float = 120):
    """`python -m launch.<module> args...` from the repository root."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", f"launch.{module}", *args],
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def fake_gcloud(tmp_path):
    """(path of a fake gcloud, env for it, function returning the argv lists it was called with)."""
    path = tmp_path / "bin" / "gcloud"
    path.parent.mkdir()
    path.write_text(FAKE_GCLOUD.format(python=sys.executable))
    path.chmod(0o755)
    log = tmp_path / "gcloud_calls.jsonl"
    env = {"FAKE_GCLOUD_LOG": str(log), "FAKE_SCP_COPY": str(tmp_path / "scp_copy.tar.gz")}

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return str(path), env, calls


def commands(stdout: str) -> list[str]:
    """The commands a launch CLI printed (lines starting with '+ ')."""
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


FAKE_TRAIN = REPO_ROOT / "tests" / "launch" / "fake_train.py"


def write_sweep_config(path: pathlib.Path, root: pathlib.Path, command=None, **fields) -> str:
    """A sweep config file for tests; `command` defaults to the fake train command."""
    command = command or (
        "{python}",
        str(FAKE_TRAIN),
        "--config={train_config}:{task},{method},{student},{seed}",
        "--workdir={workdir}",
    )
    values = dict(
        name="test",
        root=str(root),
        train_config="paper",
        max_attempts=2,
        parallel=1,
        tasks=("multiarith",),
        students=("gpt2",),
        methods=("ft_cot",),
        num_rationales=(1,),
        seeds=(0,),
        grids=[],
        overrides={},
        command=command,
        extra_fields=("fake_steps", "fake_step_seconds", "fake_fail"),  # flags only the fake train command has
    )
    values.update(fields)
    body = "\n".join(f"    c.{k} = {v!r}" for k, v in values.items())
    path.write_text(
        f"import ml_collections\n\n\ndef get_config():\n    c = ml_collections.ConfigDict()\n{body}\n    return c\n"
    )
    return str(path)


def starts(run_dir: pathlib.Path) -> list[int]:
    """The checkpoint step each start of the fake train command began at."""
    path = run_dir / "starts.txt"
    return [int(s) for s in path.read_text().split()] if path.exists() else []


TASKS = ("multiarith", "single_eq")  # of the tiny real sweeps


class OracleTeacher:
    """A teacher backend that knows the gold answers: its rationales end in the right answer,
    so Fine-tune-CoT's correctness filter keeps them (test stand-in for the large teacher)."""

    def __init__(self, examples):
        self.answers = {ex.question.strip(): ex.answer for ex in examples}

    def complete(self, prompts, max_tokens, temperature, seed=None):
        from rt_jax.teacher.backends import Completion
        from rt_jax.teacher.generate import COT_TRIGGER

        out = []
        for prompt in prompts:
            gold = self.answers[prompt[len("Q: ") : prompt.index("\nA: ")]]
            text = f" Counting it all, we get {gold}." if prompt.endswith(COT_TRIGGER) else f" {gold}."
            out.append(Completion(text, "stop"))
        return out


def make_tiny_setup(out, data_dir):
    """A teacher cache for the training questions of TASKS (greedy + 2 samples at temperature
    0.7) and a from-scratch 1-layer byte-level GPT-2."""
    from rt_jax import configs, demo
    from rt_jax.tasks import load_dataset, load_split
    from rt_jax.teacher.generate import generate_rationales
    from rt_jax.teacher.store import RationaleStore

    store = RationaleStore(out / "teacher_cache")
    for task in TASKS:
        examples = load_dataset(task, data_dir).select(load_split(task, data_dir).train)
        for temperature, count in ((0.0, 1), (0.7, 2)):
            generate_rationales(
                store, OracleTeacher(examples), task, examples, "oracle", count, temperature, progress=False
            )
    cfg = configs.load("demo:ft_cot")
    d = cfg.demo
    d.n_layer, d.n_embd, d.n_head, d.n_positions = 1, 32, 2, 512
    return demo.make_student(cfg, out)
