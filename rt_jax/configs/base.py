"""Base config: every hyperparameter of a student fine-tuning run, with the paper's defaults.

Open-source students in Fine-tune-CoT: AdamW, lr 3e-4 constant, batch 8, 20 epochs, greedy
decoding, best test accuracy over the epochs reported. Other config files in rt_jax/configs/
start from `get_config()` and override fields; absl flags override again
(`--config.train.batch_size=16`).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.task = "multiarith"  # a key of rt_jax.tasks.TASKS
    c.method = "ft_cot"  # zs | zs_cot | fs_cot | ft | ft_cot | ft_cot_t70_8aug ...
    c.student = "gpt2"  # paper name of the student (rt_jax.models registry)
    c.model_path = ""  # local checkpoint directory; overrides `student` when set
    c.data_dir = "../shared/data"
    c.split = "default"  # splits/<task>__<split>.json
    c.teacher_cache_dir = ""
    c.teacher = "text-davinci-002"  # teacher id: the cache's <teacher>/ directory
    c.teacher_method = ""  # teacher-cache method read (e.g. zs_cot_t70); empty: the method's (rt_jax.methods)
    c.num_rationales = 1  # D: diverse reasoning samples per training question
    c.max_train_examples = 0  # training questions (a fixed random subset of the split's, nested); 0: all
    c.rationale_filter = "correct"  # correct (the paper's) | all (teacher's answer) | none_gold (rt_jax.teacher.select)
    c.max_rationale_tokens = 0  # > 0: leave out longer teacher rationales (whitespace tokens)
    c.rationale_weight = 1.0  # multi-task methods (<CoT method>_mt): rationale task's weight vs the label task's
    c.template = ""  # rt_jax.formats template for training and evaluation; empty: the method's
    c.seed = 0

    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 8  # global, in examples (padding) or packed rows (packing)
    c.train.num_epochs = 20
    c.train.learning_rate = 3e-4
    c.train.schedule = "constant"  # constant | linear | cosine (decay after warmup)
    c.train.warmup_steps = 0
    c.train.weight_decay = 0.01  # torch.optim.AdamW's default, as the reference used
    c.train.adam_b1 = 0.9
    c.train.adam_b2 = 0.999
    c.train.adam_eps = 1e-8
    c.train.max_grad_norm = 0.0  # 0 disables clipping (the reference does not clip)
    c.train.grad_accum_steps = 1  # microbatches per step
    c.train.compute_dtype = "float32"  # float32 | bfloat16 (params stay in param_dtype)
    c.train.param_dtype = "float32"
    c.train.remat = "none"  # none | layer (per-layer, in the model) | dots | minimal (policy on the loss)
    c.train.dropout = True  # the reference trains in train mode (HF dropout on)
    c.train.packing = True
    c.train.max_seq_len = 1024
    c.train.checkpoint_every_steps = 0  # 0: only at each epoch end
    c.train.keep_checkpoints = 2  # the last K; the best (eval accuracy) is always kept too
    c.train.log_every_steps = 10
    c.train.max_steps = -1  # stop early after this many steps (debugging); -1: all epochs

    c.data = ml_collections.ConfigDict()
    # teacher-cache lines that do not parse or are of another schema: refuse (stop, naming
    # each file:line) or skip (train without them, each reported)
    c.data.bad_cache_lines = "refuse"

    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1  # -1 fills the remaining devices
    c.mesh.fsdp = 1
    c.mesh.tensor = 1

    c.eval = ml_collections.ConfigDict()
    c.eval.every_epoch = True
    c.eval.strategy = "greedy"  # greedy | beam | sample
    c.eval.num_beams = 1
    c.eval.temperature = 1.0
    c.eval.max_new_tokens = 128
    c.eval.batch_size = 32
    # Prompting baselines (zs, zs_cot, fs_cot) of instruct checkpoints: each prompt is the user turn
    # of the tokenizer's chat template. Fine-tuning methods keep the paper's plain format (refused).
    c.eval.chat_template = False
    c.eval.validation_fraction = 0.0  # > 0: carve a validation split from train

    c.distributed = ml_collections.ConfigDict()
    c.distributed.num_processes = 1  # > 1: jax.distributed.initialize
    c.distributed.coordinator_address = ""  # host:port; empty lets JAX auto-detect (TPU pods)
    c.distributed.process_id = -1  # -1: auto-detect
    return c
