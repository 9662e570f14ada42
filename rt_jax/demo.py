"""The offline demo: the whole Fine-tune-CoT pipeline in miniature, `python -m rt_jax.demo`.

No network; about 15 minutes on a 2-core CPU (14 min 58 s measured on an otherwise idle 2-core
machine; 8-15 minutes on a laptop-class one; far longer on a machine shared with other jobs):
1. a synthetic task (`arith_small`, rt_jax.tasks.synthetic) written as a task of rt_jax.tasks;
2. a rule-based teacher (rt_jax.teacher.rule_based) that writes varied rationales, some with
   slips, into the real teacher cache through rt_jax.teacher.generate (greedy, and D samples
   at temperature 0.7);
3. a small byte-level GPT-2 with rotary positions, initialised from scratch;
4. zero-shot, vanilla fine-tuning, Fine-tune-CoT and diverse reasoning (D=2, 4), each trained by the real
   training loop (rt_jax.train.loop) and decoded and scored by the real modules;
5. a table of accuracy and wall time, printed and saved (demo_results.md / .json in --out_dir),
   and rt_jax.report's tables and plots of the runs (report/ in --out_dir).

It says at the start where everything goes; each training progress line starts with its
[method] (two runs train side by side), and an `overall:` line gives the demo's ETA.

Re-running with the same --out_dir reuses finished runs; an unfinished one trains again from
its start (the demo checkpoints only its last epoch); nothing already written is replaced.
Delete the folder to start over.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import resource
import sys
import threading
import time

from absl import flags, logging
from ml_collections import config_flags

from rt_jax import configs, methods, report, run_dir
from rt_jax.cli import run_main
from rt_jax.configs import demo as demo_config
from rt_jax.errors import UserError

DEMO_CONFIG = str(configs.path("demo"))  # the packaged rt_jax/configs/demo.py
STUDENT_DIR = "student_init"  # under --out_dir: the from-scratch student's initial weights
REPORT_DIR = "report"  # under --out_dir: rt_jax.report's tables and plots of the demo's runs
TITLES = {"zs": "Zero-shot", "ft": "Vanilla fine-tuning", "ft_cot": "Fine-tune-CoT"}


def title(method: str) -> str:
    d = methods.degree(method)
    return f"Fine-tune-CoT, diverse reasoning (D={d})" if d else TITLES.get(method, method)


@dataclasses.dataclass
class Row:
    method: str
    title: str
    train_examples: int  # training pairs after the correctness filter (0: no training)
    accuracy: float
    num_test: int
    wall_time_s: float
    cpu_time_s: float | None = None  # user + system CPU of this process (None when reused)
    reused: bool = False


# ---- the steps --------------------------------------------------------------------------------


def make_task(config, out: pathlib.Path):
    """The synthetic task's files under out/data (a data_dir like ../shared/data)."""
    from rt_jax.tasks import synthetic

    d = config.demo
    problems, train, test = synthetic.make_split(d.num_train, d.num_test, seed=config.seed)
    synthetic.write_task_files(out / "data", problems, train, test)
    return problems, train, test


def fill_teacher_cache(config, out: pathlib.Path, problems, train, degrees) -> dict:
    """Greedy and temperature-0.7 rationales of the training questions into the real cache;
    returns the teacher's share of correct rationales."""
    from rt_jax.tasks import load_dataset, synthetic
    from rt_jax.teacher.generate import generate_rationales, method_name
    from rt_jax.teacher.rule_based import RuleBasedTeacher
    from rt_jax.teacher.store import RationaleStore

    store = RationaleStore(out / "teacher_cache")
    teacher = RuleBasedTeacher(problems, error_rate=config.demo.error_rate, seed=config.seed)
    examples = load_dataset(synthetic.TASK_NAME, out / "data").select(train)
    stats = {}
    for temperature, count in ((0.0, 1), (0.7, max(degrees, default=0))):
        if count:
            generate_rationales(
                store,
                teacher,
                synthetic.TASK_NAME,
                examples,
                config.teacher,
                count,
                temperature,
                seed=config.seed,
                progress=False,
            )
            method = method_name(temperature)
            records = store.read(config.teacher, method, synthetic.TASK_NAME)
            stats[method] = 100.0 * sum(r.correct for r in records) / len(records)
    return stats


