"""Sweep grids: expand tasks x students x methods x D x seeds into runs with stable names.

A sweep config (configs/sweeps/*.py, `get_config()`) holds:
  name, root (sweep directory; gs:// works), train_config, max_attempts, parallel,
  tasks, students, methods, num_rationales, seeds   -- the default axes
  grids            -- optional list of dicts overriding some axes; the sweep is the union of
                      their products (empty: one grid made of the default axes)
  overrides        -- {config field: value} passed to every run as --config.<field>=<value>
  student_paths    -- {student name: local checkpoint dir} for students outside the registry
  commands         -- {method or "default": argv template}; fields in braces are filled per run

A method containing `{D}` (e.g. `ft_cot_t70_{D}aug`) is expanded once per D in num_rationales;
other methods ignore the D axis (it is 1 for them).
"""
import dataclasses
import itertools
import re
import sys

from rt_jax.errors import UserError

DEFAULT_COMMAND = ("{python}", "-m", "rt_jax.train", "--config={train_config}",
                   "--config.task={task}", "--config.student={student}", "--config.method={method}",
                   "--config.num_rationales={num_rationales}", "--config.seed={seed}",
                   "--workdir={workdir}")
AXES = ("tasks", "students", "methods", "num_rationales", "seeds")


@dataclasses.dataclass(frozen=True)
class Run:
    task: str
    student: str
    method: str
    num_rationales: int
    seed: int
    overrides: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        """Stable directory name; the same run always gets the same workdir."""
        return f"{self.task}__{self.student}__{self.method}__D{self.num_rationales}__seed{self.seed}"


def known_tasks() -> set[str]:
    from rt_jax.tasks import TASKS
    from rt_jax.tasks.synthetic import TASK_NAME
    return set(TASKS) | {TASK_NAME}


def known_students() -> set[str]:
    from rt_jax.paper_results import STUDENT_SIZES
    return set(STUDENT_SIZES)


def _as_tuple(value, field: str) -> tuple:
    if isinstance(value, (str, int)):
        return (value,)
    if not value:
        raise UserError(f"sweep config: {field} is empty; expected at least one value")
    return tuple(value)


def expand(cfg) -> list[Run]:
    """All runs of the sweep config, deduplicated, in grid order. Unknown tasks and students
    raise a UserError before anything is started."""
    tasks_ok, students_ok = known_tasks(), known_students() | set(cfg.get("student_paths", {}))
    grids = list(cfg.get("grids", None) or [{}])
    overrides = tuple(sorted((str(k), str(v)) for k, v in dict(cfg.get("overrides", {})).items()))
    runs: dict[str, Run] = {}
    for g, grid in enumerate(grids):
        unknown_keys = set(grid) - set(AXES) - {"overrides"}
        if unknown_keys:
            raise UserError(f"sweep config: grids[{g}] has unknown keys {sorted(unknown_keys)}; "
                            f"expected some of {AXES + ('overrides',)}")
        axes = {a: _as_tuple(grid.get(a, cfg.get(a)), f"grids[{g}].{a}") for a in AXES}
        extra = overrides + tuple(sorted((str(k), str(v))
                                         for k, v in dict(grid.get("overrides", {})).items()))
        for task in axes["tasks"]:
            if task not in tasks_ok:
                raise UserError(f"sweep config: grids[{g}]: unknown task {task!r}; expected one "
                                f"of {', '.join(sorted(tasks_ok))}")
        for student in axes["students"]:
            if student not in students_ok:
                raise UserError(f"sweep config: grids[{g}]: unknown student {student!r}; expected "
                                f"one of {', '.join(sorted(students_ok))} or an entry of student_paths")
        for d in axes["num_rationales"]:
            if not isinstance(d, int) or d < 1:
                raise UserError(f"sweep config: grids[{g}]: num_rationales {d!r}; expected "
                                "positive integers")
        for task, student, method, seed in itertools.product(
                axes["tasks"], axes["students"], axes["methods"], axes["seeds"]):
            degrees = axes["num_rationales"] if "{D}" in method else (1,)
            for d in degrees:
                run = Run(task, student, method.replace("{D}", str(d)), d, int(seed), extra)
                runs.setdefault(run.name, run)
    return list(runs.values())


def command_for(run: Run, cfg, workdir: str) -> list[str]:
    """The argv that trains (or evaluates) one run, from the config's command templates."""
    commands = dict(cfg.get("commands", {}))
    template = None
    for method, argv in commands.items():  # a method's own template wins over the default
        if method != "default" and re.fullmatch(method.replace("{D}", r"\d+"), run.method):
            template = argv
    template = template or commands.get("default") or DEFAULT_COMMAND
    fields = dict(python=sys.executable, train_config=cfg.train_config, task=run.task,
                  student=run.student, method=run.method, num_rationales=run.num_rationales,
                  seed=run.seed, workdir=workdir, name=run.name)
    try:
        argv = [str(part).format(**fields) for part in template]
    except KeyError as e:
        raise UserError(f"sweep config: command template uses unknown field {e}; "
                        f"expected some of {sorted(fields)}") from None
    paths = dict(cfg.get("student_paths", {}))
    if run.student in paths:
        argv.append(f"--config.model_path={paths[run.student]}")
    argv += [f"--config.{k}={v}" for k, v in run.overrides]
    return argv
