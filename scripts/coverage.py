"""Empirical coverage of each method's intervals on every backtest the published data allows, with the mean width:
bootstrap only (raw), widened by one pooled RMS miss (the previous rule, "pooled"), and sized for the distance
(fit.calibration, "calibrated"):
  OLMo ladder: fit <=760M, predict the 1B runs; fit <=370M, predict the 760M and 1B runs;
  Gadre et al. RPJ and C4 grids: fit the three smallest shapes, predict the largest small shape
  (0.411B) and the 1.4B runs.
Accuracies and errors are counted apart from losses, and by distance bucket (d = ln N-ratio + ln D-ratio of a
held-out run beyond its backtest's fit set, fit.calibration.box_distance); a 90 % interval should cover 85-95 % in
each.

    .venv/bin/python scripts/coverage.py [bootstrap] [method,method,...] [backtest name prefix]
"""
import argparse
import sys
from dataclasses import replace

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: fit, ladder, scripts

from fit.calibration import box_distance  # noqa: E402
from fit.config import FitConfig  # noqa: E402
from fit.points import is_accuracy  # noqa: E402
from fit.predict import method_named, predict  # noqa: E402
from fit.runs import RunTable, fit_runs  # noqa: E402
from fit.sources import load_points  # noqa: E402
from ladder.core.plan import Target  # noqa: E402
from scripts.shared_data import shared_data_dir  # noqa: E402

OLMO_METHODS = ["olmo_two_step", "olmo_single_step", "chinchilla", "direct", "best"]
GADRE_METHODS = ["chinchilla", "direct", "best"]  # the gadre method's paper fit set needs the held-out shapes


def backtests():
    """name -> (points restricted to the fit and held-out runs, held-out targets, fit runs)."""
    data = shared_data_dir()
    olmo = load_points(str(data / "olmo-ladder" / "runs"))
    ladder = fit_runs(olmo, [])
    out = {}
    for name, fit_sizes, held_sizes in (("OLMo: <=760M -> 1B", ("190M", "370M", "760M"), ("1B",)),
                                        ("OLMo: <=370M -> 760M+1B", ("190M", "370M"), ("760M", "1B"))):
        out[name] = _split(olmo, [r for r in ladder if r.split("-")[0] in fit_sizes],
                           [r for r in ladder if r.split("-")[0] in held_sizes])
    for ds in ("rpj", "c4_original"):
        g = load_points(str(data / "gadre-scaling"), dataset=ds)
        runs = g.points.drop_duplicates("run")
        small = sorted(runs["params"].unique())[:3]
        held = runs[runs["size"].isin(["0.411B", "1.4B"])]["run"].tolist()
        out[f"Gadre {ds}: 3 smallest shapes -> 0.411B+1.4B"] = _split(g, runs[runs["params"].isin(small)]["run"].tolist(),
                                                                        held)
    return out


def _split(ps, runs, held_runs):
    keep = ps.points[ps.points["run"].isin(set(runs) | set(held_runs))]
    info = keep.drop_duplicates("run").set_index("run")
    held = [Target(r, float(info.loc[r, "params"]), float(info.loc[r, "run_tokens"])) for r in held_runs]
    return replace(ps, points=keep.reset_index(drop=True), notes=[]), held, runs


# Distance buckets: d = ln N-ratio + ln D-ratio beyond the fit set's box (fit.calibration.box_distance).
BUCKETS = [0.0, 0.5, 1.0, 2.0, np.inf]


def bucket(d: float) -> str:
    i = int(np.searchsorted(BUCKETS, d, side="right")) - 1
    return f"d {BUCKETS[i]:g}-{BUCKETS[i + 1]:g}"


