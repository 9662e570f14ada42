"""The TFDS builder: build one task as array_record, read it back through tfds.data_source."""

import pytest
import tensorflow_datasets as tfds

from rt_jax.tasks import load_dataset, load_split
from rt_jax.tasks.tfds_builder import build


@pytest.mark.parametrize("task", ["coin_flip", "aqua"])
def test_data_source_equals_load_dataset(task, data_dir, tmp_path):
    build(task, tmp_path, raw_data_dir=data_dir)
    assert list((tmp_path / "rt_jax_tasks" / task / "1.0.0").glob("*.array_record-*"))
    source = tfds.data_source(f"rt_jax_tasks/{task}", data_dir=str(tmp_path))
    dataset, split = load_dataset(task, data_dir), load_split(task, data_dir)
    expected = {"train": [i for i in split.train if i in dataset], "test": split.test}
    assert set(source) == {name for name, indices in expected.items() if indices}  # aqua: test only
    for name in source:
        records = [source[name][i] for i in range(len(source[name]))]
        assert [r["sample_index"] for r in records] == expected[name]
        for record in records:
            ex = dataset[record["sample_index"]]
            assert (record["question"].decode(), record["answer"].decode()) == (ex.question, ex.answer)
