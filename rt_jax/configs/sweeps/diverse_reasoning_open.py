"""Diverse reasoning on the open students: D = 1, 2, 4, 8, 16, 32, 64 (as sweeps/diverse_reasoning
for the paper's students), plus vanilla fine-tuning and Fine-tune-CoT as the plot's reference lines.

  python -m launch.sweep --sweep=sweeps/diverse_reasoning_open --sweep.root=gs://BUCKET/sweeps/diverse_open
"""

from rt_jax.configs.sweeps.ablations import base


def get_config():
    return base(
        "diverse_reasoning_open",
        methods=("ft", "ft_cot", "ft_cot_t70_{D}aug"),
        num_rationales=(1, 2, 4, 8, 16, 32, 64),
    )
