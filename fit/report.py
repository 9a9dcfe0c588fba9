"""report.md, a self-contained report.html (figures embedded as base64 PNG) and figures/*.png.

The report opens with the answer (each target's predictions with intervals, in one table, and a
sentence on the method, the runs and the interval widths), then any backtest, the warnings, the
figures (one small-multiples figure per stage of the method's chain), and the method's details last."""
import base64
import html
from pathlib import Path
from typing import List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fit.chain import FittedStep, MethodOutput  # noqa: E402
from fit.points import is_accuracy  # noqa: E402
from ladder.core.files import atomic_write_text  # noqa: E402

DPI = 150
PANEL = (4.2, 3.2)  # inches per small-multiples panel


def write_report(out_dir: Path, cfg, ps, targets, out: MethodOutput, preds: pd.DataFrame, held: List[str] = ()):
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    figures = []
    for name, caption, fig in _figures(ps, targets, out, preds, cfg.interval):
        fig.savefig(fig_dir / f"{name}.png", dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        figures.append((name, caption, base64.b64encode((fig_dir / f"{name}.png").read_bytes()).decode()))
    answer, back, details = answer_table(preds), backtest_table(preds, held), prediction_table(preds)
    title = f"Ladder fit: method `{out.method}`"
    lead = answer_sentence(out, ps, preds, cfg)
    source = (f"Input: `{ps.source}` (format {ps.profile.name}{', dataset ' + cfg.dataset if cfg.dataset else ''}); "
              f"{ps.points['run'].nunique()} runs, {len(ps.points)} points kept, {len(ps.dropped)} left out.")
    sections = [("Predictions", [lead], answer)]
    if back is not None:
        sections.append(("Backtest (held-out runs)", [BACKTEST_NOTE], back))
    sections.append(("Warnings", [f"- {w}" for w in out.warnings] or ["No warnings."], None))
    method = [source, f"Intervals: {cfg.interval:.0%} bootstrap over runs, {cfg.bootstrap} resamples, seed "
                      f"{cfg.seed}." + "".join(f" {n}." for n in out.notes), _means(details)]
    tail = [("Method details", method, details)] + [(t, [], table) for t, table in out.tables.items()]
    md = [f"# {title}", ""]
    for head, lines, table in sections:
        md += [f"## {head}", ""] + lines + [""] + ([_markdown(table), ""] if table is not None else [])
    md += ["## Figures", ""] + [f"![{c}](figures/{n}.png)\n" for n, c, _ in figures]
    for head, lines, table in tail:
        md += [f"## {head}", ""] + lines + [""] + ([_markdown(table), ""] if table is not None else [])
    atomic_write_text(out_dir / "report.md", "\n".join(md) + "\n")

    def section(head, lines, table):
        items = [f"<li>{html.escape(x[2:])}</li>" for x in lines if x.startswith("- ")]
        paras = [f"<p>{html.escape(x)}</p>" for x in lines if not x.startswith("- ")]
        return ([f"<h2>{html.escape(head)}</h2>"] + paras + (["<ul>" + "".join(items) + "</ul>"] if items else [])
                + ([_html(table)] if table is not None else []))

    body = [f"<h1>{html.escape(title.replace('`', ''))}</h1>"]
    for s in sections:
        body += section(*s)
    body += ["<h2>Figures</h2>"] + [f'<figure><img alt="{html.escape(c)}" src="data:image/png;base64,{b}">'
                                    f"<figcaption>{html.escape(c)}</figcaption></figure>" for _, c, b in figures]
    for s in tail:
        body += section(*s)
    atomic_write_text(out_dir / "report.html", "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                      "<meta name='viewport' content='width=device-width, initial-scale=1'><title>ladder fit</title>"
                      "<style>body{font-family:sans-serif;max-width:80em;margin:auto;padding:0 1em}"
                      "table{border-collapse:collapse;margin:0.5em 0}td,th{padding:2px 8px;border:1px solid #ccc}"
                      "figure{margin:1em 0}img{max-width:100%;height:auto}</style></head><body>"
                      + "".join(body) + "</body></html>")


def _markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, floatfmt=".4g")


def _html(table: pd.DataFrame) -> str:
    return table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")


BACKTEST_NOTE = ("holdout=largest: every run of the largest size was left out of the fit; the laws fitted on "
                 "the smaller rungs predict them, and each prediction is compared with the run's own final value.")


def _scale(metric: str) -> float:
    """Accuracies and errors are shown in points (%), losses as they are."""
    return 100.0 if is_accuracy(metric) else 1.0


