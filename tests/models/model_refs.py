"""Reference models for parity tests: small random transformers (PyTorch) models saved to disk."""

import pathlib

import numpy as np
import torch

# Small configs (transformers keyword arguments) for fast checkpoint and registry tests.
GPT2_SMALL = dict(vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=2, bos_token_id=1, eos_token_id=1)
T5_SMALL = dict(
    vocab_size=40,
    d_model=16,
    d_kv=4,
    d_ff=20,
    num_layers=1,
    num_decoder_layers=2,
    num_heads=2,
    relative_attention_num_buckets=8,
    decoder_start_token_id=0,
    dropout_rate=0.0,
)


def torch_logits(model, **inputs) -> np.ndarray:
    with torch.no_grad():
        out = model(**{k: torch.as_tensor(np.asarray(v)) for k, v in inputs.items()})
    return out.logits.float().numpy()


def left_padded_batch(rng: np.random.Generator, lengths, vocab_size: int, pad_id: int = 0):
    """ids [B, T] and mask [B, T] with each row's real tokens at the right end."""
    t = max(lengths)
    ids = np.full((len(lengths), t), pad_id, np.int32)
    mask = np.zeros((len(lengths), t), np.int32)
    for b, n in enumerate(lengths):
        ids[b, t - n :] = rng.integers(1, vocab_size, n)
        mask[b, t - n :] = 1
    return ids, mask


def right_padded_batch(rng: np.random.Generator, lengths, vocab_size: int, pad_id: int = 0):
    ids, mask = left_padded_batch(rng, lengths, vocab_size, pad_id)
    for b, n in enumerate(lengths):
        ids[b], mask[b] = np.roll(ids[b], n - ids.shape[1]), np.roll(mask[b], n - ids.shape[1])
    return ids, mask


def save_state_dict(model, config, directory) -> None:
    """Writes a checkpoint the way real hub checkpoints are: every tensor under its own name.

    (transformers' own save_pretrained drops tensors it considers tied; Flan-T5 checkpoints
    carry a separate lm_head, which this keeps.)"""
    from safetensors.torch import save_file

    pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(state, f"{directory}/model.safetensors", metadata={"format": "pt"})
    config.save_pretrained(directory)


def perturb(model, scale: float = 0.05, seed: int = 0):
    """Adds noise to every parameter, so norm scales (ones at init) and biases (zeros) are checked."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * scale)
    return model


def assert_packed_equals_one_by_one(module, params, seqs, padding: int = 3, atol: float = 1e-5) -> None:
    """A decoder-only model's logits for `seqs` packed in one row (segment ids, trailing padding)
    equal those of each sequence alone in its own right-padded row."""
    import jax

    packed = np.concatenate(list(seqs) + [np.zeros(padding, int)])[None]
    segments = np.concatenate([np.full(len(s), i + 1) for i, s in enumerate(seqs)] + [np.zeros(padding, int)])[None]
    apply = jax.jit(module.apply)
    got = np.asarray(apply({"params": params}, packed, segment_ids=segments))[0]
    width = max(map(len, seqs))
    alone, alone_mask = np.zeros((len(seqs), width), np.int32), np.zeros((len(seqs), width), np.int32)
    for b, s in enumerate(seqs):
        alone[b, : len(s)], alone_mask[b, : len(s)] = s, 1
    want = np.asarray(apply({"params": params}, alone, alone_mask))
    start = 0
    for b, s in enumerate(seqs):
        np.testing.assert_allclose(got[start : start + len(s)], want[b, : len(s)], atol=atol)
        start += len(s)


def assert_steps_equal_full_forward(module, params, ids, mask, prompt: int, max_length: int, atol: float = 1e-5):
    """Prefill of the first `prompt` tokens, then one `extend` per token, gives the full forward's
    logits at every real position (decoder-only KV-cache contract). Returns the final cache."""
    import jax
    import jax.numpy as jnp

    p = {"params": params}
    full = jax.jit(module.apply)(p, ids, mask)
    positions = np.maximum(np.cumsum(mask, -1) - 1, 0).astype(np.int32)
    cache = jax.jit(lambda: module.apply(p, ids.shape[0], max_length, method="init_cache"))()
    extend = jax.jit(lambda c, i, pos, idx, kvm: module.apply(p, i, pos, c, idx, kvm, method="extend"))
    kv_mask = jnp.zeros((ids.shape[0], max_length), bool).at[:, :prompt].set(mask[:, :prompt] > 0)
    logits, cache = extend(cache, ids[:, :prompt], positions[:, :prompt], jnp.int32(0), kv_mask)
    steps = [logits]
    for t in range(prompt, ids.shape[1]):
        kv_mask = kv_mask.at[:, t].set(mask[:, t] > 0)
        logits, cache = extend(cache, ids[:, t : t + 1], positions[:, t : t + 1], jnp.int32(t), kv_mask)
        steps.append(logits)
    stepped = np.asarray(jnp.concatenate(steps, axis=1))
    real = mask.astype(bool)
    np.testing.assert_allclose(stepped[real], np.asarray(full)[real], atol=atol)
    return cache
