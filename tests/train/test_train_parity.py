"""First-step loss (and the loss after one AdamW step) of small random GPT-2 and T5 against
transformers' PyTorch models + torch.optim.AdamW on the same batch."""

import jax
import numpy as np
import torch
from test_train_step import train_config
from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

from rt_jax import models, parallel
from rt_jax.train import optim
from rt_jax.train import state as state_lib
from rt_jax.train import step as step_lib

MESH = {"data": 2, "fsdp": 2, "tensor": 2}
PROMPTS = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14]]
TARGETS = [[20, 21, 1], [22, 1], [23, 24, 25, 1], [26, 27, 1]]


def torch_steps(model, inputs, lr):
    """Loss before and after one torch AdamW step (the reference's optimizer)."""
    torch.manual_seed(0)
    model.eval()  # no dropout on either side
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    first = model(**inputs).loss
    first.backward()
    opt.step()
    with torch.no_grad():
        second = model(**inputs).loss
    return first.item(), second.item()


def jax_steps(tmp_path, torch_model, batch, is_encoder_decoder, lr):
    torch_model.save_pretrained(tmp_path)
    loaded = models.from_pretrained(tmp_path)
    mesh = parallel.make_mesh(MESH)
    opt = optim.make_optimizer(train_config(learning_rate=lr), 10)
    shardings = state_lib.state_shardings(
        state_lib.abstract_state(loaded.params, opt), models.logical_axes(loaded), mesh, opt
    )
    st = state_lib.create_state(loaded.params, opt, shardings)
    keys = step_lib.batch_keys(is_encoder_decoder)
    fn = step_lib.jit_train_step(
        step_lib.make_train_step(loaded.module, is_encoder_decoder, opt, mesh=mesh), shardings, mesh, keys
    )
    b = parallel.global_batch(batch, mesh)
    st, m1 = fn(st, b, jax.random.PRNGKey(0))
    _, m2 = fn(st, b, jax.random.PRNGKey(0))
    return float(m1["loss"]), float(m2["loss"])


def decoder_steps(tmp_path, model, lr=1e-3):
    """(rt_jax, torch) losses of a decoder-only model on PROMPTS + TARGETS: right padding like
    the reference, labels -100 on prompt and padding."""
    L = 8
    ids = np.zeros((4, L), np.int64)
    labels = np.full((4, L), -100, np.int64)
    seg = np.zeros((4, L), np.int32)
    for r, (p, t) in enumerate(zip(PROMPTS, TARGETS)):
        seq = p + t
        ids[r, : len(seq)], seg[r, : len(seq)] = seq, 1
        labels[r, len(p) : len(seq)] = t
    batch = {
        "input_ids": ids.astype(np.int32),
        "segment_ids": seg,
        "positions": np.where(seg > 0, np.arange(L), 0).astype(np.int32),
        "targets": np.concatenate([ids[:, 1:], np.zeros((4, 1), np.int64)], 1).astype(np.int32),
        "loss_mask": np.concatenate([labels[:, 1:] != -100, np.zeros((4, 1), bool)], 1).astype(np.int32),
    }
    ours = jax_steps(tmp_path, model, batch, False, lr=lr)  # first: torch_steps updates `model`
    inputs = {
        "input_ids": torch.tensor(ids),
        "attention_mask": torch.tensor(seg, dtype=torch.long),
        "labels": torch.tensor(labels),
    }
    return ours, torch_steps(model, inputs, lr=lr)


def test_gpt2_first_step_loss_matches_transformers(tmp_path):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=4))
    ours, ref = decoder_steps(tmp_path, model)
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_t5_first_step_loss_matches_transformers(tmp_path):
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(
        T5Config(
            vocab_size=64,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    S, T = 6, 5
    enc = np.zeros((4, S), np.int32)
    labels = np.full((4, T), -100, np.int64)
    for r, (p, t) in enumerate(zip(PROMPTS, TARGETS)):
        enc[r, : len(p)], labels[r, : len(t)] = p, t
    mask = labels != -100
    targets = np.where(mask, labels, 0).astype(np.int32)
    dec_in = np.concatenate([np.zeros((4, 1), np.int32), targets[:, :-1]], 1)
    batch = {
        "input_ids": enc,
        "encoder_segment_ids": (enc > 0).astype(np.int32),
        "decoder_input_ids": dec_in,
        "decoder_segment_ids": mask.astype(np.int32),
        "targets": targets,
        "loss_mask": mask.astype(np.int32),
    }
    ours = jax_steps(tmp_path, model, batch, True, lr=1e-3)
    ref = torch_steps(
        model,
        {
            "input_ids": torch.tensor(enc, dtype=torch.long),
            "attention_mask": torch.tensor(enc > 0, dtype=torch.long),
            "labels": torch.tensor(labels),
        },
        lr=1e-3,
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_llama_first_step_loss_matches_transformers(tmp_path):
    """One KV head on the (2, 2, 2) mesh: fewer KV heads than the tensor axis (replicated)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=1,
            max_position_embeddings=32,
            tie_word_embeddings=False,
        )
    )
    ours, ref = decoder_steps(tmp_path, model)
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