def make_student(config, out: pathlib.Path) -> pathlib.Path:
    """The from-scratch student's initial weights and byte tokenizer, saved once."""
    import transformers

    from rt_jax import models
    from rt_jax.models.byte_tokenizer import ByteTokenizer

    directory = out / STUDENT_DIR
    if (directory / "config.json").exists():
        return directory
    d, tok = config.demo, ByteTokenizer()
    hf_config = transformers.GPT2Config(
        vocab_size=tok.vocab_size,
        n_positions=d.n_positions,
        n_embd=d.n_embd,
        n_layer=d.n_layer,
        n_head=d.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    loaded = models.from_config(hf_config, seed=config.seed, tokenizer=tok, position_embedding=d.position_embedding)
    models.save_pretrained(loaded, directory)
    return directory


def run_config(config, method: str, out: pathlib.Path, config_file: str = DEMO_CONFIG):
    """The run of `method`: `config` with the per-method fields of `config_file`'s
    get_config(method) and the demo's folders under `out`."""
    try:
        per_method = configs.load(f"{config_file}:{method}")
        num_rationales, max_new_tokens = per_method.num_rationales, per_method.eval.max_new_tokens
    except UserError as e:
        raise UserError(f"--config={config_file}: {e}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise UserError(
            f"--config={config_file}: get_config({method!r}) failed ({type(e).__name__}: {e}); "
            "expected a demo config like rt_jax/configs/demo.py"
        ) from None
    c = config.copy_and_resolve_references()
    c.method, c.num_rationales, c.eval.max_new_tokens = method, num_rationales, max_new_tokens
    c.data_dir, c.teacher_cache_dir = str(out / "data"), str(out / "teacher_cache")
    c.model_path = str(out / STUDENT_DIR)
    return c


def check_config(config, config_file: str) -> None:
    """A UserError unless `config` is a demo config: task arith_small, every field the packaged
    demo config has."""
    from rt_jax.tasks import synthetic

    if config.get("task") != synthetic.TASK_NAME:
        raise UserError(f"--config={config_file}: the demo runs task {synthetic.TASK_NAME}, not {config.get('task')!r}")
    missing = sorted(_dotted_keys(configs.load(f"{DEMO_CONFIG}:ft_cot")) - _dotted_keys(config))
    if missing:
        raise UserError(
            f"--config={config_file}: no field {', '.join(missing[:3])}; expected every field of rt_jax/configs/demo.py"
        )


def _dotted_keys(config, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in config.items():
        keys.add(prefix + key)
        if hasattr(value, "items"):
            keys |= _dotted_keys(value, f"{prefix}{key}.")
    return keys


def run_method(config, workdir: pathlib.Path) -> Row:
    """Trains (or only evaluates, for zs) one method; reuses a finished run in `workdir`."""
    from rt_jax import evaluation
    from rt_jax.student import load_student
    from rt_jax.train import loop

    loop.ensure_task(config)  # a worker process reads the task from config.data_dir
    results_path = workdir / run_dir.RESULTS_FILE
    cpu_start = _cpu_seconds()
    num_pairs = 0
    if config.method != "zs":
        loaded = load_student(config)
        data = loop.build_data(config, loaded)
        num_pairs = len(data.pairs)
        # about demo.steps steps, in whole epochs (the schedule and evaluation work per epoch)
        config.train.num_epochs = max(1, round(config.demo.steps / data.iterator.steps_per_epoch))
    reused = _finished(results_path)
    if reused:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    elif config.method == "zs":
        results = evaluation.run_evaluation(config, workdir)
    else:
        results = loop.train(config, workdir, loaded=loaded, data=data, label=config.method)
    last = results["epochs"][-1]
    return Row(
        config.method,
        title(config.method),
        num_pairs,
        results["final"]["accuracy"],
        last["num_test"],
        results["wall_time_s"],
        None if reused else _cpu_seconds() - cpu_start,
        reused,
    )


class OverallProgress:
    """The whole demo's training steps, read from each run's metrics.jsonl every `every_s`
    seconds by a thread, and an ETA from the steps per second so far (all runs together, so
    runs side by side count as they go). Each training run plans about demo.steps steps; the
    test-set evaluation after each run is not in the ETA."""

    def __init__(self, jobs: dict, say, every_s: float):
        self.say, self.every_s = say, every_s
        self.logs = {m: w / run_dir.METRICS_FILE for m, (_, w) in jobs.items() if m != "zs"}
        self.planned = sum(jobs[m][0].demo.steps for m in self.logs)
        self.start, self.start_done, self.last_done = time.perf_counter(), self.done(), None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report_every, daemon=True)

    def done(self) -> int:
        from rt_jax.train import metrics

        return sum(metrics.last_steps(path).get("train", 0) for path in self.logs.values())

    def line(self, done: int) -> str:
        rate = (done - self.start_done) / max(time.perf_counter() - self.start, 1e-9)
        left = max(self.planned - done, 0)
        eta = time.strftime("%H:%M:%S", time.gmtime(left / rate))
        return f"overall: {min(done, self.planned)}/{self.planned} training steps, ETA {eta} (then the evaluations)"

    def _report_every(self):
        while not self._stop.wait(self.every_s):
            done = self.done()
            if done not in (self.last_done, self.start_done):  # nothing new while every run evaluates
                self.last_done = done
                self.say(self.line(done))

    def __enter__(self):
        if self.planned:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _cost(method: str) -> int:
    """Rough training cost, to start the longest runs first (diverse > Fine-tune-CoT > ft > zs)."""
    fixed = {"zs": 0, "ft": 1, "ft_cot": 2}
    return fixed[method] if method in fixed else 2 + methods.degree(method)


def _run_all(jobs: dict, workers: int, say):
    """Yields the Row of each (config, workdir) in `jobs` as it finishes."""
    if workers <= 1 or len(jobs) <= 1:
        for method, (config, workdir) in jobs.items():
            say(f"{title(method)}: {'evaluating' if method == 'zs' else 'training'} ...")
            yield run_method(config, workdir)
        return
    import concurrent.futures
    import multiprocessing

    # spawn: a forked child would inherit this process's JAX runtime and threads
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_set_up_worker
    )
    with pool:
        futures = []
        for method in sorted(jobs, key=_cost, reverse=True):
            futures.append(pool.submit(run_method, *jobs[method]))
        say(f"running {', '.join(sorted(jobs, key=_cost, reverse=True))}, {workers} at a time ...")
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def _set_up_worker():
    """Before a worker starts JAX: its XLA:CPU computes on one thread (the runs side by side share
    the cores) and it keeps freed host memory, as every rt_jax command does (rt_jax.cli)."""
    import os

    from rt_jax import host_memory

    host_memory.keep_freed_memory()

    flags = os.environ.get("XLA_FLAGS", "")
    if "multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()


