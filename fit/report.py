"""report.md, a self-contained report.html (figures embedded as base64 PNG) and figures/*.png."""
import base64
import html
from pathlib import Path
from typing import List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fit.methods import MethodOutput  # noqa: E402
from ladder.core.files import atomic_write_text  # noqa: E402


def write_report(out_dir: Path, cfg, ps, targets, out: MethodOutput, preds: pd.DataFrame, held: List[str] = ()):
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    figures = []
    for name, fig in _figures(ps, targets, out, preds, cfg.interval):
        fig.savefig(fig_dir / f"{name}.png", dpi=80)
        plt.close(fig)
        figures.append((name, base64.b64encode((fig_dir / f"{name}.png").read_bytes()).decode()))
    table = prediction_table(preds)
    head = [f"# Ladder fit: method `{out.method}`", "",
            f"Input: `{ps.source}` (format {ps.format}{', dataset ' + cfg.dataset if cfg.dataset else ''}); "
            f"{ps.points['run'].nunique()} runs, {len(ps.points)} points kept, {len(ps.dropped)} left out.",
            f"Intervals: {cfg.interval:.0%} bootstrap over runs, {cfg.bootstrap} resamples, seed {cfg.seed}."
            + "".join(f" {n}." for n in out.notes), ""]
    warn = ["## Warnings", ""] + [f"- {w}" for w in out.warnings] + [""] if out.warnings else ["No warnings.", ""]
    back = backtest_table(preds, held)
    md = head + warn
    if back is not None:
        md += ["## Backtest (held-out runs)", "", BACKTEST_NOTE, "", _markdown(back), ""]
    md += ["## Predictions", "", _markdown(table), "", _means(table), ""]
    for title, t in out.tables.items():
        md += [f"## {title}", "", _markdown(t), ""]
    md += ["## Figures", ""]
    md += [f"![{n}](figures/{n}.png)" for n, _ in figures]
    atomic_write_text(out_dir / "report.md", "\n".join(md) + "\n")
    body = [f"<h1>Ladder fit: method <code>{html.escape(out.method)}</code></h1>"]
    body += [f"<p>{html.escape(line)}</p>" for line in head[2:4]]
    body += ["<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in out.warnings) + "</ul>"
             if out.warnings else "<p>No warnings.</p>"]
    if back is not None:
        body += ["<h2>Backtest (held-out runs)</h2>", f"<p>{html.escape(BACKTEST_NOTE)}</p>",
                 _html(back)]
    body += ["<h2>Predictions</h2>", _html(table),
             f"<p>{html.escape(_means(table))}</p>"]
    for title, t in out.tables.items():
        body += [f"<h2>{html.escape(title)}</h2>", _html(t)]
    body += ["<h2>Figures</h2>"]
    body += [f'<figure><img alt="{n}" src="data:image/png;base64,{b}"><figcaption>{n}</figcaption></figure>'
             for n, b in figures]
    atomic_write_text(out_dir / "report.html", "<!doctype html><html><head><meta charset='utf-8'><title>ladder fit</title>"
                                         "<style>body{font-family:sans-serif;max-width:70em;margin:auto}"
                                         "table{border-collapse:collapse}td,th{padding:2px 6px;border:1px solid #ccc}"
                                         "img{max-width:100%}</style></head><body>" + "".join(body) + "</body></html>")


def _markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, floatfmt=".4g")


def _html(table: pd.DataFrame) -> str:
    return table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")


BACKTEST_NOTE = ("holdout=largest: every run of the largest size was left out of the fit; the laws fitted on "
                 "the smaller rungs predict them, and each prediction is compared with the run's own final value.")


def backtest_table(preds: pd.DataFrame, held) -> Optional[pd.DataFrame]:
    """Predicted against actual for the held-out runs, with the signed and relative error."""
    t = preds[preds["target"].isin(list(held))]
    if t.empty:
        return None
    t = t[["target", "metric", "predicted", "lower", "upper", "actual"]].copy()
    t["error"] = t["predicted"] - t["actual"]
    t["rel_error_%"] = 100 * t["error"].abs() / t["actual"].abs()
    return t


def prediction_table(preds: pd.DataFrame) -> pd.DataFrame:
    t = preds.copy()
    t["abs_error"] = (t["predicted"] - t["actual"]).abs()
    t["rel_error_%"] = 100 * t["abs_error"] / t["actual"].abs()
    t["covered"] = np.where(t["actual"].notna(), (t["lower"] <= t["actual"]) & (t["actual"] <= t["upper"]), None)
    return t.drop(columns=["method"])


def _means(table: pd.DataFrame) -> str:
    have = table[table["actual"].notna()]
    if have.empty:
        return "No actual values in the data for these targets."
    parts = []
    for kind, g in have.groupby(have["metric"].str.split(":").str[1]):
        scale = 100 if kind == "acc" else 1
        parts.append(f"{kind}: mean absolute error {scale * g['abs_error'].mean():.3g}{' points' if scale == 100 else ''}, "
                     f"mean relative error {g['rel_error_%'].mean():.3g} %, "
                     f"interval covers {int(g['covered'].sum())}/{len(g)}")
    return "; ".join(parts)


