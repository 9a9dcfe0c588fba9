"""`ladder fit`: read points, fit the chosen method, write predictions.csv, fits.json and the report."""
import json
import logging
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import List

import pandas as pd

from fit import display
from fit.present import report
from fit.chain import Method
from fit.config import FitConfig, as_fit_config, check_numbers
from fit.errors import FitInputError
from fit.points import PointSet
from fit.predict import apply_holdout, choose_targets, method_named, predict
from fit.present.report import json_ready
from fit.sources import load_points
from fit.targets import actual_value
from ladder.core.configs import ConfigError
from ladder.core.files import atomic_write_text, writable_dir
from ladder.core.layout import REPORT
from ladder.core.plan import Target

log = logging.getLogger(__name__)
# dataset: the data the target is predicted and measured on (a ladder over several is fitted once per dataset)
PRED_COLUMNS = ["method", "target", "params", "tokens", "metric", "predicted", "lower", "upper", "actual", "dataset"]


def run_fit(cfg) -> Path:
    cfg = as_fit_config(cfg)
    method = method_named(cfg.method)
    check_numbers(cfg)
    log.info("reading %s", cfg.results)  # a stage a line, on stderr: the bars below show only in a terminal
    started = time.perf_counter()
    ps = load_points(cfg.results, cfg.format, cfg.dataset)
    log.info("read %d points of %d runs in %.0f s", len(ps.points), ps.points["run"].nunique(),
             time.perf_counter() - started)
    datasets = sorted(ps.points["dataset"].dropna().astype(str).unique())
    if cfg.dataset is None and len(datasets) > 1:  # ladders trained on different data are never fitted as one
        fits = [_fit(replace(cfg, dataset=d), load_points(cfg.results, cfg.format, d), method) for d in datasets]
    else:
        fits = [_fit(cfg, ps, method)]
    out_dir = Path(cfg.out) if cfg.out else _default_out(cfg, ps)
    try:
        writable_dir(out_dir, "out")
    except ConfigError as exc:
        raise FitInputError(str(exc)) from None
    log.info("writing the report to %s", out_dir)
    preds = pd.concat([f.preds for f in fits], ignore_index=True)
    atomic_write_text(out_dir / "predictions.csv", preds.to_csv(index=False))
    records = {f.dataset: _record(cfg, f) for f in fits}
    atomic_write_text(out_dir / "fits.json", json.dumps(json_ready(
        records[fits[0].dataset] if len(fits) == 1 else {"results": ps.source, "datasets": records}), indent=1))
    report.write_report(out_dir, cfg, fits)
    for f in fits:
        if len(fits) > 1:
            print(f"\ndataset {f.dataset} (its runs fitted apart from the other datasets'):")
        shown = report.relabelled(f)[0]  # targets by the names the report gives them
        print(summary(shown.preds, shown.targets, shown.out.warnings, cfg.interval))
    print(f"report: {out_dir / 'report.html'}")
    return out_dir


def _fit(cfg: FitConfig, ps: PointSet, method: Method) -> report.DatasetFit:
    """The method fitted to one dataset's points and its predictions of that dataset's targets."""
    named = sorted(ps.points["dataset"].dropna().astype(str).unique())
    dataset = cfg.dataset or (named[0] if len(named) == 1 else None)
    fit_ps, held = apply_holdout(cfg, ps)
    targets = choose_targets(cfg, fit_ps, held)
    log.info("fitting %s%s: %d targets, %d bootstrap resamples", cfg.method, f" to dataset {dataset}" if dataset else "",
             len(targets), cfg.bootstrap)
    out = predict(method, fit_ps, targets, cfg)
    for pred in out.predictions:  # held-out runs are scored against the full data
        pred["actual"] = actual_value(ps, next(t for t in targets if t.name == pred["target"]), pred["metric"],
                                      ps.profile.final_window)
    out.warnings = fit_ps.dropped_summary() + fit_ps.notes + out.warnings
    preds = pd.DataFrame(out.predictions, columns=PRED_COLUMNS[:-1]).assign(dataset=dataset)
    return report.DatasetFit(dataset, ps, targets, out, preds, [t.name for t in held])


def _record(cfg: FitConfig, f: report.DatasetFit) -> dict:
    """One dataset's fit as fits.json holds it."""
    return {"method": f.out.method, "results": f.ps.source, "format": f.ps.profile.name, "dataset": f.dataset,
            "targets": [t.__dict__ for t in f.targets], "bootstrap": cfg.bootstrap, "interval": cfg.interval,
            "seed": cfg.seed, "holdout": cfg.holdout, "calibrate": cfg.calibrate, "held_out": f.held,
            "laws": f.out.fits, "notes": f.out.notes, "warnings": f.out.warnings,
            "dropped": f.ps.dropped.drop(columns=["value"], errors="ignore").to_dict("records")}


def _default_out(cfg: FitConfig, ps: PointSet) -> Path:
    """A harness run's report/; else outputs/fit-METHOD-INPUT, named by the input (its folder and name, and the
    dataset) so that fits of two inputs never write into one folder."""
    src = Path(ps.source)
    if ps.profile.report_beside and src.is_dir():
        return src / REPORT
    *folder, last = src.resolve().parts[-2:]
    names = [*folder, Path(last).stem, cfg.dataset]
    name = "-".join(re.sub(r"[^\w.-]+", "_", n) for n in names if n and n != src.anchor)
    return Path("outputs") / f"fit-{cfg.method}-{name}"


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
