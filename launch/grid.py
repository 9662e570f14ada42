"""Sweep grids: expand tasks x students x methods x D x seeds into runs with stable names.

A sweep config (rt_jax/configs/sweeps/*.py, `get_config()`) holds:
  name, root (sweep directory; gs:// works), train_config, max_attempts, parallel,
  tasks, students, methods, num_rationales, seeds   -- the default axes
  grids     -- optional list of dicts overriding some axes (and `overrides`, field by field);
               the sweep is the union of their products (empty: one grid of the default axes)
  overrides -- {config field: value} passed to every run as --config.<field>=<value>; nested
               dicts name nested fields ({"train": {"batch_size": 16}})
  command   -- optional argv template; fields in braces are filled per run
  report_command -- optional argv template run when every run is done

A method containing `{D}` (e.g. `ft_cot_t70_{D}aug`, rt_jax.methods) is expanded once per D
in num_rationales; other methods ignore the D axis. Tasks, students and methods are checked with
the same rules as the train command's paper config, before anything starts.
"""

import dataclasses
import itertools
import sys

from rt_jax.errors import UserError

DEFAULT_COMMAND = (
    "{python}",
    "-m",
    "rt_jax.train",
    "--config={train_config}:{task},{method},{student},{seed}",
    "--workdir={workdir}",
)
AXES = ("tasks", "students", "methods", "num_rationales", "seeds")


@dataclasses.dataclass(frozen=True)
class Run:
    task: str
    student: str
    method: str
    seed: int
    overrides: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        """Stable directory name: the same run always gets the same workdir."""
        return f"{self.task}__{self.student}__{self.method}__seed{self.seed}"


def _validate(task: str, method: str, student: str) -> None:
    from rt_jax.configs import paper  # the train command's own checks, so the sweep agrees with it

    paper.validate(task, method, student)


def _axis(value, where: str) -> tuple:
    values = (value,) if isinstance(value, (str, int)) else tuple(value or ())
    if not values:
        raise UserError(f"sweep config: {where} is empty; expected at least one value")
    return values


def _overrides(mapping, prefix: str = "") -> tuple[tuple[str, str], ...]:
    """Nested {"train": {"batch_size": 16}} -> (("train.batch_size", "16"),)."""
    pairs = []
    for key, value in dict(mapping or {}).items():
        if hasattr(value, "items"):
            pairs += _overrides(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", str(value)))
    return tuple(sorted(pairs))


def expand(cfg) -> list[Run]:
    """All runs of the sweep config, deduplicated, in grid order. An unknown task, student or
    method raises a UserError naming the grid."""
    grids = list(cfg.get("grids", None) or [{}])
    common = _overrides(cfg.get("overrides", None))
    runs: dict[str, Run] = {}
    for g, grid in enumerate(grids):
        unknown = set(grid) - set(AXES) - {"overrides"}
        if unknown:
            raise UserError(
                f"sweep config: grids[{g}] has unknown keys {sorted(unknown)}; "
                f"expected some of {', '.join(AXES + ('overrides',))}"
            )
        axes = {a: _axis(grid.get(a, cfg.get(a, None)), f"grids[{g}].{a}") for a in AXES}
        for d in axes["num_rationales"]:
            if not isinstance(d, int) or d < 1:
                raise UserError(f"sweep config: grids[{g}].num_rationales has {d!r}; expected positive integers")
        extra = tuple(sorted({**dict(common), **dict(_overrides(grid.get("overrides")))}.items()))
        for task, student, method, seed in itertools.product(
            axes["tasks"], axes["students"], axes["methods"], axes["seeds"]
        ):
            degrees = axes["num_rationales"] if "{D}" in method else (None,)
            for d in degrees:
                name = method.replace("{D}", str(d))
                try:
                    _validate(task, name, student)
                except UserError as e:
                    raise UserError(f"sweep config: grids[{g}]: {e}") from None
                run = Run(task, student, name, int(seed), extra)
                runs.setdefault(run.name, run)
    return list(runs.values())


def command_for(run: Run, cfg, workdir: str) -> list[str]:
    """The argv that runs one run (train, or evaluate only for prompting methods)."""
    template = cfg.get("command", None) or DEFAULT_COMMAND
    fields = dict(
        python=sys.executable,
        train_config=cfg.train_config,
        task=run.task,
        student=run.student,
        method=run.method,
        seed=run.seed,
        workdir=workdir,
        name=run.name,
    )
    try:
        argv = [str(part).format(**fields) for part in template]
    except KeyError as e:
        raise UserError(
            f"sweep config: command template uses unknown field {e}; expected some of {', '.join(sorted(fields))}"
        ) from None
    return argv + [f"--config.{k}={v}" for k, v in run.overrides]
