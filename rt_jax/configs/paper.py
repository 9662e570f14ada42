"""One run of the paper's grid: `--config=paper:<task>,<method>,<student>` (this file, packaged).

    python -m rt_jax.train --config=paper:multiarith,ft_cot_t70_8aug,gpt2-medium \\
        --config.teacher_cache_dir=cache --workdir=runs/multiarith-d8-gpt2m

Keys are accepted too (`task=multiarith,method=ft,student=t5-base,seed=1`). Hyperparameters
come from base.py (shared), students.py (per student) and methods.py (per method), in that
order; `--config.x=y` flags override last.
"""

from rt_jax import methods
from rt_jax.configs import base, students
from rt_jax.configs import methods as method_overrides
from rt_jax.errors import UserError

FIELDS = ("task", "method", "student", "seed")
DEFAULTS = {"task": "multiarith", "method": "ft_cot", "student": "gpt2", "seed": "0"}


def known_tasks() -> tuple[str, ...]:
    from rt_jax.tasks import TASKS

    return tuple(TASKS)  # the demo's synthetic task has its own config, demo.py


def parse_arg(arg: str | None) -> dict[str, str]:
    """'multiarith,ft_cot,gpt2' or 'task=multiarith,method=ft_cot' -> {field: value}."""
    values = dict(DEFAULTS)
    for i, part in enumerate(p.strip() for p in (arg or "").split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep:
            if i >= len(FIELDS):
                raise UserError(f"--config=paper:{arg}: too many values; expected {','.join(FIELDS)}")
            key, value = FIELDS[i], part
        if key not in FIELDS:
            raise UserError(f"--config=paper:{arg}: unknown key {key!r}; expected one of {', '.join(FIELDS)}")
        values[key] = value
    return values


def validate(task: str, method: str, student: str) -> None:
    if task not in known_tasks():
        raise UserError(f"unknown task {task!r}; expected one of: {', '.join(known_tasks())}")
    methods.parse(method)  # a UserError listing the grammar
    if student not in students.OVERRIDES:
        raise UserError(f"unknown student {student!r}; expected one of: {', '.join(students.OVERRIDES)}")


def apply(config, pairs) -> None:
    """Set dotted keys ('train.batch_size') on a ConfigDict, adding fields base.py lacks."""
    for dotted, value in pairs:
        *parents, leaf = dotted.split(".")
        node = config
        for name in parents:
            node = node[name]
        node[leaf] = value


def get_config(arg: str | None = None):
    values = parse_arg(arg)
    task, method, student = values["task"], values["method"], values["student"]
    validate(task, method, student)
    try:
        seed = int(values["seed"])
    except ValueError:
        raise UserError(f"--config=paper:{arg}: seed {values['seed']!r} is not an integer") from None
    c = base.get_config()
    c.task, c.method, c.student, c.seed = task, method, student, seed
    apply(c, students.OVERRIDES[student])
    apply(c, method_overrides.overrides(method))
    return c
