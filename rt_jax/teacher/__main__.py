"""python -m rt_jax.teacher <action>: fill, inspect and convert the teacher-rationale cache.

  import_kojima  Kojima et al.'s Zero-shot-CoT logs (text-davinci-002) -> cache
  import_rt      reasoning-teacher CompletionDataset JSON files (--rt_files) -> cache
  export_rt      one shard (--teacher, --method, --tasks=<one task>) -> CompletionDataset JSON (--out)
  generate       Zero-shot-CoT with a teacher: --backend=http (an OpenAI-compatible server, --api=completions
                 or chat) or local (a checkpoint run by rt_jax, sharded over --mesh, in --dtype, its chat
                 template applied: rt_jax.teacher.local)
  batch_write    the next step's requests of every missing completion as OpenAI Batch API files (--out, a new
                 folder); the same flags as generate (rt_jax.teacher.batch)
  batch_import   Batch API output files (--batch_files) into the cache; the flags of batch_write
  stats          per task: samples, completions, teacher accuracy (all / test), training samples with a
                 correct rationale, mean correct rationales per training sample, distinct rationales, and the
                 prompt / completion tokens the server reported

Bad records, blocks or files are reported one per line (file:line: why) and skipped; the exit status
is then 1 and the last line says how many. A shard whose cut last line a writer repaired is reported
as repaired (nothing lost; exit 0). Usage errors, and a teacher that cannot be reached or answers
wrongly, print one line and exit 2; what was written before stays.
"""

import json
import os
import sys

from absl import flags

from rt_jax.cli import run_main
from rt_jax.errors import UserError

ACTIONS = ("import_kojima", "import_rt", "export_rt", "generate", "batch_write", "batch_import", "stats")

FLAGS = flags.FLAGS


def define_flags() -> None:
    from rt_jax.teacher.local import CHAT_TEMPLATE, DTYPES

    flags.DEFINE_string("cache_dir", "teacher_cache", "Root of the rationale cache.")
    flags.DEFINE_string("data_dir", "../shared/data", "Raw task files, splits and Kojima logs.")
    flags.DEFINE_string("kojima_logs", None, "Folder of <name>_zero_shot_cot.log files (default: under --data_dir).")
    flags.DEFINE_list("tasks", [], "Tasks to act on (default: all).")
    flags.DEFINE_string("teacher", "text-davinci-002", "Teacher id (a cache folder name).")
    flags.DEFINE_string("method", None, "Method id, e.g. zs_cot, zs_cot_t70 (default: zs_cot, or from --temperature).")
    flags.DEFINE_list("rt_files", [], "reasoning-teacher CompletionDataset JSON files to import.")
    flags.DEFINE_string("out", None, "export_rt: output JSON path; batch_write: a new folder (neither may exist).")
    flags.DEFINE_bool("json", False, "stats: print JSON {task: {...}} instead of a table.")
    flags.DEFINE_enum("backend", "http", ["http", "local"], "generate: the teacher backend.")
    flags.DEFINE_enum(
        "api", "completions", ["completions", "chat"], "http: <url>/completions or <url>/chat/completions."
    )
    flags.DEFINE_string(
        "url",
        "https://api.openai.com/v1",
        "http: base URL; a query string is kept after the path (its values are secret).",
    )
    flags.DEFINE_string("model", None, "http: model name sent to the API; local: the checkpoint folder.")
    flags.DEFINE_string(
        "mesh",
        None,
        "local: data=N,fsdp=N,tensor=N sizes of the device mesh the teacher is sharded over, as config.mesh "
        "(an axis left out is 1, one size may be -1); they must use every device (default: one device).",
    )
    flags.DEFINE_enum("dtype", "float32", list(DTYPES), "local: parameter and compute dtype.")
    flags.DEFINE_enum(
        "chat_template",
        "auto",
        list(CHAT_TEMPLATE),
        "local: send the chat conversation (as --api=chat) in the tokenizer's chat template; auto: when it has one.",
    )
    flags.DEFINE_string("api_key_env", "OPENAI_API_KEY", "http: environment variable holding the API key ('' = none).")
    flags.DEFINE_integer("concurrency", 8, "http: parallel requests.", lower_bound=1)
    flags.DEFINE_float("rate_limit", 0.0, "http: most requests per second (0 = no limit).", lower_bound=0.0)
    flags.DEFINE_integer("max_retries", 6, "http: retries of a request on 429/5xx/network errors.", lower_bound=0)
    flags.DEFINE_multi_string(
        "stop", [], r"http: stop strings; repeat the flag or give a comma list (escapes: \n \t \\ \,)."
    )
    flags.DEFINE_string("extra_body", None, "http: more request fields as a JSON object, e.g. '{\"top_p\": 0.95}'.")
    flags.DEFINE_integer(
        "answers_per_request",
        20,
        "http, --api=completions: answer-step prompts per request (a list prompt).",
        lower_bound=1,
    )
    flags.DEFINE_list("batch_files", [], "batch_import: Batch API output files.")
    flags.DEFINE_enum("split", "train", ["train", "test", "all"], "generate: which samples.")
    flags.DEFINE_integer("limit", 0, "generate: only the first N samples of the split (0 = all).", lower_bound=0)
    flags.DEFINE_integer(
        "num_completions", 1, "generate: completions per sample (D of diverse reasoning).", lower_bound=1
    )
    flags.DEFINE_float(
        "temperature", 0.0, "generate: sampling temperature of the reasoning step (0 = greedy).", lower_bound=0.0
    )
    flags.DEFINE_integer("max_reasoning_tokens", 128, "generate: token limit of the rationale.", lower_bound=1)
    flags.DEFINE_integer("max_answer_tokens", 32, "generate: token limit of the answer step.", lower_bound=1)
    flags.DEFINE_integer(
        "batch_size",
        None,
        "generate: completions per chunk, written after each (default: local 16, also its decoding batch; "
        "http --concurrency x the larger of --num_completions and --answers_per_request).",
        lower_bound=1,
    )
    flags.DEFINE_integer("seed", 0, "generate: sampling seed.")


