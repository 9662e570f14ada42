"""Every setting of a run checked at once, before the student or any data loads: training
(`python -m rt_jax.train`) and evaluation (`python -m rt_jax.evaluate`) call `validate_run`
first, so a bad eval setting fails in one line instead of after a training epoch.

The checks that already have a home are called, not repeated: the task (rt_jax.tasks.registry),
the student (rt_jax.student), decoding (rt_jax.decoding.validate through the evaluation's
decode_config), eval.chat_template (rt_jax.evaluation.method.check_chat_template), the mesh
(rt_jax.parallel), the multi-task weight (rt_jax.data.pairs), the schedule and remat names
(rt_jax.train.optim, rt_jax.train.step)."""

from __future__ import annotations

import math

from rt_jax.errors import UserError

DTYPES = ("float32", "bfloat16", "float16")
BAD_CACHE_LINES = ("refuse", "skip")  # config.data.bad_cache_lines (rt_jax.data.pipeline)


def _number(config, field: str, low: float, *, above: bool = False, high: float | None = None) -> None:
    """config's dotted `field` is a finite number >= low (> low when `above`), < high when given."""
    section, _, name = field.rpartition(".")
    value = config[section][name] if section else config[name]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if above else value >= low) and (high is None or value < high)
    if not ok:
        bound = f"> {low}" if above else f">= {low}"
        expected = f"a number {bound}" + (f" and < {high}" if high is not None else "")
        raise UserError(f"--config.{field}={value!r}: expected {expected}")


def _choice(config, field: str, choices) -> None:
    section, _, name = field.rpartition(".")
    value = config[section][name]
    if value not in choices:
        raise UserError(f"--config.{field}={value!r}: expected one of {', '.join(map(str, choices))}")


def validate_train(config) -> None:
    from rt_jax import methods
    from rt_jax.data.pairs import multitask_repeats
    from rt_jax.train.optim import SCHEDULES
    from rt_jax.train.step import REMAT_POLICIES

    parsed = methods.find(config.method)
    if parsed is None or parsed.is_prompting:
        raise UserError(
            f"--config.method={config.method!r}: expected a fine-tuning method for training "
            "(ft, ft_cot, ft_cot_t70_<D>aug, or one of them with _mt)"
        )
    if parsed.multitask:
        multitask_repeats(config.get("rationale_weight", 1.0))
    for field in ("batch_size", "num_epochs", "grad_accum_steps", "max_seq_len", "log_every_steps", "keep_checkpoints"):
        _number(config, f"train.{field}", 1)
    _number(config, "train.learning_rate", 0, above=True)
    for field in ("warmup_steps", "weight_decay", "max_grad_norm", "checkpoint_every_steps"):
        _number(config, f"train.{field}", 0)
    if "checkpoint_every_epochs" in config.train:
        _number(config, "train.checkpoint_every_epochs", 0)
    _number(config, "train.max_steps", -1)
    _number(config, "train.adam_b1", 0, high=1)
    _number(config, "train.adam_b2", 0, high=1)
    _number(config, "train.adam_eps", 0, above=True)
    _choice(config, "train.schedule", SCHEDULES)
    _choice(config, "train.remat", tuple(REMAT_POLICIES))


def validate_run(config, *, training: bool, loads_student: bool = True, num_devices: int | None = None) -> None:
    """One-line UserErrors for any bad setting of `config`: task, student, teacher names, data,
    eval (decoding), train (`training`) and mesh (given `num_devices`). Reads only the task's
    registry; loads nothing."""
    from rt_jax import parallel
    from rt_jax.evaluation.method import check_chat_template
    from rt_jax.evaluation.score import decode_config
    from rt_jax.student import check_student
    from rt_jax.tasks import registry
    from rt_jax.teacher.record import InvalidRecord, check_name
    from rt_jax.teacher.select import check_filter

    registry.task_info(config.task, config.data_dir)
    check_student(config, loads=loads_student)
    for field, kind in (("teacher", "teacher"), ("teacher_method", "method")):
        value = config.get(field, "")
        if value or field == "teacher":
            try:
                check_name(kind, value)
            except InvalidRecord:
                raise UserError(
                    f"--config.{field}={value!r}: expected a name of letters, digits, '.', '_' or '-' "
                    "(it names a folder of the teacher cache)"
                ) from None
    if "data" in config:
        _choice(config, "data.bad_cache_lines", BAD_CACHE_LINES)
    check_filter(config.get("rationale_filter", "correct"))
    for field in ("max_train_examples", "max_rationale_tokens"):
        if field in config:
            _number(config, field, 0)
    for field in ("compute_dtype", "param_dtype"):
        _choice(config, f"train.{field}", DTYPES)
    _number(config, "eval.validation_fraction", 0, high=1)
    try:
        decode_config(config)
    except UserError as e:  # decoding names its own field: say where it comes from
        raise UserError(f"--config.eval: {e}") from None
    check_chat_template(config)  # prompting baselines only; the tokenizer is checked once it loads
    if training:
        validate_train(config)
    if num_devices is not None:
        parallel.mesh_shape(config.mesh, num_devices)