def answer_table(preds: pd.DataFrame) -> pd.DataFrame:
    """One row per metric, one column per target: `predicted [lower, upper]` (accuracy and error in
    points), and the measured value beside it where the data has the target's run."""
    rows = {}
    for r in preds.itertuples():
        k = _scale(r.metric)
        cell = f"{k * r.predicted:.4g}" + ("" if pd.isna(r.lower) else f" [{k * r.lower:.4g}, {k * r.upper:.4g}]")
        rows.setdefault(r.metric, {})[r.target] = cell
        if not pd.isna(r.actual):
            rows[r.metric][f"{r.target} measured"] = f"{k * r.actual:.4g}"
    table = pd.DataFrame.from_dict(rows, orient="index")
    order = [c for t in dict.fromkeys(preds["target"]) for c in (t, f"{t} measured") if c in table.columns]
    return table[order].fillna("").rename_axis("metric").reset_index()


def answer_sentence(out: MethodOutput, ps, preds: pd.DataFrame, cfg) -> str:
    runs = ps.points.drop_duplicates("run")
    runs = runs[runs["run"].isin(out.runs)] if out.runs else runs
    widths = []
    for kind, g in preds.groupby(preds["metric"].str.split(":").str[1]):
        w = (g["upper"] - g["lower"]).dropna()
        if len(w):
            unit = " points" if _scale(f"x:{kind}") == 100 else ""
            widths.append(f"{kind} {_scale(f'x:{kind}') * w.mean():.3g}{unit}")
    return (f"Method `{out.method}` fitted on {runs['run'].nunique()} runs of {runs['params'].nunique()} sizes predicts "
            f"{preds['target'].nunique()} target(s). " + (f"Mean width of the {cfg.interval:.0%} intervals: "
                                                          + ", ".join(widths) + "." if widths else
                                                          "No intervals (bootstrap=0)."))


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
    yield "loss_vs_compute", "final loss against compute, one curve per tokens-per-parameter ratio", \
        _loss_vs_compute(ps, preds)
    shown = {k: out.steps[k] for k in (out.shown or out.steps) if k in out.steps}
    fed = {k: f for k, f in shown.items() if f.step.fed_by is not None}
    first = {k: f for k, f in out.steps.items() if f.step.fed_by is None
             and (not out.shown or k in shown or any(g.step.fed_by == k for g in fed.values()))}
    actual = preds.set_index(["target", "metric"])["actual"].to_dict()
    if first:
        yield "step1", "fits from (N, D) or compute: fitted runs (dots), predicted targets (stars), " \
                       "measured targets (open circles)", _grid(first, lambda ax, f: _step1(ax, f, targets, actual))
    if fed:
        captions = out.shown
        yield "step2", f"fits fed by the step before: points, fit, {interval:.0%} bootstrap band, predicted targets " \
                       "(stars) and measured targets (open circles)", _grid(
            fed, lambda ax, f: _step2(ax, f, out, targets, actual, interval, captions.get(f.step.key)))
    have = preds[preds["actual"].notna()]
    if not have.empty:
        yield "predicted_vs_actual", f"predicted against measured ({interval:.0%} intervals)", \
            _pred_vs_actual(have, interval)
    yield "residuals", "residuals of every fit", _residuals(out)


def _grid(items, draw):
    n = len(items)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL[0] * cols, PANEL[1] * rows), squeeze=False)
    for ax, f in zip(axes.flat, items.values()):
        draw(ax, f)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8,
                   bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def _loss_vs_compute(ps, preds):
    p = ps.points
    metric = next((m for m in ("c4_val:loss", "c4_en:loss") if m in set(p["metric"])),
                  next((m for m in sorted(p["metric"].unique()) if m.endswith(":loss")), None))
    fig, ax = plt.subplots(figsize=(7, 4.5))
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
           title=f"{metric} against compute")
    ax.legend(fontsize=7, ncol=2)
    return fig