def _tasks() -> list[str]:
    from rt_jax.tasks import TASKS

    unknown = [t for t in FLAGS.tasks if t not in TASKS]
    if unknown:
        raise UserError(f"--tasks: unknown {unknown}; expected some of {', '.join(TASKS)}")
    return list(FLAGS.tasks) or list(TASKS)


def _store(repairs: list[str], must_exist: bool = False):
    """The cache at --cache_dir; readers (stats, export) need one that exists already."""
    from rt_jax.teacher.store import RationaleStore

    if must_exist and not os.path.isdir(FLAGS.cache_dir):
        raise UserError(
            f"--cache_dir={FLAGS.cache_dir}: no such folder; fill a cache first with "
            "import_kojima, import_rt or generate"
        )
    return RationaleStore(FLAGS.cache_dir, repairs)


def import_kojima(problems: list[str], repairs: list[str]) -> None:
    from rt_jax.teacher.import_kojima import LOG_NAMES, LOG_SUFFIX, import_log, kojima_logs, what_the_logs_lack

    wanted = set(_tasks())
    store = _store(repairs)
    print(
        f"{'task':28s}{'blocks':>8s}{'matched':>9s}{'written':>9s}{'cached':>8s}{'kojima%':>9s}"
        f"{'ours%':>9s}{'train w/ correct':>18s}"
    )
    reports = []
    for log in kojima_logs(FLAGS.kojima_logs or FLAGS.data_dir):
        if LOG_NAMES[log.name[: -len(LOG_SUFFIX)]] not in wanted:
            continue
        r = import_log(store, log, FLAGS.data_dir, problems)
        reports.append(r)
        fmt = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
        print(
            f"{r.task:28s}{r.blocks:8d}{r.matched:9d}{r.written:9d}{r.already_cached:8d}"
            f"{fmt(r.kojima_accuracy):>9s}{fmt(r.accuracy):>9s}{r.train_with_correct:18d}"
        )
    for note in what_the_logs_lack(reports, store):
        print(note)


