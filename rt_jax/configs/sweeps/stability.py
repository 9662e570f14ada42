"""Stability: three seeds of vanilla fine-tuning, Fine-tune-CoT and diverse reasoning (D=8) on the
open students; the report shows each cell as mean ± std (n=3).

  python -m launch.sweep --sweep=sweeps/stability --sweep.root=gs://BUCKET/sweeps/stability
"""

from rt_jax.configs.sweeps.ablations import base


def get_config():
    return base("stability", methods=("ft", "ft_cot", "ft_cot_t70_{D}aug"), seeds=(0, 1, 2))
