"""Launch tools: gcloud scripts for TPU VMs and GPU hosts, and the sweep launcher.

Run from the repository root: `python -m launch.vm --help`, `python -m launch.sweep --help`.
"""
