"""The offline default corpus, the ladder's tokenizer blocks and `prepare` over a ladder."""
import gzip
import json

import pytest

from ladder.orchestration.compose import load
from ladder.core.shards import TokenSequences
from train.data import DataError, corpus, prepare_data
from ladder.orchestration.cli import main


@pytest.fixture(scope="module")
def smoke_corpus(tmp_path_factory):
    return corpus.build(tmp_path_factory.mktemp("cache") / "corpus" / "smoke")


def test_default_corpus_is_c4_schema_real_text_without_repeats(smoke_corpus):
    records = [json.loads(line) for f in sorted(smoke_corpus.glob("*.json.gz")) for line in gzip.open(f, "rt")]
    assert all(set(r) == {"text", "timestamp", "url"} for r in records)
    texts = [r["text"] for r in records]
    assert len(texts) > 19_000 and len(set(texts)) == len(texts)
    assert sum(map(len, texts)) > 24_000_000  # about 8.6M tokens of the smoke BPE
    sources = {r["url"].split("/")[2] for r in records}
    assert sources == {"en.wikipedia.org", "gcide.gnu.org.ua", "www.gutenberg.org"}
    assert corpus.build(smoke_corpus) == smoke_corpus  # reused, not rebuilt


def test_the_wikipedia_corpus_is_the_same_builder_on_one_source(tmp_path):
    wiki = corpus.build(tmp_path / "smoke_wiki", corpus.CORPORA["smoke_wiki"])
    records = [json.loads(line) for f in sorted(wiki.glob("*.json.gz")) for line in gzip.open(f, "rt")]
    assert {r["url"].split("/")[2] for r in records} == {"en.wikipedia.org"} and len(records) > 10_000
    assert json.loads((wiki / corpus.MARKER).read_text())["sources"] == ["wikipedia"]


def test_ladders_name_their_tokenizer():
    assert load(["ladder=gadre"]).ladder.tokenizer.name_or_path == "EleutherAI/gpt-neox-20b"
    assert load(["ladder=olmo"]).ladder.tokenizer.name_or_path == "allenai/dolma2-tokenizer"
    smoke = load(["ladder=smoke"])
    assert smoke.ladder.tokenizer.train_vocab_size == smoke.ladder.vocab_size == 2048


def _overrides(c4_dir, *extra):
    return ["ladder=smoke", f"data.path={c4_dir}", "data.corpus=null", "data.val_tokens=1000",
            "ladder.tokenizer.train_vocab_size=300", f"ladder.tokenizer.train_path={c4_dir}", *extra]


def test_ladder_prepare_prepares_the_ladder_datasets_with_overrides(c4_dir, docs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path))
    assert main(["prepare", *_overrides(c4_dir)]) == 0
    out = capsys.readouterr().out
    assert "smoke (seq_len 128): train" in out and "val 1,024 tokens" in out
    assert "warning: the largest rung needs" in out  # 240 tiny documents cannot feed smoke-64 at M=20


def _snapshot(directory):
    return {p.relative_to(directory): (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.rglob("*")}


def test_a_users_data_path_is_read_and_never_written(c4_dir, docs, tmp_path, monkeypatch, capsys):
    """data=smoke builds its corpus under the cache; a data.path the user sets is only read."""
    (c4_dir / "notes.txt").write_text("the user's own file, not the harness's")
    before = _snapshot(c4_dir)
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "cache"))
    overrides = [o for o in _overrides(c4_dir) if o != "data.corpus=null"]  # corpus: smoke, as data=smoke ships
    assert main(["prepare", *overrides]) == 0
    assert _snapshot(c4_dir) == before
    assert "smoke (seq_len 128): train" in capsys.readouterr().out
    assert not (tmp_path / "cache" / "corpus").exists()  # the user's files were read, not the built-in corpus


def test_the_corpus_is_never_built_over_a_directory_it_did_not_write(tmp_path):
    out = tmp_path / "corpus" / "smoke"
    out.mkdir(parents=True)
    (out / "mine.jsonl").write_text('{"text": "keep me"}\n')
    with pytest.raises(DataError, match="holds no complete built-in corpus"):
        corpus.build(out)
    assert (out / "mine.jsonl").read_text() == '{"text": "keep me"}\n'


def test_ladder_prepare_refuses_a_tokenizer_larger_than_the_models_vocabulary(c4_dir, docs, tmp_path, monkeypatch,
                                                                              capsys):
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path))
    assert main(["prepare", *_overrides(c4_dir, "ladder.sizes=[132K]", "ladder.vocab_size=256")]) == 2
    err = capsys.readouterr().err
    assert "tokenizer" in err and "but model 132K has vocab_size 256" in err


@pytest.mark.slow
def test_default_corpus_feeds_the_largest_smoke_rung(smoke_corpus, tmp_path):
    cfg = load(["ladder=smoke"])
    prepared = prepare_data({**cfg.data, "path": str(smoke_corpus)}, cfg.ladder.tokenizer, seq_len=128,
                            cache_dir=smoke_corpus.parents[1], progress=False)
    seqs = TokenSequences(prepared.train_dir, tokens=4_283_200, seed=0)
    assert seqs.epochs < 0.6 and TokenSequences(prepared.val_dir).tokens >= 200_000
