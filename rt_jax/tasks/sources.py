"""Raw source files of the 12 tasks: where they live under --data_dir, their public origin,
and their checksums. Finding a file: `data_dir/<path>`, then `cache_dir/<path>`, then (only
when asked) a download from the public origin into `cache_dir`, checked before it is kept."""

import dataclasses
import hashlib
import os
import pathlib
import tempfile
import urllib.request
from typing import Callable

from rt_jax.errors import UserError

_KOJIMA = "https://raw.githubusercontent.com/kojima-takeshi188/zero_shot_cot/5ef330fcdeec0cd26aee27943504f91f8ec1c33c/dataset/"
_GSM8K = "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/"
_AQUA = "https://raw.githubusercontent.com/deepmind/AQuA/26b64ed1f22208c6742f47df547dfd65088ec30d/"
_SPLITS = "https://raw.githubusercontent.com/itsnamgyu/reasoning-teacher/a2ca4d28d3bbabbd77106b76d06885d1a5eac0d9/data/"
KOJIMA_DIR = "raw/kojima_zero_shot_cot/dataset/"

DEFAULT_CACHE_DIR = pathlib.Path(os.environ.get("RT_JAX_CACHE", "~/.cache/rt_jax")).expanduser()


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One raw file. `git_sha1` is the blob id in the origin repository (known for every file,
    also those we have never seen, e.g. AQuA's train.json); `sha256` where we hold the file."""

    path: str  # relative to data_dir / cache_dir
    url: str
    git_sha1: str
    sha256: str | None = None


def _k(rel: str, git_sha1: str, sha256: str) -> SourceFile:
    return SourceFile(KOJIMA_DIR + rel, _KOJIMA + rel, git_sha1, sha256)


SOURCES: dict[str, SourceFile] = {
    s.path: s
    for s in [
        _k(
            "SingleEq/questions.json",
            "a8a1704d494d107d9b8ced7ae99c9af911b0a506",
            "051507bd2b489c257057b485774a83d2710c23a4bc0f4a58e1822ae2773ef05e",
        ),
        _k(
            "AddSub/AddSub.json",
            "3774017520b77333af378094558bbf79ac096f7b",
            "21930fa90385c72b5a15f4b9a4dda27276b889ae9ff44285505cdd9fa0a20df8",
        ),
        _k(
            "MultiArith/MultiArith.json",
            "8b720d2f5b6658913bb3160fb0554aa57173ef3f",
            "dc9db1b6cc68b1ecc2dec830d15aaf8c9a0932aa31d5ffce88ef3628179d36f4",
        ),
        _k(
            "SVAMP/SVAMP.json",
            "aad093525105c6331581d7082250b9c22578271e",
            "5be77703a6d891ae476d7c082787ad361392aa02453b132516cdd5f4e7934e3e",
        ),
        _k(
            "grade-school-math/test.jsonl",
            "e4c2ff4942b9a78bd74f04141224c11e28d12dc9",
            "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
        ),
        SourceFile(
            "raw/openai_grade_school_math/grade_school_math/data/train.jsonl",
            _GSM8K + "train.jsonl",
            "7d97154b91aef28d01c3301741c81ce90039a4b1",
            "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
        ),
        # AQuA-RAT train (tens of MB) is not in ../shared/data; only its upstream blob id is known.
        SourceFile("raw/deepmind_aqua/train.json", _AQUA + "train.json", "a805bddefde8d70fdb66ff7ab85a1999bdc3eece"),
        _k(
            "AQuA/test.json",
            "a62ef3e8bc0446de096c8384a0bf5c99867043b2",
            "de41581881ef95c5588c44ddc701c77fd480839241dd422a0d181262af24520c",
        ),
        _k(
            "CommonsenseQA/train_rand_split.jsonl",
            "3e523e7ffe68e07ddb76053783f0277471a1a76e",
            "58ffa3c8472410e24b8c43f423d89c8a003d8284698a6ed7874355dedd09a2fb",
        ),
        _k(
            "CommonsenseQA/dev_rand_split.jsonl",
            "8b82e8e338328f43dd5c740d5b753e32a27b5005",
            "3210497fdaae614ac085d9eb873dd7f4d49b6f965a93adadc803e1229fd8a02a",
        ),
        _k(
            "StrategyQA/task.json",
            "f18c2a1b3ada2409a711b33ee8fd8bfaadfb9cee",
            "60af9081fed20102fd8bb1e02dc7d9f12238efcba33e4c1a56b4d61cb6409803",
        ),
        _k(
            "Bigbench_Date/task.json",
            "5f8206fb8d33907e313d7517e213d59ad4060dcb",
            "ff716f0e399109146db3a998281c39954907b78268a9b633a95582d63847822f",
        ),
        _k(
            "Bigbench_object_tracking/task.json",
            "0a216bc7ceb0cd74320cb68ef6309f2f2064ee6b",
            "74b74d3c8827c0387a3f24ee9efa7edd90b2d53af3daacb9961341af66f750a0",
        ),
        _k(
            "coin_flip/coin_flip.json",
            "69456f0e73cdc950aa4177c4a8f259246ba7faca",
            "68cf201737a1463ef6bed5419622805a8934d92bff6a28a9dfbf83be3135ba5a",
        ),
        _k(
            "last_letters/last_letters.json",
            "d7fbe99bebc1bfa32a0d61f261df6ef965917180",
            "60e8d092d0a6423d3256e87e0c249b69aefea4cd27985082095fa4e93931fb02",
        ),
    ]
}


# reasoning-teacher's split and few-shot prompt files (`data/split/*.json`, `data/*.json`).
SPLIT_SHA256 = {
    "addsub__default.json": "1a6f70a39554084978a44439db0b661b039ce4dd2c09572d2ff9f44f5ef668d0",
    "aqua__default.json": "8f6a271a99d34bc1fdf062672088eb17f7f782d86c60d9a709f06b6b8144ff6d",
    "coin_flip__default.json": "a5f7ffe4a1a1e0181cbd9d00259d34f980c0073efe8a3ed25f69433cfb74a3a4",
    "commonsense_qa__default.json": "4cec2867bc6bc201eaa5fc96844870d85356f32b4fa652c75b8b5e42b9fedc76",
    "date_understanding__default.json": "5fbfdd1f0db941dce6accd7f43316eda2a2254f3a80f9a3a045f5a19bfb04578",
    "date_understanding__template.json": "9b4508734ffc2ae908615e3f9f6ca3c9e27f44e4b5e714d220bd7152ddd39d89",
    "few_shot_cot_prompts.json": "72bb973daf1ab1217ec5bc1cc95a8be8ab78d05ff42356a3176341d848956d19",
    "gsm8k__default.json": "cf0f484fcaa270ff33f4ce00bff3f7e1f7f30b3e3bc76d0abcb74c22a6e9a6e0",
    "last_letter_concatenation__default.json": "a5f7ffe4a1a1e0181cbd9d00259d34f980c0073efe8a3ed25f69433cfb74a3a4",
    "multiarith__default.json": "f2f47aeb18026cb3d1909b38b8828693aeaf624af3282d8021dbee32008a1409",
    "multiarith__template.json": "188abcfb1358424791e2d9c8d622ad10356283405fab11e1a58fa374cd9a48f4",
    "single_eq__default.json": "d46feb082615045ea0909c5ed062ef85f29ba95223cbca39e0bfbb1ad1b5e1b7",
    "strategy_qa__default.json": "0857d069a693a83c20466971b7e522b3c90c3258146c9b9461df98e4d2468de1",
    "svamp__default.json": "fae6cc3a5c50952da78b66991182be507c8585e6a59954e03bd997488608ab1f",
    "tracking_shuffled_objects__default.json": "6f2a4637d6e0692297e5eaa66bf53518445e1fbae1d94f28daae0040b7a1156a",
}


def split_source(filename: str) -> SourceFile:
    """A split or few-shot prompt file of reasoning-teacher, kept under `splits/`."""
    if filename not in SPLIT_SHA256:
        raise UserError(
            f"splits/{filename}: not a file of reasoning-teacher's data/split/; expected one of "
            f"{', '.join(sorted(SPLIT_SHA256))}"
        )
    folder = "split/" if "__" in filename else ""
    return SourceFile("splits/" + filename, _SPLITS + folder + filename, "", SPLIT_SHA256[filename])


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's bytes (what GitHub's tree lists)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def check_bytes(source: SourceFile, data: bytes) -> None:
    if source.git_sha1 and git_blob_sha1(data) != source.git_sha1:
        raise UserError(f"{source.url}: checksum mismatch (expected git blob {source.git_sha1}); not saved")
    if source.sha256 and hashlib.sha256(data).hexdigest() != source.sha256:
        raise UserError(f"{source.url}: checksum mismatch (expected sha256 {source.sha256}); not saved")