def import_rt(problems: list[str], repairs: list[str]) -> None:
    from rt_jax.teacher.reasoning_teacher import import_rt_file

    if not FLAGS.rt_files:
        raise UserError("import_rt: give --rt_files=<file.json>[,...]")
    store = _store(repairs)
    for path in FLAGS.rt_files:
        counts = import_rt_file(store, path, FLAGS.data_dir, problems)
        print(f"{path}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def export_rt(problems: list[str], repairs: list[str]) -> None:
    from rt_jax.teacher.reasoning_teacher import export_rt as export
    from rt_jax.teacher.reasoning_teacher import write_json_new

    if len(FLAGS.tasks) != 1 or not FLAGS.out:
        raise UserError("export_rt: give one task (--tasks=<task>) and --out=<new file.json>")
    obj = export(
        _store(repairs, must_exist=True),
        FLAGS.teacher,
        FLAGS.method or "zs_cot",
        FLAGS.tasks[0],
        FLAGS.data_dir,
        problems,
    )
    write_json_new(FLAGS.out, obj)
    print(f"{FLAGS.out}: {sum(len(v) for v in obj['data'].values())} completions of {len(obj['data'])} samples")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", ",": ","}


def _stop_strings() -> tuple[str, ...]:
    """--stop values: each a comma list, with \\n \\t \\r \\\\ and \\, as escapes."""
    out = []
    for value in FLAGS.stop:
        piece, chars = "", iter(value)
        for ch in chars:
            if ch == "\\":
                nxt = next(chars, "")
                if nxt not in _ESCAPES:
                    raise UserError(f"--stop={value!r}: unknown escape \\{nxt}; expected one of \\n \\t \\r \\\\ \\,")
                piece += _ESCAPES[nxt]
            elif ch == ",":
                out.append(piece)
                piece = ""
            else:
                piece += ch
        out.append(piece)
    if "" in out:
        raise UserError(f"--stop={','.join(FLAGS.stop)!r}: an empty stop string")
    return tuple(out)


def _refuse_http_flags() -> None:
    for name in ("api", "stop", "extra_body"):
        if FLAGS[name].present:
            raise UserError(f"--{name} is for --backend=http; the local backend takes no such fields")


def _refuse_local_flags() -> None:
    for name in ("mesh", "dtype", "chat_template"):
        if FLAGS[name].present:
            raise UserError(f"--{name} is for --backend=local; a server has its own")


def _model() -> str:
    if not FLAGS.model:
        raise UserError("--model: give the API model name (http) or an rt_jax model name or path (--backend=local)")
    return FLAGS.model


def _api_format():
    """The requests of --backend=http: --api, --model, --stop, --extra_body, --answers_per_request."""
    from rt_jax.teacher.openai_api import ApiFormat

    if FLAGS.backend != "http":
        _refuse_http_flags()
        raise UserError("--backend=local: batch files hold requests to an HTTP API; use --backend=http")
    extra = {}
    if FLAGS.extra_body is not None:
        try:
            extra = json.loads(FLAGS.extra_body)
        except json.JSONDecodeError as e:
            raise UserError(f"--extra_body: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(extra, dict):
            raise UserError(f"--extra_body: expected a JSON object {{...}}, got {type(extra).__name__}")
    return ApiFormat(FLAGS.api, _model(), _stop_strings(), extra, FLAGS.answers_per_request)


def _backend():
    from rt_jax.teacher import backends, local

    if FLAGS.backend == "http":
        _refuse_local_flags()
        return backends.HttpBackend(
            FLAGS.url,
            _api_format(),
            FLAGS.api_key_env or None,
            concurrency=FLAGS.concurrency,
            requests_per_second=FLAGS.rate_limit,
            max_retries=FLAGS.max_retries,
        )
    _refuse_http_flags()
    return local.load_teacher(FLAGS.model, FLAGS.mesh, FLAGS.dtype, FLAGS.chat_template, FLAGS.batch_size or 16)


def _check_sampling() -> None:
    if FLAGS.num_completions > 1 and FLAGS.temperature == 0:
        raise UserError("--num_completions > 1 needs --temperature > 0 (greedy repeats itself)")


def _examples(task: str, problems: list[str]):
    """The examples of --split (the first --limit of them) that the data has."""
    from rt_jax.tasks import load_dataset, load_split

    dataset = load_dataset(task, FLAGS.data_dir)
    split = load_split(task, FLAGS.data_dir)
    indices = {"train": split.train, "test": split.test, "all": split.train + split.test}[FLAGS.split]
    available = [i for i in sorted(indices) if i in dataset]
    if len(available) < len(indices):
        problems.append(
            f"{task}: {len(indices) - len(available)} sample(s) of the {FLAGS.split} split are not "
            f"available and were skipped ({'; '.join(dataset.missing)})"
        )
    return dataset.select(available[: FLAGS.limit or None])


def _method() -> str:
    from rt_jax.teacher.generate import method_name

    return FLAGS.method or method_name(FLAGS.temperature)


def generate(problems: list[str], repairs: list[str]) -> None:
    from rt_jax.teacher.generate import generate_rationales

    _check_sampling()
    tasks = _tasks()
    backend, store = _backend(), _store(repairs)
    # http: enough per chunk to keep --concurrency requests in flight in both steps
    busy = FLAGS.concurrency * max(FLAGS.num_completions, FLAGS.answers_per_request)
    chunk = FLAGS.batch_size or (busy if FLAGS.backend == "http" else 16)
    for task in tasks:
        report = generate_rationales(
            store,
            backend,
            task,
            _examples(task, problems),
            FLAGS.teacher,
            FLAGS.num_completions,
            FLAGS.temperature,
            _method(),
            max_reasoning_tokens=FLAGS.max_reasoning_tokens,
            max_answer_tokens=FLAGS.max_answer_tokens,
            chunk_size=chunk,
            seed=FLAGS.seed,
            problems=problems,
        )
        usage = "".join(f" {k}={v}" for k, v in (report.usage or {}).items())
        print(f"{task}: requested={report.requested} cached={report.cached} written={report.written}{usage}")


def batch_write(problems: list[str], repairs: list[str]) -> None:
    from rt_jax.teacher.batch import RequestFiles, write_requests

    _check_sampling()
    if not FLAGS.out:
        raise UserError("batch_write: give --out=<new folder> for the request files")
    tasks, api_format, store = _tasks(), _api_format(), _store(repairs)
    files = RequestFiles(FLAGS.out)
    try:
        for task in tasks:
            counts = write_requests(
                store,
                files,
                api_format,
                task,
                _examples(task, problems),
                FLAGS.teacher,
                _method(),
                FLAGS.num_completions,
                FLAGS.temperature,
                FLAGS.max_reasoning_tokens,
                FLAGS.max_answer_tokens,
                FLAGS.seed,
                problems,
            )
            print(", ".join(f"{k}={v}" for k, v in counts.items()))
    finally:
        files.close()
    where = ", ".join(str(p) for p in files.paths) if files.paths else "nothing is missing, no file written"
    print(f"{files.requests} request(s): {where}")


def batch_import(problems: list[str], repairs: list[str]) -> None:
    from rt_jax.teacher.batch import import_outputs

    if not FLAGS.batch_files:
        raise UserError("batch_import: give --batch_files=<output.jsonl>[,...]")
    tasks, api_format, store = _tasks(), _api_format(), _store(repairs)
    reports = import_outputs(
        store,
        FLAGS.batch_files,
        api_format,
        FLAGS.teacher,
        _method(),
        FLAGS.temperature,
        FLAGS.data_dir,
        tasks,
        problems,
    )
    for counts in reports:
        print(", ".join(f"{k}={v}" for k, v in counts.items()))


def stats(problems: list[str], repairs: list[str]) -> None:
    from rt_jax.teacher.stats import cache_stats, format_table

    result = cache_stats(
        _store(repairs, must_exist=True), FLAGS.data_dir, FLAGS.teacher, FLAGS.method or "zs_cot", _tasks(), problems
    )
    print(json.dumps(result, indent=2) if FLAGS.json else format_table(result))


def main(argv) -> int:
    if len(argv) != 2 or argv[1] not in ACTIONS:
        raise UserError(f"expected one action: python -m rt_jax.teacher <{'|'.join(ACTIONS)}> [--flags]")
    problems: list[str] = []
    repairs: list[str] = []
    globals()[argv[1]](problems, repairs)
    for line in repairs + problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) reported above; those items were skipped", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    run_main(main, define_flags)


if __name__ == "__main__":
    run()
