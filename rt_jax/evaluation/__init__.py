"""Evaluation: decode a student's completions, score them, save them as predictions, summarise.

Training's per-epoch evaluation (`evaluate_epoch`, rt_jax.train.loop's default evaluate_fn) and
the evaluate command (`python -m rt_jax.evaluate`, `run_evaluation`) both run through here:
- score.py: `decode_config` (a run's decoding settings), `decode` (through rt_jax.decoding's one
  decoder cache, params per call), `evaluate_prompts` (decode, score, save, accuracy);
- method.py: a method's prompts (`prompts_for`; Zero-shot-CoT's two steps in `evaluate_method`;
  config.eval.chat_template wraps a prompting baseline's prompts in the tokenizer's chat template),
  `evaluate_run_method` (as a run config says), `self_consistency`, `majority_vote`;
- predictions.py: prediction records and their files (the teacher cache's format);
- epoch.py: the test and validation examples of a run, `evaluate_epoch`;
- command.py: `run_evaluation` and the command's flags (rt_jax/evaluate.py runs it).
"""

from rt_jax.evaluation.command import run_evaluation
from rt_jax.evaluation.epoch import evaluate_epoch, held_out_examples, validation_examples
from rt_jax.evaluation.method import (
    check_chat_template,
    evaluate_method,
    evaluate_run_method,
    majority_vote,
    prompts_for,
    self_consistency,
)
from rt_jax.evaluation.predictions import predictions_method
from rt_jax.evaluation.score import decode, decode_config, evaluate_prompts

__all__ = [
    "check_chat_template",
    "decode",
    "decode_config",
    "evaluate_epoch",
    "evaluate_method",
    "evaluate_prompts",
    "evaluate_run_method",
    "majority_vote",
    "predictions_method",
    "prompts_for",
    "run_evaluation",
    "self_consistency",
    "held_out_examples",
    "validation_examples",
]
