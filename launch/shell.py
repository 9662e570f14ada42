"""Printing and running external commands (gcloud, ssh, tar), with a dry-run mode.

Every command is printed as `+ <shell-quoted argv>` before it runs, so a user can see (and
copy) exactly what the launcher does; in dry-run mode it is only printed.
"""

import os
import shlex
import shutil
import subprocess
import sys
from typing import Sequence

from rt_jax.errors import UserError


def find_binary(name_or_path: str, flag: str = "--gcloud") -> str:
    """Absolute path of an executable, or a UserError saying how to get it."""
    found = shutil.which(name_or_path)
    if found is None:
        raise UserError(
            f"{flag}={name_or_path}: executable not found; install the Google Cloud CLI "
            "(https://cloud.google.com/sdk/docs/install) or pass its path with " + flag
        )
    return found


class Shell:
    """Runs argv lists after printing them; in dry-run mode only prints them."""

    def __init__(self, dry_run: bool, out=None):
        self.dry_run = dry_run
        self.out = out or sys.stdout

    def show(self, argv: Sequence[str], log_path: str | None = None) -> None:
        line = "+ " + shlex.join(argv)
        if log_path:
            line += f"  > {log_path} 2>&1"
        print(line, file=self.out, flush=True)

    def run(self, argv: Sequence[str], check: bool = True, capture: bool = False) -> str:
        """Runs argv in the foreground; returns its stdout when capture is set."""
        self.show(argv)
        if self.dry_run:
            return ""
        done = subprocess.run(list(argv), stdout=subprocess.PIPE if capture else None, text=True)
        if check and done.returncode != 0:
            raise UserError(f"command failed with exit status {done.returncode}: {shlex.join(argv)}")
        return done.stdout or ""

    def run_parallel(self, commands: Sequence[tuple[Sequence[str], str]]) -> list[int]:
        """Runs (argv, log_path) pairs at the same time, each writing to its own log file;
        returns their exit statuses in order."""
        for argv, log_path in commands:
            self.show(argv, log_path)
        if self.dry_run:
            return [0] * len(commands)
        procs = []
        for argv, log_path in commands:
            os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
            with open(log_path, "wb") as log:
                procs.append(subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT))
        return [p.wait() for p in procs]
