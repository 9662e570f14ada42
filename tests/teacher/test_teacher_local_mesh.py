"""The open-model teacher (`--backend=local`) on the 8-fake-device mesh, with a tiny random Llama and a
word-level tokenizer that has a chat template: its flags, its parameters sharded as they load, the
chat conversation in the template, the D samples of a question as one decoding call, and bad flags
as one line naming the flag."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from teacher_helpers import cli
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import LlamaConfig, PreTrainedTokenizerFast

from rt_jax import parallel
from rt_jax.decoding import DecodeConfig, driver, get_decoder
from rt_jax.errors import UserError
from rt_jax.models import chat, from_config, logical_axes, save_pretrained
from rt_jax.tasks import Example
from rt_jax.teacher.generate import COT_TRIGGER, generate_rationales
from rt_jax.teacher.local import load_teacher, parse_mesh
from rt_jax.teacher.store import RationaleStore

WORDS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "user", "assistant"]
WORDS += "Q: A: Let's think step by step. What is 1 2 3 + ? Therefore, the answer (arabic numerals) is".split()
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> "
    "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)
MESH = "data=2,fsdp=2,tensor=2"
EXAMPLES = [Example(i, f"What is {i} + {i}?", str(2 * i)) for i in (1, 2)]


def word_tokenizer():
    """Adds BOS itself, as Llama tokenizers do: a chat prompt must not get a second one."""
    inner = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    inner.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=inner,
        chat_template=TEMPLATE,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_chat_llama")
    config = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
    )
    save_pretrained(from_config(config, seed=0), directory)
    word_tokenizer().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def teacher(model_dir):
    return load_teacher(str(model_dir), MESH, "bfloat16", batch_size=8)


def test_mesh_flag_reads_the_config_mesh_form():
    assert parse_mesh("data=2,fsdp=2,tensor=2") == {"data": 2, "fsdp": 2, "tensor": 2}
    assert parse_mesh("tensor=4, data=-1") == {"data": -1, "fsdp": 1, "tensor": 4}
    for bad in ("data:2", "data=2,data=2", "pipeline=2", "data=two", ""):
        with pytest.raises(UserError, match=f"^--mesh={bad}: "):
            parse_mesh(bad)


def test_parameters_load_sharded_on_the_mesh_in_the_dtype(teacher):
    mesh = teacher.mesh
    assert dict(mesh.shape) == {"data": 2, "fsdp": 2, "tensor": 2}
    params = teacher.loaded.params
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype("bfloat16")}
    want = parallel.param_shardings(logical_axes(teacher.loaded), params, mesh)
    got = jax.tree.map(lambda x: x.sharding, params)
    assert jax.tree.leaves(got) == jax.tree.leaves(want)
    # split for real: some parameter is held in 1/4 blocks (fsdp x tensor) on each device
    split = [x for x in jax.tree.leaves(params) if x.addressable_shards[0].data.size * 4 == x.size]
    assert split
    assert teacher.api == "chat"  # auto: the tokenizer has a template


def test_chat_conversation_is_sent_in_the_template_with_one_bos(teacher):
    tokenizer = teacher.loaded.tokenizer
    messages = [{"role": "user", "content": f"Q: What is 1 + 1?\nA: {COT_TRIGGER}"}]
    ids = teacher._ids(messages)
    assert ids == tokenizer(chat.conversation_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
    assert ids[:4] == [WORDS.index(w) for w in ("<s>", "<|im_start|>", "user", "Q:")] and ids.count(1) == 1
    assert ids[-2:] == [WORDS.index("<|im_start|>"), WORDS.index("assistant")]
    # greedy: what rt_jax's decoder gives for the templated ids (the backend's decoder: compiled once)
    (completion,) = teacher.sample([messages], 1, 2, 0.0, [0])[0]
    decoder = get_decoder(
        teacher.loaded, DecodeConfig(max_new_tokens=2, batch_size=8), teacher.mesh, teacher.param_shardings
    )
    tokens, _, _ = decoder.decode_ids([ids])[0][0]
    assert completion.text == tokenizer.decode(list(tokens), skip_special_tokens=True)
    assert completion.usage == {"prompt_tokens": len(ids), "completion_tokens": len(tokens)}


def test_d_samples_are_one_call_with_d_rows_per_prompt_and_resume(teacher, tmp_path, monkeypatch):
    calls = []
    decode_ids = driver.Decoder.decode_ids

    def spy(self, prompts, key=None, progress=None):
        calls.append((len(prompts), self.config.rows_per_prompt))
        return decode_ids(self, prompts, key=key, progress=progress)

    monkeypatch.setattr(driver.Decoder, "decode_ids", spy)
    store = RationaleStore(tmp_path)
    kwargs = dict(
        num_completions=4, temperature=0.7, max_reasoning_tokens=4, max_answer_tokens=2, chunk_size=8, progress=False
    )
    report = generate_rationales(store, teacher, "multiarith", EXAMPLES, "tiny", **kwargs)
    assert (report.requested, report.written) == (8, 8)
    assert calls == [(2, 4), (8, 1)]  # reasoning: 2 questions x 4 rows; answers: 8 greedy rows
    records = store.read("tiny", "zs_cot_t70", "multiarith")
    assert sorted(r.key[3:] for r in records) == [(i, c) for i in (1, 2) for c in range(4)]
    for r in records:
        question = EXAMPLES[r.sample_index - 1].question
        assert r.reasoning_prompt == f"Q: {question}\nA: {COT_TRIGGER}"
        assert [m["role"] for m in r.messages] == ["user", "assistant", "user", "assistant"]
        assert r.messages[1]["content"] == r.reasoning_completion
        assert r.answer_prompt == r.messages[2]["content"] == "Therefore, the answer (arabic numerals) is"
        assert r.messages[3]["content"] == r.answer_completion
    # usage: a question's reasoning prompt counted once over its 4 samples, plus its 4 answer prompts
    for i, ex in enumerate(EXAMPLES, 1):
        mine = [r for r in records if r.sample_index == i]
        reasoning = len(teacher._ids(mine[0].messages[:1]))
        answers = sum(len(teacher._ids(r.messages[:3])) for r in mine)
        assert sum(r.usage["prompt_tokens"] for r in mine) == reasoning + answers
    calls.clear()
    again = generate_rationales(store, teacher, "multiarith", EXAMPLES, "tiny", **kwargs)
    assert (again.cached, again.written, calls) == (8, 0, [])
    assert store.read("tiny", "zs_cot_t70", "multiarith") == records


def test_chat_template_off_sends_text(model_dir):
    plain = load_teacher(str(model_dir), chat_template="off")
    assert plain.api == "completions" and plain.mesh is None
    tokenizer = plain.loaded.tokenizer
    assert plain._ids("Q: What is 1 + 1?") == tokenizer.encode("Q: What is 1 + 1?")
    assert np.asarray(jax.tree.leaves(plain.loaded.params)[0]).dtype == np.float32


def test_bad_local_flags_are_one_line_naming_the_flag(model_dir, tmp_path):
    base = ["generate", "--backend=local", f"--cache_dir={tmp_path / 'cache'}", "--tasks=coin_flip", "--limit=1"]
    cases = [
        ([], "--model"),
        ([f"--model={tmp_path / 'missing'}"], f"--model={tmp_path / 'missing'}: no such model folder"),
        ([f"--model={model_dir}", "--mesh=data:2"], "--mesh=data:2: expected data=N,fsdp=N,tensor=N"),
        ([f"--model={model_dir}", "--mesh=data=3,fsdp=2"], "--mesh=data=3,fsdp=2: 3 x 2 x 1 = 6 devices"),
        ([f"--model={model_dir}", "--dtype=bogus"], "--dtype"),
        (["--backend=http", "--model=m", "--mesh=data=8", "--api_key_env="], "--mesh is for --backend=local"),
    ]
    for extra, expected in cases:
        out = cli(*base, *extra)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, (extra, out.stderr)
        assert lines[0].startswith("error: ") and expected in lines[0] and "Traceback" not in out.stderr, lines
    assert not (tmp_path / "cache").exists()
