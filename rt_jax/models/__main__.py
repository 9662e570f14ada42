"""python -m rt_jax.models [names...]: the paper's students with their parameter counts.

One row per student: name, hub id, rt_jax's parameter count (read off the family's tensor table
for the student's config: no weights, no model init) and the published count. Names are checked
before anything is built; an unknown one is a one-line error (exit status 2).
"""

import sys

from rt_jax.cli import run_main
from rt_jax.models import hf, registry

HEADER = f"{'student':<14} {'hub id':<30} {'rt_jax params':>15} {'published':>15}"


def count_table(names) -> list[str]:
    """The header and one line per student."""
    students = [registry.student(name) for name in names]  # UserError for an unknown name
    lines = [HEADER]
    for name, student in zip(names, students):
        ours = hf.param_count(hf.build_module(registry.student_config(name)))
        lines.append(f"{name:<14} {student.hub_id:<30} {ours:>15,} {student.num_params:>15,}")
    return lines


def main(argv) -> None:
    for line in count_table(argv[1:] or list(registry.STUDENTS)):
        print(line)


def run() -> None:
    run_main(main)


if __name__ == "__main__":
    # Only transformers' config classes are used here, and transformers imports torch whenever
    # it is installed (most of this command's time on a loaded 2-core machine): hide it.
    sys.modules.setdefault("torch", None)
    run()
