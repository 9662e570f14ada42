"""Rationale filtering: correct rationales only (the paper's default), all rationales with the
teacher's own answer, none filtered with the gold answer (rt_jax.teacher.select), for
Fine-tune-CoT and diverse reasoning (D=8) on the open students.

  python -m launch.sweep --sweep=sweeps/rationale_filter --sweep.root=gs://BUCKET/sweeps/filter
"""

from rt_jax.configs.sweeps.ablations import base


def get_config():
    return base("rationale_filter", axes={"rationale_filter": ("correct", "all", "none_gold")})
