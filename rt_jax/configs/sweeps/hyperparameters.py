"""Learning rate x batch size for Fine-tune-CoT on the open students (the paper's default is
3e-4 x 8), and the longest teacher rationale trained on (max_rationale_tokens; 0: no limit).

  python -m launch.sweep --sweep=sweeps/hyperparameters --sweep.root=gs://BUCKET/sweeps/hparams
"""

from rt_jax.configs.sweeps.ablations import base


def get_config():
    return base(
        "hyperparameters",
        methods=("ft_cot",),
        grids=[
            {"axes": {"train": {"learning_rate": (1e-4, 3e-4, 1e-3), "batch_size": (8, 16, 32)}}},
            {"axes": {"max_rationale_tokens": (32, 64, 0)}},
        ],
    )
