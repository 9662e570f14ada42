"""The paper's ablations as sweeps over the open students (what they share; each ablation is its
own packaged config beside this file, e.g. sweeps/dataset_size, sweeps/rationale_filter).

An ablation axis is a run config field (`axes = {field: values}`, see launch/grid.py): every
combination is its own run, named by its non-default values, and the report keeps each apart.
"""

import ml_collections

OPEN_STUDENTS = ("smollm2-135m", "qwen2.5-0.5b", "llama-3.2-1b")
TASKS = ("multiarith", "svamp", "date_understanding", "last_letter_concatenation")


def base(name: str, **fields) -> ml_collections.ConfigDict:
    """A sweep of Fine-tune-CoT and diverse reasoning (D=8) on TASKS x OPEN_STUDENTS, seed 0."""
    c = ml_collections.ConfigDict()
    c.name = name
    c.root = f"workdirs/sweeps/{name}"  # gs://bucket/path on Cloud TPU
    c.train_config = "paper"  # run config: <config>:<task>,<method>,<student>,<seed>
    c.max_attempts = 2
    c.parallel = 1
    c.tasks = TASKS
    c.students = OPEN_STUDENTS
    c.methods = ("ft_cot", "ft_cot_t70_{D}aug")
    c.num_rationales = (8,)
    c.seeds = (0,)
    c.grids = []
    c.overrides = {}
    c.axes = {}
    for key, value in fields.items():
        c[key] = value
    return c


def get_config() -> ml_collections.ConfigDict:
    return base("ablations")