def _fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # network: not reached in tests
        return response.read()


def download(
    source: SourceFile, cache_dir: os.PathLike | str | None = None, fetch: Callable[[str], bytes] | None = None
) -> pathlib.Path:
    """Fetches `source` into the cache once, verified, written atomically; an existing cached
    file is kept as it is."""
    target = pathlib.Path(cache_dir or DEFAULT_CACHE_DIR) / source.path
    if target.exists():
        return target
    try:
        data = (fetch or _fetch_url)(source.url)
    except OSError as e:
        raise UserError(f"{source.url}: download failed ({e}); put the file at {target} by hand") from None
    check_bytes(source, data)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, target)
    return target


def missing_message(source: SourceFile, data_dir, cache_dir=None) -> str:
    place = (
        pathlib.Path(data_dir) / source.path if data_dir else pathlib.Path(cache_dir or DEFAULT_CACHE_DIR) / source.path
    )
    return (
        f"missing source file {source.path}: put it at {place} "
        f"(curl -L --create-dirs -o {place} {source.url}), or let rt_jax fetch it (download=True, --download)"
    )


def locate(
    path: str, data_dir, cache_dir=None, download_missing: bool = False, fetch: Callable[[str], bytes] | None = None
) -> pathlib.Path | None:
    """Where the raw file `path` is: data_dir, then the cache, then a download if allowed;
    None when it is absent and downloading is off."""
    for root in (data_dir, cache_dir or DEFAULT_CACHE_DIR):
        if root is not None and (pathlib.Path(root) / path).is_file():
            return pathlib.Path(root) / path
    if download_missing:
        source = SOURCES.get(path) or split_source(pathlib.PurePath(path).name)
        return download(source, cache_dir, fetch)
    return None
