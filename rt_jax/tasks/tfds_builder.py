"""The 12 tasks as one TFDS builder (a config per task, train/test of the paper's default
split), written as array_record so `tfds.data_source` reads it with no TensorFlow installed:

    import rt_jax.tasks.tfds_builder  # registers "rt_jax_tasks"
    build("multiarith", out_dir, raw_data_dir="../shared/data")
    source = tfds.data_source("rt_jax_tasks/multiarith", data_dir=out_dir)
    source["test"][0]  # {"sample_index": 3, "question": b"...", "answer": b"..."}

Records keep sample_index order. Raw files come from `manual_dir` (the --data_dir folder);
without one, from the rt_jax download cache (fetched and checked on first use)."""

import numpy as np
import tensorflow_datasets as tfds

from rt_jax.tasks.dataset import load_dataset
from rt_jax.tasks.registry import TASKS
from rt_jax.tasks.splits import load_split


class RtJaxTasks(tfds.core.GeneratorBasedBuilder):
    """Fine-tune-CoT's 12 reasoning tasks ({sample_index, question, answer})."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The unified datasets and default splits of Ho et al. (2023)."}
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=task) for task in TASKS]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional: pass DownloadConfig(manual_dir=<folder with raw/ and splits/>); "
        "otherwise the raw files are downloaded into rt_jax's cache."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict(
                {"sample_index": np.int64, "question": tfds.features.Text(), "answer": tfds.features.Text()}
            ),
            disable_shuffling=True,  # records in sample_index order, like the unified dataset
            homepage="https://github.com/itsnamgyu/reasoning-teacher",
        )

    def _raw_dir(self, dl_manager):
        try:
            return dl_manager.manual_dir
        except (AssertionError, ValueError):  # no manual dir given: use the download cache
            return None

    def _split_generators(self, dl_manager):
        raw_dir = self._raw_dir(dl_manager)
        task = self.builder_config.name
        dataset = load_dataset(task, raw_dir, download=raw_dir is None)
        split = load_split(task, raw_dir, download=raw_dir is None)
        parts = {
            name: [dataset[i] for i in indices if i in dataset]
            for name, indices in (("train", split.train), ("test", split.test))
        }
        # A split none of whose examples could be built (AQuA's train without train.json) is left out.
        return {name: self._generate_examples(examples) for name, examples in parts.items() if examples}

    def _generate_examples(self, examples):
        for ex in examples:
            yield ex.sample_index, {"sample_index": ex.sample_index, "question": ex.question, "answer": ex.answer}


def build(task: str, out_dir, raw_data_dir=None) -> RtJaxTasks:
    """Prepares `rt_jax_tasks/<task>` under `out_dir` in array_record format."""
    builder = RtJaxTasks(data_dir=str(out_dir), config=task, file_format="array_record")
    config = tfds.download.DownloadConfig(manual_dir=str(raw_data_dir) if raw_data_dir else None)
    builder.download_and_prepare(download_config=config)
    return builder
