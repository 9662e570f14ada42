"""rt_jax: Fine-tune-CoT ("Large Language Models Are Reasoning Teachers") in JAX/Flax."""

import logging


class _NoTorchAdvisory(logging.Filter):
    """Drops transformers' import-time "PyTorch was not found. Models won't be available ..."
    advisory: rt_jax uses transformers for configs, tokenizers and hub files only, never for its
    (PyTorch) models, so the message misleads here. Other transformers messages pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("PyTorch was not found.")


# The advisory is logged by the "transformers" logger itself when transformers is first imported.
logging.getLogger("transformers").addFilter(_NoTorchAdvisory())

__version__ = "0.1.0"
