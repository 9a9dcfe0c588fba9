"""`ladder fit`: read points, fit the chosen method, write predictions.csv, fits.json and the report."""
import json
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd

from fit import display, report
from fit.report import json_ready
from fit.config import FitConfig, as_fit_config, check_numbers
from fit.errors import FitInputError
from fit.points import PointSet
from fit.predict import apply_holdout, choose_targets, method_named, predict
from fit.sources import load_points
from fit.targets import actual_value
from ladder.core.configs import ConfigError
from ladder.core.files import atomic_write_text, writable_dir
from ladder.core.layout import REPORT
from ladder.core.plan import Target

PRED_COLUMNS = ["method", "target", "params", "tokens", "metric", "predicted", "lower", "upper", "actual"]


def run_fit(cfg) -> Path:
    cfg = as_fit_config(cfg)
    method = method_named(cfg.method)
    check_numbers(cfg)
    ps = load_points(cfg.results, cfg.format, cfg.dataset)
    fit_ps, held = apply_holdout(cfg, ps)
    targets = choose_targets(cfg, fit_ps, held)
    out = predict(method, fit_ps, targets, cfg)
    for pred in out.predictions:  # held-out runs are scored against the full data
        pred["actual"] = actual_value(ps, next(t for t in targets if t.name == pred["target"]), pred["metric"],
                                      ps.profile.final_window)
    out.warnings = fit_ps.dropped_summary() + fit_ps.notes + out.warnings
    out_dir = Path(cfg.out) if cfg.out else _default_out(cfg, ps)
    try:
        writable_dir(out_dir, "out")
    except ConfigError as exc:
        raise FitInputError(str(exc)) from None
    preds = pd.DataFrame(out.predictions, columns=PRED_COLUMNS)
    atomic_write_text(out_dir / "predictions.csv", preds.to_csv(index=False))
    atomic_write_text(out_dir / "fits.json", json.dumps(json_ready({
        "method": out.method, "results": ps.source, "format": ps.profile.name, "dataset": cfg.dataset,
        "targets": [t.__dict__ for t in targets], "bootstrap": cfg.bootstrap, "interval": cfg.interval,
        "seed": cfg.seed, "holdout": cfg.holdout, "calibrate": cfg.calibrate, "held_out": [t.name for t in held], "laws": out.fits,
        "notes": out.notes, "warnings": out.warnings,
        "dropped": ps.dropped.drop(columns=["value"], errors="ignore").to_dict("records"),
    }), indent=1))
    report.write_report(out_dir, cfg, ps, targets, out, preds, [t.name for t in held])
    print(summary(preds, targets, out.warnings, cfg.interval))
    print(f"report: {out_dir / 'report.html'}")
    return out_dir


def _default_out(cfg: FitConfig, ps: PointSet) -> Path:
    src = Path(ps.source)
    if ps.profile.report_beside and src.is_dir():
        return src / REPORT
    return Path("outputs") / f"fit-{cfg.method}"


def summary(preds: pd.DataFrame, targets: List[Target], warnings: List[str], interval: float) -> str:
    """What the terminal shows: the warnings that change what the predictions mean (report.FIRST_SCREEN), the
    report's answer (a sentence per target, then a table per kind of metric, accuracies in points) and the other
    warnings, grouped, at most a few of each."""
    groups = report.warning_groups(warnings)
    lines = []
    for title, meaning, items in (g for g in groups if g[0] in report.FIRST_SCREEN):
        lines += [f"warning: {title}: {meaning}"] + [f"  - {x}" for x in items] + [""]
    lines += [f"{name} {text}" for name, text in report.answer_sentences(preds, targets, interval)]
    order = {t: i for i, t in enumerate(dict.fromkeys(preds["target"]))}
    for k in display.order_kinds(preds["metric"].map(display.kind)):
        g = report.kind_rows(preds, k)
        g = g.sort_values("target", key=lambda c: c.map(order), kind="stable")  # a target's rows together
        rows = pd.DataFrame({"target": g["target"], "metric": g["metric"].map(display.label),
                             "predicted [interval]": [display.estimate(r.metric, r.predicted, r.lower, r.upper)
                                                      for r in g.itertuples()],
                             "measured (error)": [display.measured(r.metric, r.predicted, r.actual)
                                                  for r in g.itertuples()]})
        rows = rows.apply(lambda c: c.str.ljust(max(c.str.len().max(), len(c.name))))  # left-aligned text
        lines += ["", display.kind_title(k), rows.to_string(index=False, justify="left")]
    for title, meaning, items in (g for g in groups if g[0] not in report.FIRST_SCREEN):
        lines += ["", f"warning: {title}: {meaning}"] + [f"  - {x}" for x in items[:3]]
        lines += [f"  ... and {len(items) - 3} more in the report"] if len(items) > 3 else []
    return "\n".join(lines)
