"""Diverse reasoning: Fine-tune-CoT with D = 1, 2, 4, 8, 16, 32, 64 teacher samples per training
question (temperature 0.7), for every open-source student, on four tasks, seed 0.

  python -m launch.sweep --sweep=sweeps/diverse_reasoning \
      --sweep.root=gs://BUCKET/sweeps/diverse --sweep.tasks="('multiarith','svamp')"
"""

import ml_collections

from rt_jax.configs.sweeps.paper import STUDENTS  # the open-source students of the paper's appendix tables


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "diverse_reasoning"
    c.root = "workdirs/sweeps/diverse_reasoning"  # gs://bucket/path on Cloud TPU
    c.train_config = "paper"  # run config (packaged name or file): <config>:<task>,<method>,<student>,<seed>
    c.max_attempts = 2
    c.parallel = 1
    c.tasks = ("multiarith", "svamp", "date_understanding", "last_letter_concatenation")
    c.students = STUDENTS
    c.methods = ("ft_cot_t70_{D}aug",)
    c.num_rationales = (1, 2, 4, 8, 16, 32, 64)
    c.seeds = (0,)
    c.grids = []
    c.overrides = {}
    return c
