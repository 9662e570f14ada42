"""rt_jax.run_dir: which config fields make a run (identity) and which may change (run control),
results.json's identity fields, the best-epoch rule, the early workdir checks and the lock."""

import json
import os
import signal
import subprocess
import sys

import pytest

from rt_jax import run_dir
from rt_jax.configs import base, paper
from rt_jax.errors import UserError


def config(**fields):
    c = paper.get_config("multiarith,ft_cot,gpt2")
    for dotted, value in fields.items():
        *parents, leaf = dotted.split("__")
        node = c
        for name in parents:
            node = node[name]
        node[leaf] = value
    return c


@pytest.mark.parametrize(
    "field,value",
    [("seed", 1), ("train__learning_rate", 1e-4), ("eval__max_new_tokens", 64), ("teacher", "llama"), ("split", "s")],
)
def test_configs_differing_in_an_identity_field_refuse_each_others_workdir(tmp_path, field, value):
    mine, other = config(), config(**{field: value})
    run_dir.write_snapshot(mine, tmp_path / "a")
    run_dir.write_snapshot(other, tmp_path / "b")
    dotted = field.replace("__", ".")
    for snapshot_of, workdir, intruder in ((mine, "a", other), (other, "b", mine)):
        with pytest.raises(UserError, match=rf"different config \({dotted}: ") as e:
            run_dir.check(intruder, tmp_path / workdir)
        assert str(e.value).startswith(f"{tmp_path / workdir / 'config.json'}: this workdir belongs to a run")
        run_dir.check(snapshot_of, tmp_path / workdir)  # its own run comes back


def test_run_control_fields_may_differ(tmp_path):
    run_dir.write_snapshot(config(), tmp_path)
    snapshot = (tmp_path / "config.json").read_bytes()
    resumed = config(
        train__max_steps=7,
        train__log_every_steps=1,
        train__checkpoint_every_steps=3,
        train__keep_checkpoints=9,
        distributed__process_id=1,
        distributed__coordinator_address="10.0.0.2:1234",
    )
    run_dir.check(resumed, tmp_path)
    run_dir.write_snapshot(resumed, tmp_path)
    assert (tmp_path / "config.json").read_bytes() == snapshot  # the first run's snapshot stays


