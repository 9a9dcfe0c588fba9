"""Units below a file: a large JSON-lines or parquet file is tokenized in parts, by several processes at once,
into exactly the tokens, splits and documents its whole-file reading gives."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ladder.core.shards import TokenSequences
from train.data import DataError, prepare_data
from train.data import parts as parts_module


def _splits(cfg, tok_cfg, cache, num_proc=1):
    prepared = prepare_data({**cfg, "num_proc": num_proc}, tok_cfg, seq_len=16, val_tokens=1000, cache_dir=cache,
                            progress=False)
    seqs = {d: TokenSequences(getattr(prepared, d)) for d in ("train_dir", "val_dir")}
    return prepared, {d: s.read(0, len(s)) for d, s in seqs.items()}


def _units(cache):
    (units,) = cache.glob("stores/*/units.json")
    return json.loads(units.read_text())["units"]


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_a_large_file_in_parts_gives_the_tokens_of_the_whole(kind, docs, shards, tok_cfg, tmp_path, monkeypatch):
    if kind == "jsonl":
        path = shards.redpajama(tmp_path / "src" / "big.jsonl", docs)
        cfg = {"name": "rpj", "path": str(path), "text_field": "text"}
    else:
        path = tmp_path / "src" / "big.parquet"
        path.parent.mkdir()
        pq.write_table(pa.table({"content": docs}), path, row_group_size=30)  # 8 row groups
        cfg = {"name": "rw", "path": str(path), "text_field": "content"}
    whole, whole_tokens = _splits(cfg, tok_cfg, tmp_path / "whole")
    assert _units(tmp_path / "whole") == [{"path": str(path)}]
    monkeypatch.setattr(parts_module, "UNIT_BYTES", path.stat().st_size // 5)
    cut, cut_tokens = _splits(cfg, tok_cfg, tmp_path / "cut", num_proc=2)
    units = _units(tmp_path / "cut")
    assert len(units) >= 4 and all(u["path"] == str(path) and u["part"][0] in ("bytes", "row_groups") for u in units)
    assert all(np.array_equal(whole_tokens[d], cut_tokens[d]) for d in whole_tokens)
    for split in ("train_manifest", "val_manifest"):
        assert getattr(cut, split)["documents"] == getattr(whole, split)["documents"]
        assert getattr(cut, split)["source_files"] == [str(path)]


def test_a_part_names_the_line_of_its_bad_record(docs, shards, tok_cfg, tmp_path, monkeypatch):
    path = shards.redpajama(tmp_path / "big.jsonl", docs[:60])
    with open(path, "a") as f:
        f.write('{"text": oops}\n')
    monkeypatch.setattr(parts_module, "UNIT_BYTES", path.stat().st_size // 3)
    with pytest.raises(DataError, match=r"big.jsonl: line 61: invalid JSON"):
        prepare_data({"name": "rpj", "path": str(path), "num_proc": 1}, tok_cfg, seq_len=16, val_tokens=1000,
                     cache_dir=tmp_path / "cache", progress=False)


def test_a_gzip_is_one_unit_however_large(shards, docs, tmp_path, monkeypatch):
    monkeypatch.setattr(parts_module, "UNIT_BYTES", 100)
    assert parts_module.parts(shards.c4(tmp_path / "c4.json.gz", docs)) == [None]
    lines = parts_module.parts(shards.redpajama(tmp_path / "a.jsonl", docs))
    assert lines[0][1] == 0 and lines[-1][2] == (tmp_path / "a.jsonl").stat().st_size
    assert all(a[2] == b[1] for a, b in zip(lines, lines[1:]))  # byte ranges end to end


def test_a_part_cut_off_mid_way_resumes_to_the_same_tokens(docs, shards, tok_cfg, tmp_path, monkeypatch):
    from train.data import store as store_module
    from train.data.prepare import open_stream

    path = shards.redpajama(tmp_path / "src" / "big.jsonl", docs)
    cfg = {"name": "rpj", "path": str(path), "text_field": "text"}
    _, whole = _splits(cfg, tok_cfg, tmp_path / "whole")
    monkeypatch.setattr(parts_module, "UNIT_BYTES", path.stat().st_size // 3)
    store, _ = open_stream(cfg, tok_cfg["name_or_path"], 0, "uint16", tmp_path / "cut")
    monkeypatch.setattr(store_module, "BATCH_DOCS", 4)
    partial = store_module.tokenize_unit(str(store.root), 1, limit=300)  # the middle part, a kill's worth
    assert 0 < partial["documents"] and not partial["complete"]
    _, cut = _splits(cfg, tok_cfg, tmp_path / "cut")
    assert all(np.array_equal(whole[d], cut[d]) for d in whole)
