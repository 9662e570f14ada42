"""Import and export of reasoning-teacher's CompletionDataset JSON files (their `completion_data`).

    {"metadata": {"dataset_key", "base_model", "completion_key", "finetune_key", "train_key",
                  "epoch", "prediction_template", ...},
     "data": {"<sample_index>": [{"sample_index", "completion_index", "question", "answer",
              "prompt", "completion", "finish_reason", "reasoning_prompt"?, "reasoning_completion"?,
              "reasoning_finish_reason"?, ...}, ...]}}

For Zero-shot-CoT, "prompt"/"completion" are the answer step and "reasoning_*" the reasoning step.
A file maps to the shard (teacher=base_model, method=completion_key, task=dataset_key). What a
record has no field for (question, answer, unknown keys, the metadata, the key order, which optional
keys were absent) is kept in `extra["rt"]`, so export gives back the same JSON.
"""

from __future__ import annotations

import json
import pathlib

from rt_jax.errors import UserError
from rt_jax.teacher.record import InvalidRecord, Record, check_name
from rt_jax.teacher.store import Conflict, RationaleStore

# reasoning-teacher key -> Record field
_FIELD_OF = {
    "prompt": "answer_prompt",
    "completion": "answer_completion",
    "finish_reason": "answer_finish_reason",
    "reasoning_prompt": "reasoning_prompt",
    "reasoning_completion": "reasoning_completion",
    "reasoning_finish_reason": "reasoning_finish_reason",
}
_OPTIONAL_TEXT = ("reasoning_prompt", "reasoning_completion", "prompt")
_REQUIRED = ("sample_index", "completion_index", "completion")


def _item_record(item: dict, metadata: dict, task: str, answer_of, score) -> Record:
    if not isinstance(item, dict):
        raise InvalidRecord("completion entry is not an object")
    missing = [k for k in _REQUIRED if k not in item]
    if missing:
        raise InvalidRecord(f"missing {missing}")
    fields = {}
    for key, field in _FIELD_OF.items():
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidRecord(f"{key!r} must be a string or null")
        fields[field] = value
    nulls = [k for k in _OPTIONAL_TEXT if k in item and item[k] is None]
    for key in _OPTIONAL_TEXT:
        fields[_FIELD_OF[key]] = fields[_FIELD_OF[key]] or ""
    if not isinstance(item["completion"], str):
        raise InvalidRecord("'completion' must be a string")
    for key in ("sample_index", "completion_index"):
        if type(item[key]) is not int or item[key] < 0:
            raise InvalidRecord(f"{key!r} must be a non-negative integer")
    answer = item["answer"] if isinstance(item.get("answer"), str) else answer_of(item["sample_index"])
    result = score(task, item["completion"], answer)
    rest = {k: v for k, v in item.items() if k not in _FIELD_OF and k not in ("sample_index", "completion_index")}
    absent = [k for k in _FIELD_OF if k not in item]
    extra = {
        "source": "reasoning_teacher",
        "rt": {"metadata": metadata, "keys": list(item), "absent": absent, "nulls": nulls, "fields": rest},
    }
    return Record(
        teacher=metadata["base_model"],
        method=metadata["completion_key"],
        task=task,
        sample_index=item["sample_index"],
        completion_index=item["completion_index"],
        prediction=None if result.prediction is None else str(result.prediction),
        correct=bool(result.correct),
        extra=extra,
        **fields,
    )


