"""Sweep grids: expand tasks x students x methods x D x seeds x ablation axes into runs whose
names carry their whole identity.

A sweep config (rt_jax/configs/sweeps/*.py, `get_config()`) holds:
  name, root (sweep directory; gs:// works), train_config, max_attempts, parallel,
  tasks, students, methods, num_rationales, seeds   -- the default axes
  axes      -- optional {config field: values}: ablation axes (learning rate, batch size, teacher,
               training-set size, rationale filter, ...); every combination is a run
  grids     -- optional list of dicts overriding some axes (and `overrides`, `axes`);
               the sweep is the union of their products (empty: one grid of the default axes)
  overrides -- {config field: value} passed to every run as --config.<field>=<value>; nested
               dicts name nested fields ({"train": {"batch_size": 16}})
  extra_fields -- optional: override fields a custom `command` accepts beyond the run config's
  command   -- optional argv template; fields in braces are filled per run
  report_command -- optional argv template run when every run is done

A method containing `{D}` (e.g. `ft_cot_t70_{D}aug`, rt_jax.methods) is expanded once per D
in num_rationales; other methods ignore the D axis. Tasks, students and methods are checked with
the same rules as the train command's paper config, and every override field against the run
config (an unknown field is named with its grid), before anything starts.

Run name: `<task>__<student>__<method>__seed<k>`, then `__` and the overrides that differ from
the run config's own values, readably (`train.learning_rate=0.0001+train.batch_size=16`), or
`h<10 hex>` (a stable hash of them) when that would be long or not a plain file name. Run control
overrides (rt_jax.run_dir.RUN_CONTROL: max_steps, logging, checkpointing) are passed on but are
no part of the name, nor are LOCATIONS (data_dir, teacher_cache_dir: recorded in the index).
Runs that differ in any other override get different names; identical ones are planned once.
The sweep root's `sweep_runs.json` (INDEX_FILE) maps every name to its identity (`check_index`).
"""

import dataclasses
import functools
import hashlib
import itertools
import json
import re
import sys

from rt_jax import run_dir
from rt_jax.errors import UserError

DEFAULT_COMMAND = (
    "{python}",
    "-m",
    "rt_jax.train",
    "--config={train_config}:{task},{method},{student},{seed}",
    "--workdir={workdir}",
)
AXES = ("tasks", "students", "methods", "num_rationales", "seeds")
GRID_KEYS = AXES + ("overrides", "axes")
INDEX_FILE = "sweep_runs.json"
_PLAIN = re.compile(r"[A-Za-z0-9._=+-]+")
_MAX_READABLE = 80  # longer override suffixes become a hash
# Where a run's inputs are, not what they are: recorded in sweep_runs.json, not in the name.
LOCATIONS = ("data_dir", "teacher_cache_dir")


@dataclasses.dataclass(frozen=True)
class Run:
    task: str
    student: str
    method: str
    seed: int
    overrides: tuple[tuple[str, str], ...] = ()  # (dotted field, value), sorted, non-default only
    control: tuple[tuple[str, str], ...] = ()  # run control overrides (run_dir.RUN_CONTROL): not identity

    @property
    def name(self) -> str:
        """Stable directory name: the same run always gets the same workdir, and runs with
        other overrides another one."""
        base = f"{self.task}__{self.student}__{self.method}__seed{self.seed}"
        named = tuple(kv for kv in self.overrides if kv[0] not in LOCATIONS)
        if not named:
            return base
        readable = "+".join(f"{k}={v}" for k, v in named)
        if len(readable) <= _MAX_READABLE and _PLAIN.fullmatch(readable):
            return f"{base}__{readable}"
        digest = hashlib.sha256(json.dumps(named).encode()).hexdigest()[:10]
        return f"{base}__h{digest}"

    def identity(self, train_config: str) -> dict:
        """What sweep_runs.json records of this run."""
        return dict(
            train_config=str(train_config),
            task=self.task,
            student=self.student,
            method=self.method,
            seed=self.seed,
            overrides=dict(self.overrides),
        )


def _validate(task: str, method: str, student: str) -> None:
    from rt_jax.configs import paper  # the train command's own checks, so the sweep agrees with it

    paper.validate(task, method, student)


def _axis(value, where: str) -> tuple:
    values = (value,) if isinstance(value, (str, int, float)) else tuple(value or ())
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


def _ablation_axes(mapping, where: str) -> list[tuple[str, tuple]]:
    """{field: values} (nested dicts allowed) -> [(dotted field, values)]."""
    out = []
    for key, values in dict(mapping or {}).items():
        if hasattr(values, "items"):
            out += [(f"{key}.{k}", v) for k, v in _ablation_axes(values, f"{where}.{key}")]
        else:
            out.append((key, tuple(str(v) for v in _axis(values, f"{where}.{key}"))))
    return out


