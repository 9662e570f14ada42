"""ml_collections config files, shipped with the package: `--config=paper:<task>,<method>,<student>`.

base.py holds the training hyperparameters (the paper's defaults), students.py what differs per
student, methods.py what differs per method, paper.py puts them together for one run of the
paper's grid, demo.py is the offline demo's run; sweeps/ holds the sweep launcher's grids.

Every command's config-file flag (`--config=`, `--sweep=`) takes a file path, or a packaged
config by its short name (`paper:multiarith,ft,gpt2`, `demo:ft`, `sweeps/paper`). The old
repository spelling (`configs/paper.py:...`) still names the packaged file when no such file
exists relative to the working directory. rt_jax.cli resolves these flags before parsing.
"""

import errno
import importlib.util
import os
import pathlib

from rt_jax.errors import UserError

DIR = pathlib.Path(__file__).resolve().parent
_OLD_PREFIX = "configs/"  # the repository's configs/ folder before it moved into the package


def names() -> list[str]:
    """Short names of the packaged config files (those with a get_config)."""
    found = []
    for path in sorted(DIR.rglob("*.py")):
        if not path.name.startswith("_") and "\ndef get_config(" in path.read_text(encoding="utf-8"):
            found.append(path.relative_to(DIR).with_suffix("").as_posix())
    return found


def path(name: str) -> pathlib.Path:
    """The packaged config file `name` (e.g. "paper", "sweeps/paper")."""
    if name not in names():
        raise UserError(f"no packaged config {name!r}; expected one of {', '.join(names())}")
    return DIR / f"{name}.py"


def resolve(spec: str, flag: str = "config") -> str:
    """A config-file flag's value `FILE[:ARG]` with FILE made loadable: unchanged when it is an
    existing file, else the packaged config it names (short name or old `configs/...` path).
    A UserError naming the flag when it is neither."""
    file, sep, arg = spec.partition(":")
    if os.path.isfile(file):
        return spec
    name = file.removeprefix(_OLD_PREFIX).removesuffix(".py")
    if name in names():
        return f"{path(name)}{sep}{arg}"
    if file.endswith(".py") or os.sep in file:  # meant as a path
        raise UserError(f"--{flag}: {FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), file)}")
    raise UserError(
        f"--{flag}={spec}: {file!r} is neither a file nor a packaged config; "
        f"expected a path or one of {', '.join(names())}"
    )


def load(spec: str):
    """The config of `FILE[:ARG]` (as `resolve` finds it): the file's `get_config(ARG)`."""
    file, sep, arg = resolve(spec).partition(":")
    module_spec = importlib.util.spec_from_file_location(f"rt_jax_config_{pathlib.Path(file).stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if sep else module.get_config()
