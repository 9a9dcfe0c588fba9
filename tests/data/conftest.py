"""Small local shards in each dataset's published schema, and a small BPE trained on them."""
from __future__ import annotations

import gzip
import json
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from train.data.tokenizer import train_bpe

WORDS = ("the river ran past an old mill where farmers brought grain each autumn and the miller kept "
         "careful accounts of every sack in a ledger bound with leather").split()


def make_docs(n: int, start: int = 0) -> list[str]:
    """Documents that each carry a unique marker `docN.` so a test can tell which ones a split holds."""
    return [f"doc{i}. " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(40 + i % 30))
            for i in range(start, start + n)]


def write_c4(path, texts):
    """allenai/c4 en: json.gz lines of text, timestamp, url."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"text": text, "timestamp": "2019-04-25T12:57:54Z",
                                "url": f"https://example.com/{i}"}) + "\n")
    return path


def write_redpajama(path, texts):
    """RedPajama-Data-1T (Sample): jsonl lines of text, meta (a dict), red_pajama_subset."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"text": text, "meta": {"url": f"https://example.com/{i}", "language": "en",
                                                       "source": "cc"}, "red_pajama_subset": "common_crawl"}) + "\n")
    return path


def write_refinedweb(path, texts):
    """tiiuae/falcon-refinedweb: parquet with content, url, timestamp, dump, segment, image_urls."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(texts)
    table = pa.table({
        "content": list(texts), "url": [f"https://example.com/{i}" for i in range(n)],
        "timestamp": pa.array([0] * n, pa.timestamp("s")), "dump": ["CC-MAIN-2023-06"] * n,
        "segment": ["1674764494974.42"] * n, "image_urls": pa.array([[] for _ in range(n)], pa.list_(pa.list_(pa.string())))})
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="session")
def docs():
    return make_docs(240)


@pytest.fixture(scope="session")
def c4_dir(tmp_path_factory, docs):
    root = tmp_path_factory.mktemp("c4")
    write_c4(root / "c4-train.00000-of-00002.json.gz", docs[:120])
    write_c4(root / "c4-train.00001-of-00002.json.gz", docs[120:])
    return root


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, docs):
    return train_bpe(iter(docs), 300, tmp_path_factory.mktemp("tok") / "bpe-300")


@pytest.fixture
def c4_cfg(c4_dir):
    return {"name": "c4", "path": str(c4_dir), "text_field": "text", "num_proc": 1}


@pytest.fixture
def tok_cfg(tokenizer_dir):
    return {"name_or_path": str(tokenizer_dir)}


@pytest.fixture(scope="session")
def shards():
    """The helpers above (test modules cannot import conftest under --import-mode=importlib)."""
    return SimpleNamespace(make_docs=make_docs, c4=write_c4, redpajama=write_redpajama, refinedweb=write_refinedweb)
