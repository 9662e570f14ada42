"""One process of the multi-host decoding check: `python multihost_decode_worker.py PROCESS_ID
NUM_PROCESSES LOCAL_DEVICES PORT OUT.json`. With NUM_PROCESSES > 1 the processes join with
jax.distributed.initialize and decode the same prompts on a (data 2, fsdp 2) mesh spanning all
of them; with one process it writes the references: the same mesh over its own devices, and no
mesh at all. Writes {setting: [[tokens, finish_reason, score] per completion] per prompt}."""

import json
import os
import sys
import types

process_id, num_processes, local_devices, port, out_path = sys.argv[1:6]
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={local_devices}"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import transformers  # noqa: E402

from rt_jax import (  # noqa: E402
    evaluation,  # noqa: E402
    models,
    parallel,
)
from rt_jax.decoding import DecodeConfig, Decoder  # noqa: E402
from rt_jax.models import ByteTokenizer  # noqa: E402
from rt_jax.teacher.store import RationaleStore  # noqa: E402

parallel.initialize_distributed(
    ml_collections.ConfigDict(
        dict(num_processes=int(num_processes), coordinator_address=f"127.0.0.1:{port}", process_id=int(process_id))
    )
)

EOS = ByteTokenizer.eos_token_id
hf_config = transformers.GPT2Config(
    vocab_size=ByteTokenizer.vocab_size,
    n_positions=48,
    n_embd=32,
    n_layer=2,
    n_head=2,
    n_inner=64,
    eos_token_id=EOS,
    initializer_range=0.5,
)
loaded = models.from_config(hf_config, seed=0, tokenizer=ByteTokenizer())
rng = np.random.default_rng(0)  # the same prompts in every process; mixed lengths, 5 prompts
prompts = [rng.integers(3, 64, size=n).tolist() for n in (5, 17, 3, 9, 12)]
CONFIGS = {
    "greedy": DecodeConfig(max_new_tokens=12, batch_size=4, eos_token_id=EOS),
    "beam": DecodeConfig(
        strategy="beam", num_beams=3, num_return_sequences=2, max_new_tokens=8, batch_size=4, eos_token_id=EOS
    ),
    "sample": DecodeConfig(
        strategy="sample",
        temperature=0.7,
        num_return_sequences=3,
        max_new_tokens=8,
        batch_size=4,
        eos_token_id=EOS,
        seed=5,
    ),
}


def run(config, mesh, param_shardings=None, params_from=None):
    model = loaded
    if params_from is not None:  # as the training loop hands over its (global) train-state params
        import dataclasses

        model = dataclasses.replace(loaded, params=params_from.params)
        param_shardings = jax.tree.map(lambda x: x.sharding, params_from.params)
    decoder = Decoder(model, config, mesh=mesh, param_shardings=param_shardings)
    return decoder, [[[list(o[0]), o[1], o[2]] for o in outs] for outs in decoder.decode_ids(prompts)]


def evaluate(params, mesh):
    """Per-epoch evaluation as the training loop runs it; process 0 alone writes predictions."""
    examples = [types.SimpleNamespace(sample_index=i, answer=str(i % 3)) for i in range(5)]
    texts = [f"{i} + {i} = ? ###" for i in range(5)]
    out_dir = f"{out_path}.predictions{'' if mesh else '_no_mesh'}"
    result = evaluation.evaluate_prompts(
        loaded,
        params,
        "multiarith",
        examples,
        texts,
        "-->",
        CONFIGS["greedy"],
        out_dir,
        1,
        model="s",
        method="ft",
        mesh=mesh,
    )
    records = RationaleStore(out_dir).read("s", "ft.epoch01", "multiarith")
    return {
        "accuracy": result["accuracy"],
        "num_test": result["num_test"],
        "completions": [r.reasoning_completion for r in records],
    }


mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 1})
out = {}
for name, config in CONFIGS.items():
    decoder, out[name] = run(config, mesh)
    if name == "greedy":
        _, out["greedy_train_params"] = run(config, mesh, params_from=decoder)
        out["evaluation"] = evaluate(decoder.params, mesh)
    if int(num_processes) == 1:
        _, out[name + "_no_mesh"] = run(config, None)
        if name == "greedy":
            out["evaluation_no_mesh"] = evaluate(loaded.params, None)
out["process_count"] = jax.process_count()
out["mesh_processes"] = sorted({d.process_index for d in mesh.devices.flat})
with open(out_path, "w") as f:
    json.dump(out, f)
