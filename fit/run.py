"""`ladder fit`: read points, fit the chosen method, write predictions.csv, fits.json and the report."""
import json
import math
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd

from fit import methods, report
from fit.config import FitConfig, as_fit_config
from fit.errors import FitInputError
from fit.points import PointSet, load_points
from fit.targets import Target, resolve_targets

PRED_COLUMNS = ["method", "target", "params", "tokens", "metric", "predicted", "lower", "upper", "actual"]
METHODS = {
    "olmo_two_step": methods.olmo_two_step,
    "olmo_two_step_flops": lambda ps, t, c: methods.olmo_two_step(ps, t, c, flops=True),
    "olmo_single_step": methods.olmo_single_step,
    "chinchilla": methods.chinchilla,
    "gadre": methods.gadre,
    "best": methods.best,
}


def choose_targets(cfg: FitConfig, ps: PointSet) -> List[Target]:
    if ps.format == "gadre":
        loss_runs, err_runs = methods.gadre_runs(ps)
        return resolve_targets(cfg.targets, ps, loss_runs, err_runs)
    runs = ps.points.drop_duplicates("run")
    smaller = list(runs[runs["params"] < runs["params"].max()]["run"])
    return resolve_targets(cfg.targets, ps, smaller)


def run_fit(cfg) -> Path:
    cfg = as_fit_config(cfg)
    if cfg.method not in METHODS:
        raise FitInputError(f"method={cfg.method}: unknown (one of {', '.join(METHODS)})")
    if not 0 < cfg.interval < 1:
        raise FitInputError(f"interval={cfg.interval}: must lie in (0, 1)")
    ps = load_points(cfg.results, cfg.format, cfg.dataset)
    targets = choose_targets(cfg, ps)
    out = METHODS[cfg.method](ps, targets, cfg)
    out.warnings = ps.dropped_summary() + ps.notes + out.warnings
    out_dir = Path(cfg.out) if cfg.out else _default_out(cfg, ps)
    out_dir.mkdir(parents=True, exist_ok=True)
    preds = pd.DataFrame(out.predictions, columns=PRED_COLUMNS)
    preds.to_csv(out_dir / "predictions.csv", index=False)
    (out_dir / "fits.json").write_text(json.dumps(_clean({
        "method": out.method, "results": ps.source, "format": ps.format, "dataset": cfg.dataset,
        "targets": [t.__dict__ for t in targets], "bootstrap": cfg.bootstrap, "interval": cfg.interval,
        "seed": cfg.seed, "laws": out.fits, "warnings": out.warnings,
        "dropped": ps.dropped.drop(columns=["value"], errors="ignore").to_dict("records"),
    }), indent=1))
    report.write_report(out_dir, cfg, ps, targets, out, preds)
    print(summary(preds, out.warnings))
    return out_dir


def _default_out(cfg: FitConfig, ps: PointSet) -> Path:
    src = Path(ps.source)
    if ps.format == "harness" and src.is_dir():
        return src / "report"
    return Path("outputs") / f"fit-{cfg.method}"


def summary(preds: pd.DataFrame, warnings: List[str]) -> str:
    lines = [f"{'target':<14} {'metric':<24} {'predicted':>10} {'interval':>21} {'actual':>9}"]
    for r in preds.itertuples():
        lines.append(f"{r.target:<14.14} {r.metric:<24.24} {r.predicted:>10.4f} "
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
