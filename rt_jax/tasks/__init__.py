"""The 12 reasoning tasks of Fine-tune-CoT: unified datasets, paper splits, answer scoring.

from rt_jax.tasks import TASKS, load_dataset, load_split, score
ds = load_dataset("multiarith", "../shared/data")
split = load_split("multiarith", "../shared/data")
ds[split.test[0]].question
"""

from rt_jax.tasks.dataset import Dataset, Example, load_dataset
from rt_jax.tasks.registry import TASK_INFO, TASKS, TaskInfo, task_info
from rt_jax.tasks.scoring import Score, extract_candidates, kojima_cleanse, kojima_gold, score
from rt_jax.tasks.splits import Split, load_split, random_split, subsample

__all__ = [
    "TASKS",
    "TASK_INFO",
    "TaskInfo",
    "task_info",
    "Example",
    "Dataset",
    "load_dataset",
    "Split",
    "load_split",
    "random_split",
    "subsample",
    "Score",
    "score",
    "extract_candidates",
    "kojima_cleanse",
    "kojima_gold",
]
