"""The paper's full grid for open-source students (Fine-tune-CoT appendix tables).

12 tasks x 9 students (GPT-2 124M/355M/774M, T5 and Flan-T5 60M/220M/700M) x
{zs, fs_cot (prompting baselines: evaluated, 0 epochs), ft, ft_cot, diverse ft_cot}, seed 0.
Diverse reasoning uses D=64 on multiarith and svamp and D=8 on six other tasks; the paper has
no diverse entry for gsm8k, aqua and commonsense_qa (no teacher samples for their train sets),
and no Few-shot-CoT prompt for tracking_shuffled_objects.

  python -m launch.sweep --sweep=sweeps/paper --sweep.root=gs://BUCKET/sweeps/paper
"""

import ml_collections

TASKS = (
    "single_eq",
    "addsub",
    "multiarith",
    "gsm8k",
    "aqua",
    "svamp",
    "date_understanding",
    "tracking_shuffled_objects",
    "last_letter_concatenation",
    "coin_flip",
    "commonsense_qa",
    "strategy_qa",
)
STUDENTS = (
    "gpt2",
    "gpt2-medium",
    "gpt2-large",
    "t5-small",
    "t5-base",
    "t5-large",
    "flan-t5-small",
    "flan-t5-base",
    "flan-t5-large",
)
DIVERSE_8 = (
    "single_eq",
    "addsub",
    "date_understanding",
    "tracking_shuffled_objects",
    "last_letter_concatenation",
    "coin_flip",
    "strategy_qa",
)


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "paper"
    c.root = "workdirs/sweeps/paper"  # gs://bucket/path on Cloud TPU
    c.train_config = "paper"  # run config (packaged name or file): <config>:<task>,<method>,<student>,<seed>
    c.max_attempts = 2
    c.parallel = 1
    c.tasks = TASKS
    c.students = STUDENTS
    c.methods = ("zs", "ft", "ft_cot")
    c.num_rationales = (1,)
    c.seeds = (0,)
    c.grids = [
        dict(),  # the default axes: zs, ft and ft_cot everywhere
        dict(tasks=tuple(t for t in TASKS if t != "tracking_shuffled_objects"), methods=("fs_cot",)),
        dict(tasks=("multiarith", "svamp"), methods=("ft_cot_t70_{D}aug",), num_rationales=(64,)),
        dict(tasks=DIVERSE_8, methods=("ft_cot_t70_{D}aug",), num_rationales=(8,)),
    ]
    c.overrides = {}
    return c
