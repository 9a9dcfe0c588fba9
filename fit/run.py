"""`ladder fit`: read points, fit the chosen method, write predictions.csv, fits.json and the report."""
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd

from fit import report
from fit.calibration import calibrate
from fit.config import FitConfig, as_fit_config, check_numbers
from fit.errors import FitInputError
from fit.points import PointSet, load_points
from fit.registry import METHODS
from fit.runs import final_window, gadre_runs
from fit.targets import actual_value, resolve_targets
from ladder.core.configs import ConfigError
from ladder.core.files import atomic_write_text, writable_dir
from ladder.core.layout import REPORT
from ladder.core.plan import Target

PRED_COLUMNS = ["method", "target", "params", "tokens", "metric", "predicted", "lower", "upper", "actual"]


HOLDOUTS = (None, "largest")


def apply_holdout(cfg: FitConfig, ps: PointSet):
    """(points to fit, held-out targets). `largest` removes every run of the largest size from the
    points the method sees; those runs become targets, scored against their own final points."""
    if cfg.holdout not in HOLDOUTS:
        raise FitInputError(f"holdout={cfg.holdout}: unknown (null or largest)")
    if cfg.holdout is None:
        return ps, []
    runs = ps.points.drop_duplicates("run")
    held = runs[np.isclose(runs["params"].astype(float), runs["params"].astype(float).max(), rtol=1e-6)]
    if len(held) == len(runs):
        raise FitInputError("holdout=largest: every run is at the largest size; nothing is left to fit")
    kept = ps.points[~ps.points["run"].isin(set(held["run"]))].reset_index(drop=True)
    targets = [Target(r.run, float(r.params), float(r.run_tokens)) for r in held.sort_values("run_tokens").itertuples()]
    fit_ps = replace(ps, points=kept, notes=ps.notes + [
        f"holdout=largest: runs {', '.join(t.name for t in targets)} are left out of the fit and predicted"])
    return fit_ps, targets


def choose_targets(cfg: FitConfig, ps: PointSet, held: List[Target] = ()) -> List[Target]:
    if held:
        return list(held) + (resolve_targets(cfg.targets, ps, []) if cfg.targets else [])
    if ps.format == "gadre":
        loss_runs, err_runs = gadre_runs(ps)
        return resolve_targets(cfg.targets, ps, loss_runs, err_runs)
    runs = ps.points.drop_duplicates("run")
    smaller = list(runs[runs["params"] < runs["params"].max()]["run"])
    return resolve_targets(cfg.targets, ps, smaller)


def run_fit(cfg) -> Path:
    cfg = as_fit_config(cfg)
    if cfg.method not in METHODS:
        raise FitInputError(f"method={cfg.method}: unknown (one of {', '.join(METHODS)})")
    check_numbers(cfg)
    ps = load_points(cfg.results, cfg.format, cfg.dataset)
    fit_ps, held = apply_holdout(cfg, ps)
    targets = choose_targets(cfg, fit_ps, held)
    out = METHODS[cfg.method](fit_ps, targets, cfg)
    if cfg.calibrate and cfg.bootstrap > 0 and not out.calibrated:
        calibrate(METHODS[cfg.method], fit_ps, targets, cfg, out)
    for pred in out.predictions:  # held-out runs are scored against the full data
        pred["actual"] = actual_value(ps, next(t for t in targets if t.name == pred["target"]), pred["metric"],
                                      final_window(ps))
    out.warnings = fit_ps.dropped_summary() + fit_ps.notes + out.warnings
    out_dir = Path(cfg.out) if cfg.out else _default_out(cfg, ps)
    try:
        writable_dir(out_dir, "out")
    except ConfigError as exc:
        raise FitInputError(str(exc)) from None
    preds = pd.DataFrame(out.predictions, columns=PRED_COLUMNS)
    atomic_write_text(out_dir / "predictions.csv", preds.to_csv(index=False))
    atomic_write_text(out_dir / "fits.json", json.dumps(_clean({
        "method": out.method, "results": ps.source, "format": ps.format, "dataset": cfg.dataset,
        "targets": [t.__dict__ for t in targets], "bootstrap": cfg.bootstrap, "interval": cfg.interval,
        "seed": cfg.seed, "holdout": cfg.holdout, "calibrate": cfg.calibrate, "held_out": [t.name for t in held], "laws": out.fits,
        "notes": out.notes, "warnings": out.warnings,
        "dropped": ps.dropped.drop(columns=["value"], errors="ignore").to_dict("records"),
    }), indent=1))
    report.write_report(out_dir, cfg, ps, targets, out, preds, [t.name for t in held])
    print(summary(preds, out.warnings))
    return out_dir


def _default_out(cfg: FitConfig, ps: PointSet) -> Path:
    src = Path(ps.source)
    if ps.format == "harness" and src.is_dir():
        return src / REPORT
    return Path("outputs") / f"fit-{cfg.method}"


def summary(preds: pd.DataFrame, warnings: List[str]) -> str:
    tw = max([6] + [len(str(t)) for t in preds["target"]])
    mw = max([6] + [len(str(m)) for m in preds["metric"]])
    lines = [f"{'target':<{tw}} {'metric':<{mw}} {'predicted':>10} {'interval':>21} {'actual':>9}"]
    for r in preds.itertuples():
        lines.append(f"{r.target:<{tw}} {r.metric:<{mw}} {r.predicted:>10.4f} "
                     f"[{r.lower:>9.4f}, {r.upper:>9.4f}] {'' if pd.isna(r.actual) else f'{r.actual:9.4f}'}")
    lines += [f"WARNING: {w}" for w in warnings]
    return "\n".join(lines)


def _clean(o):
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return _clean(o.tolist())
    return o
