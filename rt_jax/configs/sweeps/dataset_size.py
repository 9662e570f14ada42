"""Training-set size (the paper's dataset-size figure): 8, 32, 128 and all training questions
(max_train_examples = 0), nested fixed subsets, for vanilla fine-tuning, Fine-tune-CoT and
diverse reasoning (D=8) on the open students.

  python -m launch.sweep --sweep=sweeps/dataset_size --sweep.root=gs://BUCKET/sweeps/size
"""

from rt_jax.configs.sweeps.ablations import base


def get_config():
    return base(
        "dataset_size", methods=("ft", "ft_cot", "ft_cot_t70_{D}aug"), axes={"max_train_examples": (8, 32, 128, 0)}
    )
