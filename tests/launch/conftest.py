"""Fixtures of the launch tests (see launch_helpers.py)."""

from launch_helpers import fake_gcloud  # noqa: F401
