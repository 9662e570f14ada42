"""Every command's persistent compilation cache (rt_jax/cli.py): a second identical run compiles
nothing; a folder that cannot be written is a one-line warning and the run goes on."""

import os
import subprocess
import sys

# A command through run_main that compiles one program and prints how many programs XLA compiled.
COMMAND = """
import jax, jax.numpy as jnp
from rt_jax import cli
events = []  # a cache hit is timed as a backend compile too: compiles = those minus the hits
jax.monitoring.register_event_duration_secs_listener(lambda event, seconds, **kw: events.append(event))
jax.monitoring.register_event_listener(lambda event, **kw: events.append(event))
def main(argv):
    if OVERRIDE is not None:  # what a command's own flag does (rt_jax.train --compilation_cache_dir)
        cli.enable_compilation_cache(OVERRIDE)
    total = int(jax.jit(lambda x: (x * 3).sum())(jnp.arange(5)))
    compiles = sum("backend_compile" in e for e in events) - events.count("/jax/compilation_cache/cache_hits")
    print("sum", total, "compiles", compiles)
cli.run_main(main)
"""


def _run(cache, override=None):
    env = dict(os.environ, RT_JAX_COMPILATION_CACHE=str(cache), JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
    command = f"OVERRIDE = {override!r}\n" + COMMAND
    return subprocess.run([sys.executable, "-c", command], env=env, capture_output=True, text=True, timeout=300)


def test_second_identical_run_compiles_nothing(tmp_path):
    first, second = _run(tmp_path / "cache"), _run(tmp_path / "cache")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split()[:2] == ["sum", "30"] and int(first.stdout.split()[3]) >= 1
    assert second.stdout.split() == ["sum", "30", "compiles", "0"]
    assert any((tmp_path / "cache").iterdir())


def test_unwritable_cache_folder_warns_and_runs_on(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = _run(blocker / "cache")
    assert out.returncode == 0 and out.stdout.startswith("sum 30")
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning: compilation cache")]
    assert len(warnings) == 1 and "cannot be written" in warnings[0]
    off = _run("off")
    assert off.returncode == 0 and "warning" not in off.stderr and not (tmp_path / "off").exists()


def test_a_command_flag_overrides_the_default_folder_or_turns_it_off(tmp_path):
    default, chosen = tmp_path / "default", tmp_path / "chosen"
    first, second = _run(default, override=str(chosen)), _run(default, override=str(chosen))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert second.stdout.split() == ["sum", "30", "compiles", "0"]
    assert any(chosen.iterdir()) and not (default.exists() and any(default.iterdir()))
    off = _run(default, override="off")
    assert off.returncode == 0 and int(off.stdout.split()[3]) >= 1
    assert not (default.exists() and any(default.iterdir()))