def _run_config_fields(train_config: str, task: str, method: str, student: str, first_task: str) -> dict:
    """The run config's fields (dotted) -> value, loaded once per (method, student): the
    paper's run configs differ by task in the task only."""
    fields = dict(_fields_of(train_config, method, student, first_task))
    fields["task"] = task
    return fields


@functools.lru_cache(maxsize=None)
def _fields_of(train_config: str, method: str, student: str, task: str) -> dict:
    from rt_jax import configs

    return run_dir._flat(run_dir._as_json(configs.load(f"{train_config}:{task},{method},{student},0")))


def _own_teacher_method(method: str) -> str | None:
    """The teacher-cache method `method` reads when teacher_method is empty (rt_jax.methods)."""
    from rt_jax import methods

    source = methods.rationale_source(method, "")
    return source.teacher_method if source else None


def _seed(value, g: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(f"sweep config: grids[{g}]: seed {value!r} is not an integer") from None


def _same_value(default, text: str) -> bool:
    if isinstance(default, bool):
        return text.strip().lower() in (("true", "1") if default else ("false", "0"))
    if isinstance(default, (int, float)):
        try:
            return float(text) == float(default)
        except ValueError:
            return False
    return str(default) == text


def _effective(overrides: dict, fields: dict, extra: set, where: str) -> tuple[tuple[str, str], ...]:
    """The overrides that change the run config (unknown fields refused, defaults dropped)."""
    out = []
    for key, value in sorted(overrides.items()):
        if key in extra:
            out.append((key, value))
        elif key not in fields:
            close = [f for f in fields if f.rsplit(".", 1)[-1][:4] == key.rsplit(".", 1)[-1][:4]][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UserError(f"sweep config: {where}: field {key!r} is not in the run config{hint}")
        elif not _same_value(fields[key], value):
            out.append((key, value))
    return tuple(out)


def expand(cfg) -> list[Run]:
    """All runs of the sweep config, deduplicated, in grid order. An unknown task, student,
    method or override field raises a UserError naming the grid."""
    grids = list(cfg.get("grids", None) or [{}])
    common = dict(_overrides(cfg.get("overrides", None)))
    extra = set(cfg.get("extra_fields", None) or ())
    runs: dict[str, Run] = {}
    for g, grid in enumerate(grids):
        unknown = set(grid) - set(GRID_KEYS)
        if unknown:
            raise UserError(
                f"sweep config: grids[{g}] has unknown keys {sorted(unknown)}; expected some of {', '.join(GRID_KEYS)}"
            )
        axes = {a: _axis(grid.get(a, cfg.get(a, None)), f"grids[{g}].{a}") for a in AXES}
        for d in axes["num_rationales"]:
            if not isinstance(d, int) or d < 1:
                raise UserError(f"sweep config: grids[{g}].num_rationales has {d!r}; expected positive integers")
        fixed = {**common, **dict(_overrides(grid.get("overrides")))}
        ablations = _ablation_axes(grid.get("axes", cfg.get("axes", None)), f"grids[{g}].axes")
        combos = [dict(zip([k for k, _ in ablations], c)) for c in itertools.product(*[v for _, v in ablations])]
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
                fields = _run_config_fields(cfg.train_config, task, name, student, axes["tasks"][0])
                own = _own_teacher_method(name)
                for combo in combos:
                    chosen = {**fixed, **combo}
                    run_seed = _seed(chosen.pop("seed", seed), g)
                    named = sorted(set(chosen) & {"task", "student", "method"})
                    if named:
                        raise UserError(f"sweep config: grids[{g}]: override {named[0]!r}; use the {named[0]}s axis")
                    if own and chosen.get("teacher_method") == own:  # what the empty default means
                        del chosen["teacher_method"]
                    changed = _effective(chosen, fields, extra, f"grids[{g}]")
                    control = tuple(kv for kv in changed if kv[0] in run_dir.RUN_CONTROL)
                    identity = tuple(kv for kv in changed if kv[0] not in run_dir.RUN_CONTROL)
                    run = Run(task, student, name, run_seed, identity, control)
                    runs.setdefault(run.name, run)
    return list(runs.values())


def check_index(index: dict | None, runs: list[Run], train_config: str, root) -> dict:
    """sweep_runs.json's content with `runs` added; a UserError when an earlier sweep in this
    root recorded one of these names with another identity."""
    known = dict((index or {}).get("runs") or {})
    for run in runs:
        mine, theirs = run.identity(train_config), known.get(run.name)
        if theirs is not None and theirs != mine:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise UserError(
                f"{root}/{INDEX_FILE}: run {run.name} was planned there by an earlier sweep with another "
                f"config (differs in {', '.join(diff)}); use a new sweep root"
            )
        known[run.name] = mine
    return {"runs": known}


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
    return argv + [f"--config.{k}={v}" for k, v in sorted(run.overrides + run.control)]
