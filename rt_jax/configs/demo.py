"""The offline demo (`python -m rt_jax.demo`): Fine-tune-CoT in miniature on 2 CPU cores.

    python -m rt_jax.demo                               # every method below, table at the end
    python -m rt_jax.demo --methods=ft_cot --config.demo.steps=1500   # one method, the pilot's steps

Sizes follow a pilot (shared/notes/demo-pilot.md): `arith_small` word problems (start 1-9, 2-3
operations, operands 1-5), 500 training and 500 test questions, a rule-based teacher that slips
on 20% of its rationales, a 2-layer byte-level GPT-2 with rotary positions trained from scratch
for about 1000 steps of 32 examples (AdamW lr 2e-3, weight decay 0.1), greedy decoding. The pilot
ran 1500 steps; here that takes ~13 minutes on 2 idle cores, over the demo's 10-minute budget.
"""

import ml_collections

from rt_jax import methods
from rt_jax.configs import base
from rt_jax.errors import UserError

# The demo's table, in order; two D values so the report draws the diverse-reasoning figure.
METHODS = ("zs", "ft", "ft_cot", "ft_cot_t70_2aug", "ft_cot_t70_4aug")
# The demo trains on its own teacher's rationales and prompts zero-shot only.
_DEMO_METHODS = "zs, ft, ft_cot or ft_cot_t70_<D>aug"


def check_method(method: str) -> methods.Method:
    """The method, if the demo can run it; a UserError otherwise."""
    m = methods.find(method)
    if m is None or m.multitask or (m.is_prompting and m.name != "zs"):
        raise UserError(f"unknown demo method {method!r}; expected {_DEMO_METHODS}")
    return m


def get_config(method: str | None = "ft_cot") -> ml_collections.ConfigDict:
    method = method or "ft_cot"
    try:
        m = check_method(method)
    except UserError as e:
        raise UserError(f"--config=demo:{method}: {e}") from None
    c = base.get_config()
    c.task = "arith_small"
    c.method = method
    c.student = "byte-gpt2-2l"  # a from-scratch student; model_path points at its initial weights
    c.teacher = "rule-based"
    c.num_rationales = m.rationale_source.num_rationales if m.rationale_source else 1
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
    e.max_new_tokens = 80 if m.rationale_source else 8

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
