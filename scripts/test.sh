#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine, then runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --upgrade pip
# torch is the reference in parity tests; pin the CPU build that lies on this machine's disk.
python3 -m pip install -q "torch==2.13.0"
python3 -m pip install -q -e ".[test]"
# Lint and format are part of the suite (pyproject.toml [tool.ruff]): a lint error fails the run.
python3 -m ruff check --quiet .
python3 -m ruff format --check --quiet .
python3 -m pytest -q "$@"
