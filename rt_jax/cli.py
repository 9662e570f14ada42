"""Running absl apps so that user errors print one line and no traceback."""
import sys
from typing import Callable, Sequence

from absl import app

from rt_jax.errors import UserError


def run_main(main: Callable[[Sequence[str]], int | None]) -> None:
    """absl's app.run, with UserError turned into `error: <message>` and exit status 2."""

    def guarded(argv):
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    try:
        app.run(guarded)
    except app.UsageError as e:  # unknown or malformed flags
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