def test_an_old_snapshot_without_a_new_field_is_its_default(tmp_path):
    """A snapshot written before `teacher_method` existed is the run of today's config with the
    field at its default, and of no other."""
    saved = json.loads(config().to_json_best_effort())
    del saved["teacher_method"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert base.get_config().teacher_method == ""
    run_dir.check(config(), tmp_path)
    with pytest.raises(UserError, match=r"teacher_method: '' there, 'zs_cot_t100' here"):
        run_dir.check(config(teacher_method="zs_cot_t100"), tmp_path)
    # a field that base.py does not have either is a difference when one side lacks it
    extra = config()
    extra.demo = {"steps": 5}
    with pytest.raises(UserError, match=r"demo.steps: absent there, 5 here"):
        run_dir.check(extra, tmp_path)


def test_the_message_names_the_fields_and_both_values(tmp_path):
    """The evaluate command's and training's refusal: one message, the first three fields."""
    run_dir.write_snapshot(config(), tmp_path)
    other = config(task="svamp", seed=3, train__batch_size=2, eval__batch_size=2)
    with pytest.raises(UserError) as e:
        run_dir.check(other, tmp_path)
    assert str(e.value) == (
        f"{tmp_path / 'config.json'}: this workdir belongs to a run with a different config "
        "(seed: 0 there, 3 here; task: 'multiarith' there, 'svamp' here; eval.batch_size: 32 there, 2 here; "
        "and 1 more); use a new --workdir"
    )


def test_results_record_split_teacher_data_and_overrides():
    c = config(split="s2", seed=2, teacher="llama", teacher_method="zs_cot_t100", train__learning_rate=1e-4)
    c.teacher_cache_dir = "/cache"
    epochs = [{"epoch": 0, "accuracy": 10.0}, {"epoch": 1, "accuracy": 30.0}, {"epoch": 2, "accuracy": 30.0}]
    results = run_dir.results(c, epochs, 5.0, teacher_data=run_dir.teacher_data(c))
    assert (results["task"], results["method"], results["student"], results["seed"]) == (
        "multiarith",
        "ft_cot",
        "gpt2",
        2,
    )
    assert results["split"] == "s2"
    assert results["teacher"] == {
        "name": "llama",
        "cache_method": "zs_cot_t100",
        "num_rationales": 1,
        "cache_dir": "/cache",
        "rationales_used": None,  # not known without the training data
        "rationales_filtered_out": None,
    }
    # compared with the paper's run of the same task, method, student and seed
    assert results["defaults"] == "paper:multiarith,ft_cot,gpt2,2"
    assert results["overrides"] == {
        "split": "s2",
        "teacher": "llama",
        "teacher_cache_dir": "/cache",
        "teacher_method": "zs_cot_t100",
        "train.learning_rate": 1e-4,
    }
    assert results["best"] == {"epoch": 1, "accuracy": 30.0} and results["final"] == {"epoch": 2, "accuracy": 30.0}
    # a run outside the paper's grid is compared with base.py
    c.student, c.model_path = "tiny", "/m"
    assert run_dir.results(c, epochs, 5.0)["defaults"] == "base"


def test_best_is_the_earliest_of_equal_epochs():
    epochs = [
        {"epoch": e, "accuracy": a, "validation_accuracy": v} for e, a, v in ((0, 0.0, 5), (1, 0.0, 5), (2, 0.0, 4))
    ]
    assert run_dir.best(epochs)["epoch"] == 0
    assert run_dir.best(epochs, "validation_accuracy")["epoch"] == 0
    assert run_dir.best([{"epoch": 0, "accuracy": None}]) is None
    assert run_dir.rank(50.0, 3) > run_dir.rank(50.0, 4) and run_dir.rank(51.0, 4) > run_dir.rank(50.0, 3)


def test_bad_workdirs_are_one_line_errors_before_anything_is_written(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(UserError, match=rf"^--workdir={file}: is a file; expected a folder"):
        run_dir.check(config(), file)
    with pytest.raises(UserError, match=rf"^--workdir={file / 'run'}: cannot be created, {file} is a file$"):
        run_dir.check(config(), file / "run")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text('{"task": "multiarith",\n  oops')
    with pytest.raises(UserError, match=rf"^{corrupt / 'config.json'}:2: not valid JSON"):
        run_dir.check(config(), corrupt)
    (corrupt / "config.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="expected a JSON object"):
        run_dir.check(config(), corrupt)
    run_dir.check(config(), tmp_path / "new" / "run")  # a workdir to create: nothing created yet
    assert not (tmp_path / "new").exists()


def test_a_held_lock_refuses_a_second_run(tmp_path):
    with run_dir.lock(tmp_path / "w"):
        assert (tmp_path / "w" / "run.lock").read_text() == f"pid {os.getpid()} on {os.uname().nodename}\n"
        with pytest.raises(UserError, match=r"a run is already going on in it \(pid \d+ on .*\); wait for it"):
            with run_dir.lock(tmp_path / "w"):
                pass
    with run_dir.lock(tmp_path / "w"):  # released at the end of the first
        pass


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    """The teacher cache's rule: a lock file whose holder died is no lock (the kernel dropped it)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from rt_jax import run_dir\n"
            f"with run_dir.lock({str(tmp_path / 'w')!r}):\n    print('locked', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=f"pid {holder.pid} on"):
            with run_dir.lock(tmp_path / "w"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / "w" / "run.lock").read_text().startswith(f"pid {holder.pid} ")  # stale, left behind
    with run_dir.lock(tmp_path / "w"):
        assert (tmp_path / "w" / "run.lock").read_text().startswith(f"pid {os.getpid()} ")