def _cpu_seconds() -> float:
    """CPU time of this process, all threads: on a shared machine, the work a run did."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _finished(results_path: pathlib.Path) -> bool:
    if not results_path.exists():
        return False
    results = json.loads(results_path.read_text(encoding="utf-8"))
    return bool(results.get("final")) and results["final"].get("accuracy") is not None


# ---- the table --------------------------------------------------------------------------------


def markdown(rows, teacher_stats: dict, config) -> str:
    d = config.demo
    lines = [
        f"Fine-tune-CoT demo: {config.task}, {d.num_train} training / {d.num_test} test questions, "
        f"{d.n_layer}-layer byte-level GPT-2 (d_model {d.n_embd}, {d.position_embedding} positions) "
        f"from scratch, ~{d.steps} steps of {config.train.batch_size}.",
        "",
    ]
    if teacher_stats:
        shares = ", ".join(
            f"{v:.1f}% of {'greedy' if k == 'zs_cot' else 'temperature-0.7'} rationales"
            for k, v in teacher_stats.items()
        )
        lines += [
            f"Rule-based teacher (error rate {d.error_rate}): correct on {shares}; only correct ones are trained on.",
            "",
        ]
    lines += ["| method | training examples | accuracy (%) | wall time (s) | CPU time (s) |", "|---|---|---|---|---|"]
    for r in rows:
        cpu = "reused" if r.cpu_time_s is None else f"{r.cpu_time_s:.0f}"
        lines.append(f"| {r.title} | {r.train_examples} | {r.accuracy:.1f} | {r.wall_time_s:.0f} | {cpu} |")
    return "\n".join(lines) + "\n"


def run_demo(
    config,
    out_dir,
    methods=demo_config.METHODS,
    stream=sys.stdout,
    workers: int = 1,
    config_file: str = DEMO_CONFIG,
    eta_every_s: float = 60.0,
) -> list[Row]:
    """The whole demo; returns the table's rows and writes demo_results.md / .json. `config` is
    `config_file`'s (with overrides); each method's own fields come from its get_config(method).

    workers > 1 runs that many methods at once, each in its own process: a model this small
    keeps one core busy, not two (XLA:CPU ran a step 1.4x faster on 2 cores than on 1), so
    two one-thread runs side by side finish the demo sooner than one after the other. Every
    `eta_every_s` seconds of training it prints the steps done and an overall ETA."""
    checked = []
    for method in methods:
        try:
            checked.append(demo_config.check_method(method))
        except UserError as e:
            raise UserError(f"--methods: {e}") from None
    check_config(config, config_file)
    out = pathlib.Path(out_dir)
    jobs = {m: (run_config(config, m, out, config_file), out / "runs" / m) for m in methods}  # checked before writing
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    def say(text):
        print(f"[demo {time.perf_counter() - start:5.0f}s] {text}", file=stream, flush=True)

    say(
        f"writing under {out}: task data {out / 'data'}, teacher cache {out / 'teacher_cache'}, "
        f"runs {out / 'runs'}/<method>, table {out / 'demo_results.md'}, report and plots {out / REPORT_DIR}"
    )
    problems, train, test = make_task(config, out)
    say(f"task {config.task}: {len(train)} training / {len(test)} test questions in {out / 'data'}")
    degrees = [m.degree for m in checked if m.degree]
    if any(m.rationale_source for m in checked):
        teacher_stats = fill_teacher_cache(config, out, problems, train, degrees)
        say(
            f"teacher cache {out / 'teacher_cache'}: "
            + ", ".join(f"{k} {v:.1f}% correct" for k, v in teacher_stats.items())
        )
    else:
        teacher_stats = {}
    make_student(config, out)
    done = {}

    def finish(row):
        reused = ", reused" if row.reused else ""
        say(f"{row.title}: {row.accuracy:.1f}% on {row.num_test} test questions ({row.wall_time_s:.0f} s{reused})")
        done[row.method] = row

    for method, (c, workdir) in jobs.items():
        if _finished(workdir / run_dir.RESULTS_FILE):
            say(f"{method}: reused finished run {workdir}")
            finish(run_method(c, workdir))  # here: only its training examples are counted again
    to_run = {m: job for m, job in jobs.items() if m not in done}
    with OverallProgress(to_run, say, eta_every_s):
        for row in _run_all(to_run, workers, say):
            finish(row)
    rows = [done[m] for m in methods]
    table = markdown(rows, teacher_stats, config)
    (out / "demo_results.md").write_text(table, encoding="utf-8")
    (out / "demo_results.json").write_text(
        json.dumps(
            {
                "rows": [dataclasses.asdict(r) for r in rows],
                "teacher_correct_percent": teacher_stats,
                "total_wall_time_s": time.perf_counter() - start,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print("\n" + table, file=stream, flush=True)
    # Every method trains ~demo.steps steps: its train.num_epochs follows from its data size, so
    # it does not make the diverse-reasoning runs different recipes in the report's D figure.
    workdirs = [workdir for _, workdir in jobs.values()]
    written = report.build_report(workdirs, out / REPORT_DIR, same_recipe_fields=("train.num_epochs",))
    say(f"done; table saved to {out / 'demo_results.md'}; report: {', '.join(str(p) for p in written.values())}")
    return rows


FLAGS = flags.FLAGS


def define_flags():
    """The command's flags; defined on start, so that one app may import another's module."""
    config_flags.DEFINE_config_file(
        "config", DEMO_CONFIG, "Demo config (sizes, steps, teacher error rate); default: the packaged demo."
    )
    flags.DEFINE_string("out_dir", "demo_out", "Where the demo's data, teacher cache, runs and table go.")
    flags.DEFINE_list("methods", list(demo_config.METHODS), "Methods to run, in table order.")
    flags.DEFINE_integer(
        "workers",
        2,
        "Methods trained at once, each in its own one-thread process "
        "(2 suits 2 CPU cores; 1 runs them one after the other).",
    )


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # checkpoint libraries log every save at INFO
    config_file = FLAGS["config"].config_filename.partition(":")[0]  # per-method fields come from it
    run_demo(FLAGS.config, FLAGS.out_dir, FLAGS.methods, workers=FLAGS.workers, config_file=config_file)


def run():
    run_main(main, define_flags)


if __name__ == "__main__":
    run()
