"""Documents from local shards in each dataset's real schema, and the bad inputs."""
import gzip

import pytest

from ladder.core.configs import load_group_option
from train.data.config import DataConfig
from train.data.sources import DataError, Stats, documents


def dataset(name, path):
    cfg = load_group_option("data", name, DataConfig)
    cfg.path = str(path)
    return cfg


@pytest.mark.parametrize("name,file", [
    ("c4", "c4-train.00000-of-01024.json.gz"),
    ("redpajama", "arxiv_sample.jsonl"),
    ("refinedweb", "train-00000-of-05534.parquet"),
])
def test_each_dataset_schema_reads_from_local_shards(tmp_path, shards, name, file):
    texts, writer = shards.make_docs(5), getattr(shards, name)
    writer(tmp_path / "shards" / file, texts)
    stats = Stats()
    assert list(documents(dataset(name, tmp_path / "shards"), stats)) == texts  # a directory
    assert list(documents(dataset(name, tmp_path / "shards" / file))) == texts  # a single file
    assert stats.documents == 5 and stats.files == [str(tmp_path / "shards" / file)]


def test_missing_path_is_named(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path}/nope: no such file"):
        list(documents(dataset("c4", tmp_path / "nope")))


def test_wrong_schema_names_file_and_field(tmp_path, shards):
    path = shards.c4(tmp_path / "c4.json.gz", shards.make_docs(2))
    with pytest.raises(DataError, match=r"c4\.json\.gz: record 1 has no field 'content' \(fields: text, timestamp, url\)"):
        list(documents(dataset("refinedweb", path)))


def test_empty_and_whitespace_documents_are_skipped_and_counted(tmp_path, shards):
    path = shards.redpajama(tmp_path / "rp.jsonl", ["first", "", "   \n\t", "last"])
    stats = Stats()
    assert list(documents(dataset("redpajama", path), stats)) == ["first", "last"]
    assert (stats.documents, stats.skipped_empty) == (2, 2)


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "broken \xff\xfe bytes"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: line 2: invalid UTF-8"):
        list(documents(dataset("redpajama", path)))


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.json.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"text": "fine"}\n{"text": "fine"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"bad\.json\.gz: line 3: invalid JSON"):
        list(documents(dataset("c4", path)))


def test_corrupt_gzip_is_named(tmp_path, shards):
    good = shards.c4(tmp_path / "c4.json.gz", shards.make_docs(50))
    (tmp_path / "cut.json.gz").write_bytes(good.read_bytes()[:200])  # truncated download
    (tmp_path / "junk.json.gz").write_bytes(b"not gzip at all")
    for name in ("cut.json.gz", "junk.json.gz"):
        with pytest.raises(DataError, match=rf"{name}: corrupt or truncated gzip"):
            list(documents(dataset("c4", tmp_path / name)))


def test_corrupt_parquet_is_named(tmp_path, shards):
    good = shards.refinedweb(tmp_path / "good.parquet", shards.make_docs(5))
    (tmp_path / "bad.parquet").write_bytes(good.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"bad\.parquet: unreadable file"):
        list(documents(dataset("refinedweb", tmp_path / "bad.parquet")))


def test_directory_without_shards_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="no json.gz, jsonl or parquet files"):
        list(documents(dataset("c4", tmp_path)))


def test_hub_datasets_stream_through_the_same_path(monkeypatch, shards):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, streaming=False, **kw):
        calls.append((path, name, split, streaming))
        return iter([{"content": t, "url": "u"} for t in shards.make_docs(3)])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    stats = Stats()
    assert list(documents(load_group_option("data", "refinedweb", DataConfig), stats)) == shards.make_docs(3)
    assert calls == [("tiiuae/falcon-refinedweb", None, "train", True)]
    assert stats.files == ["hf://tiiuae/falcon-refinedweb//train"]


def test_hub_failure_says_to_use_local_shards(monkeypatch):
    import datasets

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"could not load allenai/c4 \(en\) from the hub.*set data.path"):
        list(documents(load_group_option("data", "c4", DataConfig)))