def score(preds: pd.DataFrame, table: RunTable) -> dict:
    """(kind, distance bucket) -> (covered, n, mean width) of the predictions with an actual and an interval."""
    p = preds[preds["actual"].notna() & preds["lower"].notna()]
    d = [bucket(box_distance(table, table.runs, n, t)) for n, t in zip(p["params"], p["tokens"])]
    out = {}
    for (kind, where), g in p.groupby([np.where(p["metric"].map(is_accuracy), "acc/err", "loss"), d]):
        inside = (g["lower"] <= g["actual"]) & (g["actual"] <= g["upper"])
        scale = 100 if kind == "acc/err" else 1
        out[kind, where] = (int(inside.sum()), len(g), scale * float((g["upper"] - g["lower"]).mean()))
    return out


def pooled_rule(raw, calibrated, interval: float) -> pd.DataFrame:
    """The raw intervals widened by the previous rule, one pooled RMS miss whatever the distance (the calibrated
    fit's `rms_error`, from the same backtests): the baseline the distance-sized intervals are compared with."""
    rms, z = calibrated.fits.get("backtest", {}).get("rms_error", {}), float(norm.ppf(0.5 + interval / 2))
    out = pd.DataFrame(raw.predictions)
    for i, p in out.iterrows():
        kind = "absolute" if is_accuracy(p["metric"]) else "relative"
        if kind in rms and np.isfinite(p["lower"]):
            extra = z * rms[kind] * (1.0 if kind == "absolute" else abs(p["predicted"]))
            out.loc[i, "lower"] = p["predicted"] - np.hypot(p["predicted"] - p["lower"], extra)
            out.loc[i, "upper"] = p["predicted"] + np.hypot(p["upper"] - p["predicted"], extra)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bootstrap", nargs="?", type=int, default=200, help="bootstrap resamples of each fit")
    parser.add_argument("methods", nargs="?", default="", help="comma-separated methods (default: every one)")
    parser.add_argument("backtest", nargs="?", default="", help="only the backtests whose name starts so, e.g. OLMo")
    args = parser.parse_args()
    if shared_data_dir() is None:
        parser.error("no published ladder data at ../shared/data (set LADDER_SHARED_DATA)")
    n, only, which = args.bootstrap, set(args.methods.split(",")) if args.methods else None, args.backtest
    rows = []
    for bt, (ps, held, runs) in backtests().items():
        if not bt.startswith(which):
            continue
        for m in OLMO_METHODS if bt.startswith("OLMo") else GADRE_METHODS:
            if only and m not in only:
                continue
            cfg = FitConfig(bootstrap=n, calibrate=False)
            raw = predict(method_named(m), ps, held, cfg, runs)
            calibrated = predict(method_named(m), ps, held, replace(cfg, calibrate=True), runs)
            table = RunTable(ps, runs)
            before, pooled, after = (score(p, table) for p in (pd.DataFrame(raw.predictions),
                                                               pooled_rule(raw, calibrated, cfg.interval),
                                                               pd.DataFrame(calibrated.predictions)))
            for kind, where in sorted(set(before) | set(after)):
                b, o, a = (x.get((kind, where), (0, 0, np.nan)) for x in (before, pooled, after))
                rows.append({"backtest": bt, "method": m, "kind": kind, "distance": where, "n": a[1] or b[1],
                             "covered_raw": b[0], "width_raw": round(b[2], 3),
                             "covered_pooled": o[0], "width_pooled": round(o[2], 3),
                             "covered_calibrated": a[0], "width_calibrated": round(a[2], 3)})
            print(pd.DataFrame(rows).query("backtest == @bt and method == @m").to_string(index=False), flush=True)
    df = pd.DataFrame(rows)
    print("\nper backtest and method:\n" + df.to_markdown(index=False))
    for by in (["method", "kind"], ["kind", "distance"], ["method", "kind", "distance"]):
        tot = df.groupby(by)[["n", "covered_raw", "covered_pooled", "covered_calibrated"]].sum()
        for c in ("raw", "pooled", "calibrated"):
            tot[f"coverage_{c}_%"] = (100 * tot[f"covered_{c}"] / tot["n"]).round(1)
        print(f"\nall backtests together, by {', '.join(by)}:\n" + tot.reset_index().to_markdown(index=False))


if __name__ == "__main__":
    main()
