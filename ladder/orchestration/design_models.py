"""The error models `ladder design` and `ladder plan` simulate with, measured on earlier ladders (fit.design: the
loss; fit.design_accuracy: accuracy in points) and kept on disk as JSON under $LADDER_CACHE/design/, keyed by the
content of the ladders' files and of the fit code that reads and measures them: measuring the published ladders
takes 7 s and 11 s, reading them back a fraction of a second."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import fields, is_dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fit import design, design_accuracy
from fit.errors import FitInputError
from fit.sources import dataset_names, load_points
from ladder.core.configs import ConfigError
from ladder.core.files import atomic_write_text
from ladder.core.published import shared_data_dir


def source_paths(results) -> list[str]:
    """The ladders the error model is measured on: `results` (a path or a list); else both published ladders."""
    if results is None:
        root = shared_data_dir()
        if root is None:
            raise ConfigError("the error model is measured on earlier ladders: give results=PATH (or a list), or put "
                              "the published ladders at <repo>/../shared/data ($LADDER_SHARED_DATA)")
        return [str(root / "olmo-ladder" / "runs"), str(root / "gadre-scaling")]
    return [str(p) for p in (results if isinstance(results, list) else [results])]


def prior_sources(results) -> list:
    """The points of every dataset of each of `source_paths(results)`."""
    out = []
    for path in source_paths(results):
        names = dataset_names(path)
        out += [load_points(path, dataset=n) for n in names] if len(names) > 1 else [load_points(path)]
    return out


def error_models(results, accuracy: bool = True) -> tuple:
    """(fit.design.measure of `results`' ladders, (the accuracy model fit.design_accuracy measures on them or None,
    why not), or None where `accuracy` is false): 7 s and 11 s for the published ones, each kept under
    $LADDER_CACHE/design/ keyed by the content of their files and of the fit code that reads and measures them, so
    that `ladder plan` and a second design read them in a fraction of a second."""
    paths = source_paths(results)
    key = Path(os.environ.get("LADDER_CACHE", ".cache")) / "design" / _digest(paths)
    loaded = []

    def sources():  # read once, and only where a model is measured
        if not loaded:
            loaded.append(prior_sources(paths))
        return loaded[0]

    def loss():
        try:
            return design.measure(sources())
        except FitInputError as exc:
            raise ConfigError(str(exc)) from exc

    def accuracies():
        try:
            return design_accuracy.measure_accuracy(sources()), None
        except FitInputError as exc:
            return None, str(exc)

    return (_cached(key.with_name(f"{key.name}-loss.json"), loss),
            _cached(key.with_name(f"{key.name}-accuracy.json"), accuracies) if accuracy else None)


def _cached(path: Path, measure):
    """What `measure()` gives, kept as JSON at `path`."""
    if path.is_file():
        try:
            return _decoded(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError):  # a cache from other code: measured again below
            pass
    value = measure()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(_encoded(value)))
    except OSError:  # a read-only cache costs the next command the measurement, nothing else
        pass
    return value


# Files larger than this (a ladder run's checkpoints, which no points reader reads) enter the digest by size and
# modification time, not content: a results folder's checkpoints would cost seconds a GB to hash.
HASHED = 8 << 20


def _digest(paths: list[str]) -> str:
    h = hashlib.sha256()
    code = Path(design.__file__).parent
    files = [(str(p), p) for path in paths for p in sorted(Path(path).rglob("*")) if p.is_file()]
    files += [(str(p.relative_to(code)), p) for p in sorted(code.rglob("*.py")) if "present" not in p.parts]
    for name, p in files:
        stat = p.stat()
        h.update(name.encode() + b"\0" + (p.read_bytes() if stat.st_size <= HASHED else
                                          f"{stat.st_size} {stat.st_mtime_ns}".encode()) + b"\0")
    return h.hexdigest()[:20]


MODELS = {c.__name__: c for c in (design.ErrorModel, design_accuracy.TaskPrior, design_accuracy.AccuracyModel)}


def _encoded(v):
    """An error model as JSON, each value tagged with its type (models, arrays, frames, tuples, plain values)."""
    from fit.present.report import json_ready  # here: `ladder plan` reads the cache without the report's imports

    if is_dataclass(v):
        return {"model": type(v).__name__, "fields": {f.name: _encoded(getattr(v, f.name)) for f in fields(v)}}
    if isinstance(v, np.ndarray):
        return {"array": json_ready(v.tolist())}
    if isinstance(v, pd.DataFrame):
        return {"frame": json_ready(v.to_dict("list")), "dtypes": {c: str(t) for c, t in v.dtypes.items()}}
    if isinstance(v, (tuple, list)):
        return {"tuple": [_encoded(x) for x in v]}
    return {"value": json_ready(v)}


def _decoded(v):
    if "model" in v:
        return MODELS[v["model"]](**{k: _decoded(x) for k, x in v["fields"].items()})
    if "array" in v:
        return np.array(v["array"], float)
    if "frame" in v:
        return pd.DataFrame(v["frame"], columns=list(v["dtypes"])).astype(v["dtypes"])
    return tuple(_decoded(x) for x in v["tuple"]) if "tuple" in v else v["value"]
