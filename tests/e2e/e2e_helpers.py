"""Helpers of the end-to-end tests: a paper run config pointed at a tiny student, the real data
and a teacher cache."""

from rt_jax.configs import paper


def paper_config(arg, model_dir, data_dir, cache):
    c = paper.get_config(arg)
    c.model_path, c.data_dir, c.teacher_cache_dir = str(model_dir), str(data_dir), str(cache)
    c.train.num_epochs, c.train.batch_size, c.train.max_seq_len = 1, 16, 512
    c.eval.max_new_tokens, c.eval.batch_size = 12, 64
    return c
