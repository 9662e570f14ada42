"""Helpers of the teacher tests: the command line as a subprocess, and its flags for the loopback server."""

import os
import subprocess
import sys


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "rt_jax.teacher", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def http_args(action, url, cache_dir, data_dir, *more):
    """`action` of the http backend on coin_flip, D = 2 at temperature 0.7, key in $RT_KEY."""
    return [
        action,
        "--backend=http",
        f"--url={url}",
        "--model=fake",
        "--teacher=fake-teacher",
        "--api_key_env=RT_KEY",
        f"--cache_dir={cache_dir}",
        f"--data_dir={data_dir}",
        "--tasks=coin_flip",
        "--temperature=0.7",
        "--num_completions=2",
        *more,
    ]
