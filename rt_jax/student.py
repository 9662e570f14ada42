"""The student of a run config: its name checked before any work, its weights loaded with the
run's dtypes. Training, evaluation and export all load a run's student here."""

from __future__ import annotations

import jax.numpy as jnp

from rt_jax.errors import UserError


def check_student(config, loads: bool = True) -> None:
    """config.student names the run's predictions folder (a cache-style name) and, when the
    student is loaded from the config (`loads`) without config.model_path, is a paper student;
    a one-line UserError otherwise."""
    from rt_jax.models import registry
    from rt_jax.teacher.record import InvalidRecord, check_name

    name = config.student
    try:
        check_name("student", name)
    except InvalidRecord:
        raise UserError(
            f"--config.student={name!r}: expected a name of letters, digits, '.', '_' or '-' "
            "(it names the run's predictions folder)"
        ) from None
    if loads and not config.model_path:
        try:
            registry.hub_id(name)
        except UserError as e:
            raise UserError(f"--config.student: {e} (or set --config.model_path to a checkpoint folder)") from None


def load_student(config, params_dir: str | None = None, mesh=None):
    """The student's LoadedModel: `params_dir` (weights saved with rt_jax.models.save_pretrained),
    else config.model_path (a checkpoint folder), else the paper student's hub checkpoint; in
    config.train's compute and parameter dtypes, with per-layer remat when config.train.remat
    is "layer"; with a mesh, the parameters are read straight into their training shardings."""
    from rt_jax import models

    dtype = jnp.dtype(config.train.compute_dtype)
    param_dtype = jnp.dtype(config.train.param_dtype)
    options = {"remat": True} if config.train.remat == "layer" else {}
    source = params_dir or config.model_path or models.registry.hub_id(config.student)
    return models.from_pretrained(source, dtype=dtype, param_dtype=param_dtype, mesh=mesh, **options)
