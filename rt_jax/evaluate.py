"""`python -m rt_jax.evaluate`: decode and score a student without training it (the command of
rt_jax.evaluation.command; its docstring has the examples)."""

from rt_jax.cli import run_main
from rt_jax.evaluation.command import define_flags, main


def run() -> None:
    run_main(main, define_flags)


if __name__ == "__main__":
    run()