def import_rt_file(store: RationaleStore, path, data_dir, problems: list[str]) -> dict:
    """Append every completion of one CompletionDataset file; returns counts."""
    from rt_jax.tasks import TASKS, load_dataset, score

    path = pathlib.Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("metadata"), dict) or not isinstance(raw.get("data"), dict):
        raise UserError(f"{path}: expected a CompletionDataset {{'metadata': {{...}}, 'data': {{...}}}}")
    metadata = raw["metadata"]
    task = metadata.get("dataset_key")
    if task not in TASKS:
        raise UserError(f"{path}: metadata.dataset_key={task!r}; expected one of {', '.join(TASKS)}")
    for key in ("base_model", "completion_key"):
        try:
            check_name(f"metadata.{key}", metadata.get(key))
        except InvalidRecord as e:
            raise UserError(f"{path}: {e}") from None
    dataset = None

    def answer_of(sample_index):
        nonlocal dataset
        dataset = dataset or load_dataset(task, data_dir)
        return dataset[sample_index].answer

    counts = {
        "task": task,
        "teacher": metadata["base_model"],
        "method": metadata["completion_key"],
        "completions": 0,
        "written": 0,
        "already_cached": 0,
        "skipped": 0,
    }
    with store.writer(metadata["base_model"], metadata["completion_key"], task, problems) as writer:
        for sample_key, items in raw["data"].items():
            where = f"{path}: data[{sample_key!r}]"
            if not isinstance(items, list):
                problems.append(f"{where}: expected a list of completions, skipped")
                counts["skipped"] += 1
                continue
            for position, item in enumerate(items):
                counts["completions"] += 1
                try:
                    record = _item_record(item, metadata, task, answer_of, score)
                    if str(record.sample_index) != sample_key:
                        raise InvalidRecord(f"sample_index {record.sample_index} filed under {sample_key!r}")
                    if writer.append(record):
                        counts["written"] += 1
                    else:
                        counts["already_cached"] += 1
                except (InvalidRecord, UserError, Conflict) as e:
                    problems.append(f"{where}[{position}]: {e}, skipped")
                    counts["skipped"] += 1
    return counts


def _export_item(record: Record, question_answer) -> dict:
    rt = record.extra.get("rt")
    values = {"sample_index": record.sample_index, "completion_index": record.completion_index}
    values.update({key: getattr(record, field) for key, field in _FIELD_OF.items()})
    if rt is None:  # a record from elsewhere: reasoning-teacher's zs_cot shape, with the dataset's Q/A
        question, answer = question_answer(record.sample_index)
        return {
            "sample_index": record.sample_index,
            "completion_index": record.completion_index,
            "question": question,
            "answer": answer,
            **{
                k: values[k]
                for k in (
                    "reasoning_prompt",
                    "reasoning_completion",
                    "reasoning_finish_reason",
                    "prompt",
                    "completion",
                    "finish_reason",
                )
            },
        }
    for key in rt["absent"]:
        values.pop(key, None)
    values.update({key: None for key in rt["nulls"]})
    values.update(rt["fields"])
    ordered = {k: values[k] for k in rt["keys"] if k in values}
    ordered.update({k: v for k, v in values.items() if k not in ordered})
    return ordered


def export_rt(
    store: RationaleStore, teacher: str, method: str, task: str, data_dir=None, problems: list[str] | None = None
) -> dict:
    """The CompletionDataset of one shard (completions of a sample in completion_index order)."""
    grouped = store.by_sample(teacher, method, task, problems)
    if not grouped:
        raise UserError(f"{store.shard_path(teacher, method, task)}: no records to export")
    first = next(iter(grouped.values()))[0]
    rt = first.extra.get("rt")
    metadata = (
        rt["metadata"]
        if rt
        else {
            "dataset_key": task,
            "base_model": teacher,
            "completion_key": method,
            "finetune_key": None,
            "train_key": None,
            "epoch": None,
            "prediction_template": "zs_cot",
        }
    )
    dataset = None

    def question_answer(sample_index):
        nonlocal dataset
        if dataset is None:
            from rt_jax.tasks import load_dataset

            dataset = load_dataset(task, data_dir)
        example = dataset[sample_index]
        return example.question, example.answer

    data = {str(s): [_export_item(r, question_answer) for r in recs] for s, recs in grouped.items()}
    return {"metadata": metadata, "data": data}


def write_json_new(path, obj) -> None:
    """Write JSON to a file that must not exist yet (exports never overwrite anything)."""
    path = pathlib.Path(path)
    try:
        with open(path, "x", encoding="utf-8") as f:
            json.dump(obj, f, indent=4, ensure_ascii=False)
    except FileExistsError:
        raise UserError(f"{path}: already exists; choose a new output path") from None
