"""Bad command lines, as a hostile user types them: every case exits 2 with exactly one stderr
line `error: ...` that says what was wrong (the case's text), no traceback, nothing silently
accepted. The commands run in this process (their absl flags defined, parsed and removed again
per case), so the table is quick; each stops before a student or data loads."""

import importlib
import json
import shutil

import jax
import pytest
from absl import flags
from train_helpers import run_config, tiny_student

from rt_jax import host_memory, models, parallel, run_dir
from rt_jax.cli import run_main
from rt_jax.train import checkpoint, optim
from rt_jax.train import state as state_lib

PAPER_FT = "--config=paper:multiarith,ft,gpt2"
PAPER_ZS = "--config=paper:multiarith,zs_cot,gpt2"


def run_command(module: str, argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """(exit status, stderr) of `python -m module *argv`, in this process."""
    command = importlib.import_module(module)
    monkeypatch.setattr(host_memory, "keep_freed_memory", lambda: False)  # the test process keeps its allocator
    monkeypatch.setattr("sys.argv", [module, *argv])
    before = set(flags.FLAGS)
    capsys.readouterr()
    try:
        with pytest.raises(SystemExit) as done:
            run_main(command.main, command.define_flags)
    finally:
        for name in set(flags.FLAGS) - before:
            delattr(flags.FLAGS, name)
    return done.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def places(tmp_path_factory, data_dir):
    """Everything the cases point at: a file, a corrupt snapshot, a run with two checkpoints
    (steps 3 and 6; 6 damaged, 3 without its state in a second copy), a bad teacher cache."""
    root = tmp_path_factory.mktemp("places")
    (root / "file").write_text("not a folder")
    (root / "corrupt").mkdir()
    (root / "corrupt" / run_dir.CONFIG_FILE).write_text('{"task": ')
    student = tiny_student()
    models.save_pretrained(student, root / "init")
    config = run_config(data_dir)
    config.model_path = str(root / "init")
    run = root / "run"
    run_dir.write_snapshot(config, run)
    opt = optim.make_optimizer(config.train, 1)
    abstract = state_lib.abstract_state(student.params, opt)
    mesh = parallel.make_mesh({"data": 1, "fsdp": 1, "tensor": 1})
    shardings = jax.tree.map(lambda _: jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()), abstract)
    state = state_lib.create_state(student.params, opt, shardings)
    saved = checkpoint.Checkpoints(run / run_dir.CHECKPOINTS_DIR, async_save=False)
    for step in (3, 6):
        saved.save(state.replace(step=step), {"epoch": 0})
    saved.close()
    shutil.copytree(run, root / "stateless")
    shutil.rmtree(root / "stateless" / run_dir.CHECKPOINTS_DIR / "3" / "state")
    largest = max(
        (p for p in (run / "checkpoints" / "6" / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    largest.write_bytes(largest.read_bytes()[:10])
    other = run_config(data_dir, learning_rate=5e-4)
    run_dir.write_snapshot(other, root / "other_run")
    shard = root / "cache" / "text-davinci-002" / "zs_cot" / "multiarith.jsonl"
    shard.parent.mkdir(parents=True)
    shard.write_text("{garbage\n" + json.dumps({"teacher": "text-davinci-002"}) + "\n")
    return root


def train(*more):
    return (
        "rt_jax.train.__main__",
        [PAPER_FT, "--config.data_dir={data}", "--config.model_path={root}/none", "--workdir={tmp}/w", *more],
    )


def evaluate(*more):
    return ("rt_jax.evaluate", [PAPER_ZS, "--config.data_dir={data}", "--workdir={tmp}/w", *more])


def export(*more):
    return ("rt_jax.train.export", list(more))


def teacher(action, *more):
    return (
        "rt_jax.teacher.__main__",
        [action, "--cache_dir={tmp}/cache", "--data_dir={data}", "--tasks=coin_flip", *more],
    )


# (command, what the line must say); every case: exit 2, one line, no traceback
CASES = [
    # training: each setting of the run, before the student loads (its model_path does not exist)
    (train("--config.train.num_epochs=0"), "--config.train.num_epochs=0: expected a number >= 1"),
    (train("--config.train.learning_rate=-1"), "--config.train.learning_rate=-1.0: expected a number > 0"),
    (train("--config.rationale_filter=some"), "--config.rationale_filter='some': expected one of correct"),
    (train("--config.max_train_examples=-8"), "--config.max_train_examples=-8: expected a number >= 0"),
    (train("--config.max_rationale_tokens=-1"), "--config.max_rationale_tokens=-1: expected a number >= 0"),
    (train("--config.train.batch_size=0"), "--config.train.batch_size=0"),
    (train("--config.train.grad_accum_steps=0"), "--config.train.grad_accum_steps=0"),
    (train("--config.train.warmup_steps=-1"), "--config.train.warmup_steps=-1"),
    (train("--config.train.weight_decay=-0.1"), "--config.train.weight_decay=-0.1"),
    (train("--config.train.adam_b2=1.5"), "--config.train.adam_b2=1.5: expected a number >= 0 and < 1"),
    (train("--config.train.adam_eps=0"), "--config.train.adam_eps=0.0"),
    (train("--config.train.max_seq_len=0"), "--config.train.max_seq_len=0"),
    (train("--config.train.keep_checkpoints=0"), "--config.train.keep_checkpoints=0"),
    (train("--config.train.log_every_steps=0"), "--config.train.log_every_steps=0"),
    (train("--config.train.checkpoint_every_steps=-1"), "--config.train.checkpoint_every_steps=-1"),
    (train("--config.train.max_steps=-2"), "--config.train.max_steps=-2"),
    (train("--config.train.schedule=bogus"), "--config.train.schedule='bogus': expected one of constant"),
    (train("--config.train.remat=bogus"), "--config.train.remat='bogus'"),
    (train("--config.train.compute_dtype=float8"), "--config.train.compute_dtype='float8'"),
    (train("--config.train.param_dtype=int8"), "--config.train.param_dtype='int8'"),
    (train("--config.eval.max_new_tokens=0"), "--config.eval: decoding max_new_tokens=0: expected >= 1"),
    (train("--config.eval.batch_size=0"), "--config.eval: decoding batch_size=0"),
    (train("--config.eval.strategy=bogus"), "--config.eval: decoding strategy='bogus'"),
    (train("--config.eval.num_beams=0"), "decoding num_beams=0"),
    (train("--config.eval.temperature=-1"), "decoding temperature=-1.0"),
    (train("--config.eval.validation_fraction=1.5"), "--config.eval.validation_fraction=1.5"),
    (train("--config.student=../../escape"), "--config.student='../../escape'"),
    (train("--config.teacher=../x"), "--config.teacher='../x'"),
    (train("--config.teacher_method=a/b"), "--config.teacher_method='a/b'"),
    (train("--config.data.bad_cache_lines=maybe"), "--config.data.bad_cache_lines='maybe': expected one of refuse"),
    (train("--config.method=zs_cot"), "--config.method='zs_cot': expected a fine-tuning method"),
    (train("--config.method=ft_cot_mt", "--config.rationale_weight=0"), "--config.rationale_weight=0.0"),
    (train("--config.task=nope"), "nope"),
    (train("--config.mesh.fsdp=0"), "config.mesh"),
    (train("--config.mesh.data=-1", "--config.mesh.fsdp=-1"), "at most one -1"),
    (train("--config.mesh.data=1", "--config.mesh.tensor=16"), "needs 16 devices"),
    (train("--config.mesh.data=3"), "data-parallel size 3"),
    (train("--config.train.num_epochs=abc"), "--config.train.num_epochs=abc"),
    (train("--config.no_such_field=1"), "unknown config field"),
    (train("--config.method=ft_cot", "--config.teacher_cache_dir={root}/cache"), "teacher cache: 2 bad line(s)"),
    (train("stray"), "unexpected arguments"),
    (("rt_jax.train.__main__", [PAPER_FT, "--workdir={root}/file"]), "--workdir={root}/file: is a file"),
    (("rt_jax.train.__main__", [PAPER_FT, "--workdir={root}/corrupt"]), "config.json:1: not valid JSON"),
    (("rt_jax.train.__main__", [PAPER_FT]), "--workdir is required"),
    (("rt_jax.train.__main__", ["--config={tmp}/nope.py", "--workdir={tmp}/w"]), "No such file or directory"),
    (("rt_jax.train.__main__", ["--config=paper:multiarith,ft,nobody", "--workdir={tmp}/w"]), "nobody"),
    (("rt_jax.train.__main__", [PAPER_FT, "--workdir={root}/other_run"]), "belongs to a run with a different config"),
    # export
    (export("--workdir={root}/run"), "--workdir and --out_dir are required"),
    (export("--workdir={root}/run", "--out_dir={root}/file"), "--out_dir={root}/file: is a file"),
    (export("--workdir={tmp}", "--out_dir={tmp}/out"), "no config snapshot"),
    (export("--workdir={root}/corrupt", "--out_dir={tmp}/out"), "not valid JSON"),
    (export("--workdir={root}/run", "--out_dir={tmp}/out", "--step=first"), "--step=first: expected one of best"),
    (export("--workdir={root}/run", "--out_dir={tmp}/out", "--step=99"), "--step=99: not saved in"),
    (
        export("--workdir={root}/run", "--out_dir={tmp}/out", "--step=latest"),
        "--step=latest: checkpoint step 6 in {root}/run/checkpoints does not restore (",
    ),
    (export("--workdir={root}/stateless", "--out_dir={tmp}/out", "--step=3"), "--step=3: checkpoint step 3 in"),
    (export("--workdir={root}/run", "--out_dir={root}/init", "--step=3"), "already holds a checkpoint"),
    (export("--workdir={root}/run", "--out_dir={tmp}/out", "stray"), "unexpected arguments"),
    # evaluation
    (evaluate("--max_test_examples=-5"), "--max_test_examples=-5: expected >= 0"),
    (evaluate("--self_consistency=-1"), "--self_consistency=-1"),
    (evaluate("--self_consistency=4", "--sc_temperature=0"), "--sc_temperature=0.0: expected > 0"),
    (evaluate("--checkpoint={root}/run", "--params_dir={root}/init"), "give one"),
    (evaluate("--checkpoint={root}/run", "--checkpoint_step=9999"), "--checkpoint_step=9999: not saved in"),
    (evaluate("--checkpoint={root}/run", "--checkpoint_step=latest"), "--checkpoint_step=latest: checkpoint step 6 in"),
    (evaluate("--checkpoint={root}/stateless", "--checkpoint_step=3"), "--checkpoint_step=3: checkpoint step 3"),
    (evaluate("--checkpoint={root}/corrupt"), "not valid JSON"),
    (evaluate("--config.eval.max_new_tokens=0"), "decoding max_new_tokens=0"),
    (evaluate("--config.eval.strategy=bogus"), "decoding strategy='bogus'"),
    (evaluate("--config.student=../../escape"), "--config.student='../../escape'"),
    (evaluate("--config.task=nope"), "nope"),
    (("rt_jax.evaluate", ["--workdir={tmp}/w"]), "--config is required"),
    (("rt_jax.evaluate", [PAPER_ZS]), "--workdir is required"),
    (("rt_jax.evaluate", [PAPER_ZS, "--workdir={root}/file"]), "is a file"),
    # report, sweep, vm, data, teacher
    (("rt_jax.report", ["--workdirs={root}/run", "--out_dir={root}/file"]), "--out_dir={root}/file: is a file"),
    (("rt_jax.report", []), "--workdirs is required"),
    (("rt_jax.report", ["--workdirs={tmp}/none"]), "--workdirs"),
    (("launch.sweep", ["--sweep={tmp}/nope.py"]), "No such file or directory"),
    (("launch.sweep", ["--sweep=nope"]), "neither a file nor a packaged config"),
    (
        (
            "launch.vm",
            [
                "create",
                "--name=a",
                "--zone=us-central2-b",
                "--accelerator_type=v4-8",
                "--queued",
                "--valid_until=soon",
                "--dry_run",
            ],
        ),
        "--valid_until='soon'",
    ),
    (("launch.vm", ["reboot", "--name=a", "--zone=us-central2-b"]), "expected one action"),
    (("rt_jax.data.__main__", ["--data_dir={tmp}/nowhere", "--tasks=multiarith"]), "nowhere: not a folder"),
    (teacher("generate", "--max_retries=-1"), "--max_retries"),
    (teacher("generate", "--limit=-3"), "--limit"),
    (teacher("generate", "--backend=local", "--batch_size=-1"), "--batch_size"),
    (teacher("generate", "--url=ftp://example", "--model=m", "--api_key_env="), "--url"),
    (teacher("bogus"), "expected one action"),
]


def test_the_table_is_big_enough():
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c[0][1])[-70:] for c in CASES])
def test_bad_command_line_is_one_line(case, places, data_dir, tmp_path, monkeypatch, capsys):
    (module, argv), expected = case
    fill = {"root": places, "tmp": tmp_path, "data": data_dir}
    code, stderr = run_command(module, [a.format(**fill) for a in argv], monkeypatch, capsys)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, stderr[-3000:])
    assert "Traceback" not in stderr and expected.format(**fill) in lines[0], lines[0]
    assert not (tmp_path / "w").exists()  # refused before writing anything