def _figures(ps, targets, out: MethodOutput, preds, interval: float):
    yield "loss_vs_compute", _loss_vs_compute(ps, preds)
    for task, p in out.plots.items():
        if isinstance(p, dict) and "step1" in p:
            yield f"step1_{task}", _step1(task, p, targets)
            yield f"step2_{task}", _step2(task, p, out, interval)
    have = preds[preds["actual"].notna()]
    if not have.empty:
        yield "predicted_vs_actual", _pred_vs_actual(have, interval)
    yield "residuals", _residuals(out)


def _loss_vs_compute(ps, preds):
    p = ps.points
    metric = next((m for m in ("c4_val:loss", "c4_en:loss") if m in set(p["metric"])),
                  next((m for m in sorted(p["metric"].unique()) if m.endswith(":loss")), None))
    fig, ax = plt.subplots(figsize=(6, 4))
    if metric is None:
        ax.set_title("no loss metric in the data")
        return fig
    final = p[(p["metric"] == metric)].sort_values("tokens").groupby("run").tail(1)
    final = final.assign(C=6 * final["params"] * final["run_tokens"])
    for m, g in final.groupby("multiplier"):
        g = g.sort_values("C")
        ax.plot(g["C"], g["value"], "o-", ms=4, label=f"M = {m:g}")
    pr = preds[preds["metric"] == metric]
    if not pr.empty:
        C = 6 * pr["params"] * pr["tokens"]
        ax.errorbar(C, pr["predicted"], yerr=[pr["predicted"] - pr["lower"], pr["upper"] - pr["predicted"]],
                    fmt="*", color="k", ms=10, label="predicted")
    ax.set(xscale="log", yscale="log", xlabel="compute C = 6ND (FLOPs)", ylabel=metric,
           title=f"{metric} against compute, one curve per multiplier")
    ax.legend(fontsize=7)
    return fig


def _step1(task, p, targets):
    fit, X, y, mults = p["step1"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    if X.shape[0] == 2:
        for n in np.unique(X[0]):
            sel = X[0] == n
            ax.scatter(X[1][sel], y[sel], s=18, label=f"N = {n:.3g}")
            d = np.geomspace(X[1].min() * 0.8, max(t.tokens for t in targets) * 1.2, 60)
            ax.plot(d, fit.predict(np.vstack([np.full_like(d, n), d])), lw=0.8)
        for t in targets:
            d = np.geomspace(X[1].min() * 0.8, t.tokens * 1.2, 60)
            ax.plot(d, fit.predict(np.vstack([np.full_like(d, t.params), d])), "k--", lw=0.8)
            ax.plot(t.tokens, p["targets"][t.name][0], "k*", ms=10)
        ax.set_xlabel("tokens D")
    else:
        ax.scatter(X[0], y, s=18)
        c = np.geomspace(X[0].min() * 0.8, X[0].max() * 1e3, 60)
        ax.plot(c, fit.predict(c[None, :]), lw=0.8)
        ax.set_xlabel("training FLOPs C")
    ax.set(xscale="log", ylabel=p["intermediate"], title=f"{task}: step 1 ({fit.law.name})")
    ax.legend(fontsize=6)
    return fig


def _step2(task, p, out: MethodOutput, interval: float):
    fit, xs, ys = p["step2"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.scatter(xs, ys, s=3, alpha=0.5, label="checkpoints (smoothed)")
    grid = np.linspace(0, max(xs) * 1.05, 200)
    ax.plot(grid, fit.predict(grid[None, :]), "r-", lw=1, label="fit")
    keys = [f"param|{p['fit_key']}|{k}" for k in fit.law.params]
    if all(k in out.samples for k in keys):
        P = np.column_stack([out.samples[k] for k in keys])
        P = P[np.all(np.isfinite(P), axis=1)]
        if len(P):
            curves = np.array([fit.law.f(grid[None, :], q) for q in P])
            lo, hi = np.quantile(curves, [(1 - interval) / 2, (1 + interval) / 2], axis=0)
            ax.fill_between(grid, lo, hi, color="r", alpha=0.2, label=f"{interval:.0%} bootstrap band")
    for name, (b, a) in p["targets"].items():
        ax.plot(b, a, "k*", ms=10)
        ax.annotate(name, (b, a), fontsize=7)
    ax.set(xlabel=p["intermediate"], ylabel=f"{task} accuracy", title=p.get("title", f"{task}: step 2 sigmoid"), ylim=(0, 1))
    ax.legend(fontsize=6)
    return fig


def _pred_vs_actual(have, interval: float):
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.errorbar(have["actual"], have["predicted"],
                yerr=[(have["predicted"] - have["lower"]).clip(lower=0), (have["upper"] - have["predicted"]).clip(lower=0)],
                fmt="o", ms=4, capsize=2)
    for r in have.itertuples():
        ax.annotate(f"{r.metric}", (r.actual, r.predicted), fontsize=6)
    lo, hi = have[["actual", "predicted"]].min().min(), have[["actual", "predicted"]].max().max()
    ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
    ax.set(xlabel="actual", ylabel="predicted", title=f"predicted vs actual ({interval:.0%} intervals)")
    return fig


def _residuals(out: MethodOutput):
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = [n for n, rec in out.fits.items() if "residuals" in rec]
    for i, n in enumerate(names):
        r = np.asarray(out.fits[n]["residuals"], float)
        ax.scatter(np.full(len(r), i) + np.random.default_rng(0).uniform(-0.2, 0.2, len(r)), r, s=4)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=70, fontsize=6)
    ax.set(ylabel="actual − fitted", title="fit residuals")
    return fig