def _step1(ax, f: FittedStep, targets, actual):
    s, fit = f.step, f.fit
    X, y = s.points.X, s.output_of(s.points.y)
    tx, ty = f.target_x, s.output_of(f.target_value)
    if X.shape[0] == 2:
        lo, hi = min(X[1].min(), tx[1].min()) * 0.8, max(X[1].max(), tx[1].max()) * 1.2
        grid = np.geomspace(lo, hi, 60)
        for n in np.unique(X[0]):
            sel = X[0] == n
            dots = ax.scatter(X[1][sel], y[sel], s=14, label=f"N = {n:.3g}")
            ax.plot(grid, s.output_of(fit.predict(np.vstack([np.full_like(grid, n), grid]))), lw=0.8,
                    color=dots.get_facecolor()[0])
        for i, t in enumerate(targets):
            ax.plot(grid, s.output_of(fit.predict(np.vstack([np.full_like(grid, tx[0, i]), grid]))), "k--", lw=0.7)
        xs = tx[1]
    else:
        ax.scatter(X[0], y, s=14)
        grid = np.geomspace(X[0].min() * 0.8, max(X[0].max(), tx[0].max()) * 1.2, 60)
        ax.plot(grid, s.output_of(fit.predict(grid[None, :])), lw=0.8)
        xs = tx[0]
    ax.plot(xs, ty, "k*", ms=10, label="predicted target")
    measured = np.array([actual.get((t.name, s.output), np.nan) for t in targets])
    if np.isfinite(measured).any():
        ax.plot(xs, measured, "o", mfc="none", mec="r", ms=8, label="measured target")
    ax.set_xscale("log")
    ax.set_xlabel(s.x_label, fontsize=8)
    ax.set_ylabel(s.output or s.key, fontsize=8)
    ax.set_title(f"{s.key} ({fit.law.name})", fontsize=9)
    ax.tick_params(labelsize=7)


def _step2(ax, f: FittedStep, out: MethodOutput, targets, actual, interval: float, caption=None):
    s, fit = f.step, f.fit
    xs, ys = s.points.X[0], s.points.y
    ax.scatter(xs, ys, s=3, alpha=0.4, label="fitted points")
    grid = np.linspace(0, max(xs.max(), f.target_x.max()) * 1.05, 200)
    ax.plot(grid, fit.predict(grid[None, :]), "r-", lw=1, label="fit")
    keys = [f"param|{s.key}|{k}" for k in fit.law.params]
    if all(k in out.samples for k in keys):
        P = np.column_stack([out.samples[k] for k in keys])
        P = P[np.all(np.isfinite(P), axis=1)]
        if len(P):
            curves = fit.law.f(grid[None, :], P.T[..., None])
            lo, hi = np.quantile(curves, [(1 - interval) / 2, (1 + interval) / 2], axis=0)
            ax.fill_between(grid, lo, hi, color="r", alpha=0.2, label=f"{interval:.0%} bootstrap band")
    ax.plot(f.target_x[0], f.target_value, "k*", ms=10, label="predicted target")
    inter = out.steps[s.fed_by].step.output
    mx = np.array([actual.get((t.name, inter), np.nan) for t in targets])
    my = np.array([actual.get((t.name, s.output), np.nan) for t in targets])
    if np.isfinite(mx + my).any():
        ax.plot(mx, my, "o", mfc="none", mec="b", ms=8, label="measured target")
    ax.set_xlabel(s.x_label, fontsize=8)
    ax.set_ylabel(s.output, fontsize=8)
    ax.set_title(caption or s.key, fontsize=9)
    ax.tick_params(labelsize=7)


def _pred_vs_actual(have, interval: float):
    """One panel per kind of metric (acc, loss, ...): predicted against measured with intervals."""
    kinds = {kind: g for kind, g in have.groupby(have["metric"].str.split(":").str[1])}

    def draw(ax, item):
        kind, g = item
        k = _scale(f"x:{kind}")
        a, p = k * g["actual"], k * g["predicted"]
        ax.errorbar(a, p, yerr=[(k * (g["predicted"] - g["lower"])).clip(lower=0),
                                (k * (g["upper"] - g["predicted"])).clip(lower=0)], fmt="o", ms=4, capsize=2)
        lo, hi = min(a.min(), p.min()), max(a.max(), p.max())
        ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
        unit = " (points)" if k == 100 else ""
        ax.set_xlabel(f"measured {kind}{unit}", fontsize=8)
        ax.set_ylabel(f"predicted {kind}{unit}", fontsize=8)
        ax.set_title(f"{kind}: {len(g)} predictions", fontsize=9)

    return _grid({k: (k, g) for k, g in kinds.items()}, draw)


def _residuals(out: MethodOutput):
    names = [n for n, rec in out.fits.items() if "residuals" in rec]
    fig, ax = plt.subplots(figsize=(max(7, 0.3 * len(names)), 4))
    for i, n in enumerate(names):
        r = np.asarray(out.fits[n]["residuals"], float)
        ax.scatter(np.full(len(r), i) + np.random.default_rng(0).uniform(-0.2, 0.2, len(r)), r, s=4)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=70, ha="right", fontsize=7)
    ax.set(ylabel="actual − fitted", title="fit residuals")
    fig.tight_layout()
    return fig
