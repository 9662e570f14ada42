"""The reliability tests reuse the training tests' tiny student and the teacher tests' loopback
OpenAI server."""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
for folder in ("train", "teacher"):
    if str(HERE.parent / folder) not in sys.path:
        sys.path.insert(0, str(HERE.parent / folder))
