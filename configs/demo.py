"""The offline demo (`python -m rt_jax.demo`): Fine-tune-CoT in miniature on 2 CPU cores.

    python -m rt_jax.demo                               # every method below, table at the end
    python -m rt_jax.demo --methods=ft_cot --config.demo.steps=1500   # one method, the pilot's steps

Sizes follow a pilot (shared/notes/demo-pilot.md): `arith_small` word problems (start 1-9, 2-3
operations, operands 1-5), 500 training and 500 test questions, a rule-based teacher that slips
on 20% of its rationales, a 2-layer byte-level GPT-2 with rotary positions trained from scratch
for about 1000 steps of 32 examples (AdamW lr 2e-3, weight decay 0.1), greedy decoding. The pilot
ran 1500 steps; here that takes ~13 minutes on 2 idle cores, over the demo's 10-minute budget.
"""

import pathlib
import sys

_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import ml_collections  # noqa: E402

from configs import base, methods  # noqa: E402

METHODS = ("zs", "ft", "ft_cot", "ft_cot_t70_4aug")  # the demo's table, in order


def get_config(method: str | None = "ft_cot") -> ml_collections.ConfigDict:
    method = method or "ft_cot"
    if not methods.is_known(method) or method in ("zs_cot", "fs_cot"):
        from rt_jax.errors import UserError

        raise UserError(
            f"--config=configs/demo.py:{method}: unknown demo method; expected one of "
            f"{', '.join(METHODS)} or ft_cot_t70_<D>aug"
        )
    c = base.get_config()
    c.task = "arith_small"
    c.method = method
    c.student = "byte-gpt2-2l"  # a from-scratch student; model_path points at its initial weights
    c.teacher = "rule-based"
    c.num_rationales = methods.degree(method) or 1
    c.seed = 0

    t = c.train
    t.batch_size = 32
    t.learning_rate = 2e-3
    t.weight_decay = 0.1
    t.dropout = False
    t.packing = False  # 32 examples per step, as in the pilot
    t.max_seq_len = 256
    t.num_epochs = 1  # set by the demo from `demo.steps` and the number of training pairs
    t.log_every_steps = 100
    t.keep_checkpoints = 1
    t.checkpoint_every_epochs = 0  # ~90 epochs of 16 steps: save only the evaluated (last) one

    e = c.eval
    e.every_epoch = False  # evaluate once, after the last epoch
    e.batch_size = 128
    # rationales of 2-3 steps with the answer take < 70 bytes; answers alone < 4
    e.max_new_tokens = 8 if method in ("zs", "ft") else 80

    d = c.demo = ml_collections.ConfigDict()
    d.num_train = 500
    d.num_test = 500
    d.error_rate = 0.2  # share of the teacher's rationales with a slip (wrong answer)
    d.degree = 4  # D of the diverse-reasoning run
    d.steps = 1000  # per method, in whole epochs: 1500 (the pilot's) overruns 10 minutes on 2 cores
    d.n_layer = 2
    d.n_embd = 128
    d.n_head = 4
    d.n_positions = 256
    d.position_embedding = "rotary"  # learned positions failed the pilot's state tracking
    return c
