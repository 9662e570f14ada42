"""Downloads for real users, tested up to the network call with a fake fetch."""

import hashlib

import pytest

from rt_jax.errors import UserError
from rt_jax.tasks import load_dataset, load_split
from rt_jax.tasks.sources import SOURCES, SPLIT_SHA256, git_blob_sha1

COIN_FLIP = "raw/kojima_zero_shot_cot/dataset/coin_flip/coin_flip.json"


class FakeOrigin:
    """Serves files of ../shared/data by their public URL and counts requests."""

    def __init__(self, data_dir, broken=False):
        self.by_url = {s.url: data_dir / s.path for s in SOURCES.values() if (data_dir / s.path).exists()}
        self.requests, self.broken, self.data_dir = [], broken, data_dir

    def __call__(self, url):
        self.requests.append(url)
        if self.broken:
            raise OSError("Network is unreachable")
        if "/reasoning-teacher/" in url:
            return (self.data_dir / "splits" / url.split("/")[-1]).read_bytes()
        if url not in self.by_url:
            return b"<html>not found</html>"
        return self.by_url[url].read_bytes()


def test_pinned_checksums_match_the_real_files(data_dir):
    for source in SOURCES.values():
        if (data_dir / source.path).exists():
            assert git_blob_sha1((data_dir / source.path).read_bytes()) == source.git_sha1, source.path
            assert source.url.startswith("https://raw.githubusercontent.com/") and source.url.endswith(
                source.path.split("/")[-1]
            )


def test_pinned_split_checksums(data_dir):
    for name, sha256 in SPLIT_SHA256.items():
        assert hashlib.sha256((data_dir / "splits" / name).read_bytes()).hexdigest() == sha256
    assert sorted(SPLIT_SHA256) == sorted(p.name for p in (data_dir / "splits").glob("*.json"))


def test_download_once_into_the_cache(data_dir, tmp_path):
    origin = FakeOrigin(data_dir)
    ds = load_dataset("coin_flip", None, cache_dir=tmp_path, download=True, fetch=origin)
    assert origin.requests == [
        "https://raw.githubusercontent.com/kojima-takeshi188/zero_shot_cot/5ef330fcdeec0cd26aee27943504f91f8ec1c33c/"
        "dataset/coin_flip/coin_flip.json"
    ]
    assert ds.examples == load_dataset("coin_flip", data_dir).examples
    assert (tmp_path / COIN_FLIP).read_bytes() == (data_dir / COIN_FLIP).read_bytes()
    load_dataset("coin_flip", None, cache_dir=tmp_path, download=True, fetch=origin)
    assert len(origin.requests) == 1  # cached: not fetched again
    split = load_split("coin_flip", None, cache_dir=tmp_path, download=True, fetch=origin)
    assert split == load_split("coin_flip", data_dir) and origin.requests[-1] == (
        "https://raw.githubusercontent.com/itsnamgyu/reasoning-teacher/a2ca4d28d3bbabbd77106b76d06885d1a5eac0d9/"
        "data/split/coin_flip__default.json"
    )


def test_bad_download_is_refused_and_not_saved(data_dir, tmp_path):
    # AQuA's train.json is not in ../shared/data: what comes back fails its pinned checksum.
    origin = FakeOrigin(data_dir)
    with pytest.raises(UserError, match=r"deepmind/AQuA/.*/train.json: checksum mismatch .*a805bdd.*not saved"):
        load_dataset("aqua", data_dir, cache_dir=tmp_path, download=True, fetch=origin)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    with pytest.raises(UserError, match=r"coin_flip.json: download failed \(Network is unreachable\); put the file at"):
        load_dataset("coin_flip", None, cache_dir=tmp_path, download=True, fetch=FakeOrigin(data_dir, broken=True))


def test_without_download_a_missing_file_is_reported(tmp_path):
    ds = load_dataset("multiarith", tmp_path, cache_dir=tmp_path / "cache")
    assert len(ds) == 0 and ds.size == 600
    assert ds.missing[0].startswith("missing source file raw/kojima_zero_shot_cot/dataset/MultiArith/MultiArith.json")


def test_a_data_dir_that_does_not_exist_is_one_error(tmp_path):
    with pytest.raises(UserError) as err:
        load_dataset("multiarith", tmp_path / "nonexistent")
    assert str(err.value) == (
        f"data_dir={str(tmp_path / 'nonexistent')!r}: no such folder; expected the folder holding the raw task "
        "files (raw/, splits/), or download=True"
    )
