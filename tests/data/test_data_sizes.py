"""What `ladder plan` says a source holds, before anything is tokenized: the numbers prepare will find."""
import struct
import zlib

import numpy as np

from train.data import source_tokens


def _gzip_of_zeros(path, chunks: int) -> int:
    """A gzip file of `chunks` × 16 MiB zero bytes, written without compressing them all: after a full flush
    deflate starts afresh, so every chunk compresses to the same bytes. Its size uncompressed."""
    chunk = bytes(1 << 24)
    squeeze = zlib.compressobj(6, zlib.DEFLATED, 31)
    first = squeeze.compress(chunk) + squeeze.flush(zlib.Z_FULL_FLUSH)
    again = squeeze.compress(chunk) + squeeze.flush(zlib.Z_FULL_FLUSH)
    header = first[:len(first) - len(again)]
    size = chunks << 24
    crc = 1152334754  # zlib.crc32 of 257 × 2^24 zero bytes, the only count used here
    assert chunks == 257
    path.write_bytes(header + again * chunks + b"\x03\x00" + struct.pack("<II", crc, size % (1 << 32)))
    return size


def test_a_gzip_over_4_gib_is_sized_past_its_trailers_wrap(tmp_path):
    size = _gzip_of_zeros(tmp_path / "c4-train.00000-of-00001.json.gz", 257)
    assert size > 1 << 32
    tokens, how = source_tokens({"name": "c4", "path": str(tmp_path)}, 2048)
    assert f"({size:,} bytes of text" in how  # the old plan read the trailer alone: 16,777,216 bytes, 256× short
    assert zlib.decompressobj(31).decompress((tmp_path / "c4-train.00000-of-00001.json.gz").read_bytes()[:4096],
                                             1 << 20) == bytes(1 << 20)  # a real gzip of zeros


def test_plan_reads_a_headerless_corpus_with_the_dtype_prepare_uses(tokenizer_dir, tmp_path):
    np.arange(1000, dtype=np.uint16).tofile(tmp_path / "train.bin")  # a 300-token vocabulary's ids: uint16
    tokens, how = source_tokens({"name": "c4", "path": str(tmp_path)}, 100_352,
                                tokenizer_cfg={"name_or_path": str(tokenizer_dir)})
    assert tokens == 1000  # the old plan read it as uint32, from the ladder's 100,352-token vocab_size: 500
    tokens, how = source_tokens({"name": "c4", "path": str(tmp_path)}, 100_352,
                                tokenizer_cfg={"name_or_path": "some/hub-tokenizer"}, cache_dir=tmp_path / "cache")
    assert tokens == 500 and "read as uint32, from ladder.vocab_size until the tokenizer is fetched" in how


def test_the_default_process_count_is_the_cores_bounded_by_memory(monkeypatch):
    from train.data import prepare

    monkeypatch.setattr(prepare.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(prepare, "_available_memory", lambda: 200 << 30)
    assert prepare.default_num_proc() == 64  # the old default: half the cores, at most 8
    monkeypatch.setattr(prepare, "_available_memory", lambda: 8 << 30)
    count, why = prepare.tokenizer_processes()
    assert count == 16 == prepare.default_num_proc()
    assert why == ("16 tokenizer processes: one per core (64), at most one per 0.5 GiB of the 8.0 GiB available "
                   "(data.num_proc sets it)")
    assert prepare.tokenizer_processes(3) == (3, "3 tokenizer processes (data.num_proc)")
    monkeypatch.setattr(prepare, "_available_memory", lambda: 0)
    assert prepare.default_num_proc() == 1


def test_the_plan_says_how_many_processes_tokenize(monkeypatch, capsys):
    from ladder.orchestration.cli import main

    assert main(["plan", "ladder=smoke", "data.num_proc=3"]) == 0
    assert "smoke: text is tokenized by 3 tokenizer processes (data.num_proc)" in capsys.readouterr().out
