"""Running absl apps so that user errors print one line and no traceback.

One command-line style for every entry point (python -m rt_jax.{data,teacher,train,train.export,
evaluate,report,demo}, launch.{sweep,vm}):

    FLAGS = flags.FLAGS

    def define_flags() -> None:          # the command's flags, defined when it starts
        flags.DEFINE_string("workdir", None, "...")

    def main(argv) -> None:              # reads FLAGS.workdir; bad input raises UserError
        ...

    def run() -> None:                   # the console script and `if __name__ == "__main__"`
        run_main(main, define_flags)

Flags are defined on start, never at import: a command may import another command's module
(evaluate imports train.export, the demo imports the training loop and evaluation) without
two definitions of one flag name clashing in absl's global FLAGS.

Every command keeps JAX's persistent compilation cache in ~/.cache/rt_jax/jax_compilation
(under $XDG_CACHE_HOME when set), so a repeated run loads its compiled programs instead of
compiling them. RT_JAX_COMPILATION_CACHE=DIR puts it elsewhere, RT_JAX_COMPILATION_CACHE=off
turns it off.
"""

import logging
import os
import re
import sys
import tempfile
from typing import Callable, Sequence

from absl import app, flags

from rt_jax import host_memory
from rt_jax.errors import UserError

COMPILATION_CACHE_ENV = "RT_JAX_COMPILATION_CACHE"


def compilation_cache_dir(value: str | None = None) -> str | None:
    """The persistent compilation cache folder of this run (`value`, else $RT_JAX_COMPILATION_CACHE,
    else ~/.cache/rt_jax/jax_compilation), None when turned off."""
    value = (os.environ.get(COMPILATION_CACHE_ENV, "") if value is None else value).strip()
    if value.lower() in ("off", "0", "false", "no", "none"):
        return None
    if value:
        return os.path.expanduser(value)
    return os.path.join(os.path.expanduser(os.environ.get("XDG_CACHE_HOME") or "~/.cache"), "rt_jax", "jax_compilation")


def enable_compilation_cache(value: str | None = None) -> str | None:
    """Points JAX's persistent compilation cache at compilation_cache_dir(value) and caches every
    program, however fast it compiled. A folder that cannot be written: a one-line warning, and
    the run goes on without the cache. Returns the folder in use (None: no cache)."""
    directory = compilation_cache_dir(value)
    if directory is None:
        _set_jax_config({"jax_compilation_cache_dir": None})  # "off" also undoes an earlier call
        return None
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        print(
            f"warning: compilation cache {directory} cannot be written ({reason}); running without it "
            f"(set {COMPILATION_CACHE_ENV}=DIR or off)",
            file=sys.stderr,
        )
        return None
    _set_jax_config({"jax_compilation_cache_dir": directory, "jax_persistent_cache_min_compile_time_secs": 0.0})
    return directory


def _set_jax_config(settings: dict) -> None:
    if "jax" in sys.modules:
        for name, value in settings.items():
            sys.modules["jax"].config.update(name, value)
        return
    # JAX reads these when it is imported: commands that never use it skip the import
    for name, value in settings.items():
        if value is None:
            os.environ.pop(name.upper(), None)
        else:
            os.environ[name.upper()] = str(value)


def run_main(main: Callable[[Sequence[str]], int | None], define_flags: Callable[[], None] | None = None) -> None:
    """Defines the command's flags (`define_flags`), then absl's app.run, with UserError turned
    into `error: <message>` and exit status 2; the host allocator keeps freed memory
    (rt_jax.host_memory) before JAX starts its backend."""
    host_memory.keep_freed_memory()
    enable_compilation_cache()
    # absl logs INFO to stderr; JAX's backend discovery would then report every platform it
    # probes and does not find ("Unable to initialize backend 'tpu'") on each command.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    if define_flags is not None:
        define_flags()

    def guarded(argv):
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    def parse_flags(argv):
        # Config files and --config.x=y overrides are parsed here, before main: their errors
        # (unknown task in a config file, wrong type, unknown field) get one line too.
        try:
            rest = flags.FLAGS(resolve_config_files(argv))
            if "config" in flags.FLAGS and flags.FLAGS["config"].value is not None:
                # ml_collections keeps a failed config load until first use: surface it here
                flags.FLAGS["config"].value.keys()
            return rest
        except (UserError, flags.Error) as e:
            message = str(e)
        except OSError as e:  # a config file that does not exist or cannot be read
            # ml_collections' message spans lines; its last one names the file and the reason
            message = f"--config: {str(e).strip().splitlines()[-1].strip()}"
        except (AttributeError, KeyError) as e:  # ml_collections: override of a field the config lacks
            message = (
                f"unknown config field {str(e).strip(chr(34))} in a --config.* flag; check the config file's fields"
            )
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)

    try:
        app.run(guarded, flags_parser=parse_flags)
    except app.UsageError as e:  # unknown or malformed flags
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def resolve_config_files(argv: Sequence[str]) -> list[str]:
    """argv with the value of every config-file flag (`--config=`, `--sweep=`) made a loadable
    file: packaged configs by short name or old repository path (rt_jax.configs.resolve)."""
    from ml_collections.config_flags.config_flags import ConfigFileFlagParser

    from rt_jax import configs

    names = [n for n in flags.FLAGS if isinstance(flags.FLAGS[n].parser, ConfigFileFlagParser)]
    if not names:
        return list(argv)
    flag = re.compile(rf"--?({'|'.join(map(re.escape, names))})(=.*)?")
    out = list(argv)
    for i in range(1, len(out)):
        if out[i] == "--":  # the rest are arguments, not flags
            break
        match = flag.fullmatch(out[i])
        if match and match.group(2):  # --config=VALUE
            out[i] = f"{out[i][: match.end(1)]}={configs.resolve(match.group(2)[1:], match.group(1))}"
        elif match and i + 1 < len(out):  # --config VALUE
            out[i + 1] = configs.resolve(out[i + 1], match.group(1))
    return out
