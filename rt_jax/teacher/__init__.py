"""The offline teacher-rationale cache: store, importers, selection and generation.

    from rt_jax.teacher import RationaleStore, select_rationales
    store = RationaleStore("teacher_cache")
    records = select_rationales(store, "multiarith", "text-davinci-002", "zs_cot",
                                split.train, max_per_sample=1)        # correct ones, D = 1
    target = f" {records[0].reasoning_completion.strip()} --> {answer}"

Command line: `python -m rt_jax.teacher <import_kojima|import_rt|export_rt|generate|batch_write|batch_import|stats>`.
"""

from rt_jax.teacher.backends import HttpBackend, LocalModelBackend, TeacherError
from rt_jax.teacher.batch import import_outputs, write_requests
from rt_jax.teacher.generate import generate_rationales, method_name
from rt_jax.teacher.import_kojima import KOJIMA_METHOD, KOJIMA_TEACHER, import_log, kojima_logs
from rt_jax.teacher.openai_api import ApiFormat, Completion
from rt_jax.teacher.reasoning_teacher import export_rt, import_rt_file
from rt_jax.teacher.record import SCHEMA_VERSION, Record
from rt_jax.teacher.select import in_dataset_letters, select_rationales, train_rationales
from rt_jax.teacher.stats import cache_stats, shard_stats
from rt_jax.teacher.store import Conflict, RationaleStore

__all__ = [
    "ApiFormat",
    "Completion",
    "Conflict",
    "HttpBackend",
    "KOJIMA_METHOD",
    "KOJIMA_TEACHER",
    "LocalModelBackend",
    "RationaleStore",
    "Record",
    "SCHEMA_VERSION",
    "TeacherError",
    "cache_stats",
    "export_rt",
    "generate_rationales",
    "import_log",
    "import_outputs",
    "import_rt_file",
    "in_dataset_letters",
    "kojima_logs",
    "method_name",
    "select_rationales",
    "shard_stats",
    "train_rationales",
    "write_requests",
]
