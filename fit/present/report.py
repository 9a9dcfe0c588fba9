"""report.md, a self-contained report.html (figures embedded as base64 PNG) and figures/*.png.

In the order a researcher asks: per target one sentence with each task's predicted accuracy, its interval,
the measured value and error where the data has the target's run, and the mean absolute error; the
accuracies in a table, then the losses (one table per kind, each in its unit); the figures (fit.present.figures);
the fitted parameters with their intervals; the method's details; the warnings last, grouped, each group
saying what it means for the prediction; and a footer with the provenance (commit, date, command, input)."""
import base64
import html
import logging
import math
import re
import shlex
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fit import display
from fit.chain import MethodOutput
from fit.present.figures import DPI, NOT_MEASURED, SINGLE, STYLE, bootstrap_measures, figure_steps, figures, step_title
from fit.fitting import STEEP, bound_hits, steep_exponents
from fit.points import PointSet, is_accuracy
from fit.runs import choose_primary
from ladder.core.files import atomic_write_text
from ladder.core.provenance import harness_commit

log = logging.getLogger(__name__)
BACKTEST_NOTE = ("holdout=largest: every run of the largest size was left out of the fit; the laws fitted on "
                 "the smaller rungs predict them, and each prediction is compared with the run's own final value.")
CSS = ("body{font-family:sans-serif;max-width:80em;margin:auto;padding:0 1em;line-height:1.35}"
       "h1{font-size:1.5em;margin:0.6em 0 0.2em}h2{font-size:1.2em;margin:1.2em 0 0.3em}h3{font-size:1em}"
       "p.answer{margin:0.35em 0}table{border-collapse:collapse;margin:0.4em 0}"
       "td,th{padding:2px 8px;border:1px solid #ccc;white-space:nowrap}td{text-align:right}"
       "th,td.text{white-space:normal}td:first-child{white-space:nowrap}"  # headers and names may wrap (not a
       # row's name, numbers never): wide tables stay on the page
       "td:first-child,td.text{text-align:left}figure{margin:1em 0}img{max-width:100%;height:auto}"
       "figure.single img{max-width:min(100%,60em)}div.wide{overflow-x:auto}"
       "footer{color:#555;font-size:0.85em;border-top:1px solid #ccc;margin-top:2em;padding:0.5em 0 2em}")


class DatasetFit(NamedTuple):
    """One dataset's fit, as a report section shows it: its points, targets, the method's output, the predictions
    and the held-out runs (holdout=largest). `dataset` is None where the data names none."""
    dataset: Optional[str]
    ps: PointSet
    targets: list
    out: MethodOutput
    preds: pd.DataFrame
    held: List[str]


def relabelled(fit: DatasetFit) -> Tuple[DatasetFit, List[str]]:
    """The fit with each target that is a run whose id does not name its size (Gadre et al.'s
    `rpj-open_lm_1b-32.0`) named as the papers name models, by size and M (`1.4B-M640`), for the report and the
    terminal; and a sentence saying which run each new name is (none where two would share a name)."""
    runs = fit.ps.points.drop_duplicates("run").set_index("run")
    names = {}
    for t in fit.targets:
        if t.name in runs.index and str(runs.loc[t.name, "size"]) not in t.name:
            m = pd.to_numeric(runs.loc[t.name, "multiplier"], errors="coerce")
            if np.isfinite(m):
                names[t.name] = f"{runs.loc[t.name, 'size']}-M{m:g}"
    kept = {t.name for t in fit.targets} - set(names)
    if not names or len(set(names.values()) | kept) < len(names) + len(kept):
        return fit, []
    shown = lambda n: names.get(n, n)  # noqa: E731
    said = "Targets named by size and M (tokens per parameter): " + ", ".join(
        f"{new} is run {old}" for old, new in names.items()) + "."
    # a run id as a whole word of a warning (not inside a longer id: -1.0 is no part of -1.05)
    run_id = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, names)) + r")(?![\w-]|\.\d)")
    warnings = [run_id.sub(lambda m: names[m[1]], w) for w in fit.out.warnings]
    return fit._replace(targets=[replace(t, name=shown(t.name)) for t in fit.targets],
                        preds=fit.preds.assign(target=fit.preds["target"].map(shown)),
                        held=[shown(n) for n in fit.held], out=replace(fit.out, warnings=warnings)), [said]


# The reach warning of fit.calibration.reach_warnings, whose numbers the answer sentence of its target repeats.
REACH = re.compile(r"target (?P<target>.+?) is (?P<times>[\d.]+)× the largest fitted N")
NARROW = ("Its intervals are likely too narrow: it lies {}× beyond the largest fitted N, further (in distance d) than "
          "any backtest that calibrated them reached (Warnings).")


def too_narrow(warnings: List[str]) -> dict:
    """target -> how many times the largest fitted N it lies, for each target whose intervals the calibration
    warns are likely too narrow."""
    return {m["target"]: m["times"] for w in warnings if (m := REACH.search(w)) and "too narrow" in w}


def write_report(out_dir: Path, cfg, fits: List[DatasetFit]):
    """The report of one fit, or of a ladder over several datasets: a section per dataset, each its own fit."""
    first = fits[0]
    title = f"Ladder fit: {first.out.method} on {'/'.join(Path(first.ps.source).parts[-2:])}"
    footer = provenance(cfg, first.ps)
    md, body = [f"# {title}", ""], [f"<h1>{html.escape(title)}</h1>"]
    if len(fits) > 1:
        names = ", ".join(str(f.dataset) for f in fits)
        lead = (f"This ladder was trained on {len(fits)} datasets ({names}). Each dataset's runs are fitted apart, "
                f"and each target is predicted and measured on its own dataset: one section per dataset.")
        md += [lead, ""]
        body += [f"<p>{html.escape(lead)}</p>"]
    for f in fits:
        sub = f"figures/{f.dataset}" if len(fits) > 1 else "figures"
        section_md, section_html = _section(out_dir, sub, cfg, f, deeper=len(fits) > 1)
        md += section_md
        body += section_html
    md += ["---", ""] + [f"{x}  " for x in footer]
    atomic_write_text(out_dir / "report.md", "\n".join(md) + "\n")
    body += ["<footer>" + "<br>".join(html.escape(x) for x in footer) + "</footer>"]
    atomic_write_text(out_dir / "report.html", html_page(title, body))


def _section(out_dir: Path, sub: str, cfg, fit: DatasetFit, deeper: bool) -> Tuple[List[str], List[str]]:
    """(markdown lines, html) of one fit, its figures written under out_dir/sub; `deeper`: a dataset's section,
    its headings one level down under the dataset's own."""
    fit, renamed = relabelled(fit)
    narrow = too_narrow(fit.out.warnings)  # the warnings name the targets as the report does
    ps, targets, out, preds, held = fit.ps, fit.targets, fit.out, fit.preds, fit.held
    fig_dir = out_dir / sub
    fig_dir.mkdir(parents=True, exist_ok=True)
    shown = []
    started = time.perf_counter()
    with plt.rc_context(STYLE):
        for name, caption, fig in figures(ps, targets, out, preds, cfg.interval):
            fig.savefig(fig_dir / f"{name}.png", dpi=DPI, bbox_inches="tight")
            plt.close(fig)
            log.info("figure %s drawn (%.0f s)", f"{sub}/{name}.png", time.perf_counter() - started)
            shown.append((name, caption, base64.b64encode((fig_dir / f"{name}.png").read_bytes()).decode()))
    lead = [method_sentence(out, ps, preds, cfg)] + ([BACKTEST_NOTE] if held else []) + renamed
    answers = [(name, text + (f" {NARROW.format(narrow[name])}" if name in narrow else ""))
               for name, text in answer_sentences(preds, targets, cfg.interval)]
    tables = [(display.kind_title(k), kind_table(preds, k)) for k in display.order_kinds(preds["metric"].map(display.kind))]
    note = (f"Each cell: predicted [{cfg.interval:.0%} interval]; measured (prediction − measured: points for "
            "accuracies, % of the measured value for losses).")
    params = parameter_tables(out, figure_steps(out, choose_primary(set(ps.points["metric"]))))
    details = method_lines(out, ps, cfg, fit.dataset)
    method_tables = [(t, _pretty_tasks(table)) for t, table in out.tables.items()]
    groups = warning_groups(out.warnings)
    first = [g for g in groups if g[0] in FIRST_SCREEN]  # above the predictions: they change what they mean
    groups = [g for g in groups if g[0] not in FIRST_SCREEN]
    none = "No other warnings." if first else "No warnings."
    h2, h3 = ("###", "####") if deeper else ("##", "###")

    md = ([f"## Dataset {fit.dataset}", ""] if deeper else []) + [*lead, ""]
    for head, meaning, items in first:
        md += [f"**{head}.** {meaning}", ""] + [f"- {x}" for x in items] + [""]
    md += [f"{h2} Predictions", ""]
    md += [f"**{name}** {text}\n" for name, text in answers] + [note, ""]
    for head, table in tables:
        md += [f"{h3} {head}", "", markdown_table(table), ""]
    md += [f"{h2} Figures", ""] + [f"![{c}]({sub}/{n}.png)\n\n*{c}*\n" for n, c, _ in shown]
    md += [f"{h2} Fitted parameters", ""]
    for head, formula, table in params:
        md += [f"{h3} {head}", "", formula, "", markdown_table(table), ""]
    md += [f"{h2} Method details", ""] + [f"- {x}" for x in details] + [""]
    for head, table in method_tables:
        md += [f"{h3} {head}", "", markdown_table(table), ""]
    md += [f"{h2} Warnings", ""] + ([none, ""] if not groups else [])
    for head, meaning, items in groups:
        md += [f"{h3} {head}", "", meaning, ""] + [f"- {x}" for x in items] + [""]

    e = html.escape
    h2, h3 = ("h3", "h4") if deeper else ("h2", "h3")
    body = [f"<h2>Dataset {e(str(fit.dataset))}</h2>"] if deeper else []
    body += [f"<p>{e(x)}</p>" for x in lead]
    for head, meaning, items in first:
        body += [f"<p><b>{e(head)}.</b> {e(meaning)}</p>", "<ul>" + "".join(f"<li>{e(x)}</li>" for x in items) + "</ul>"]
    body += [f"<{h2}>Predictions</{h2}>"]
    body += [f"<p class='answer'><b>{e(name)}</b> {e(text)}</p>" for name, text in answers] + [f"<p><small>{e(note)}</small></p>"]
    for head, table in tables:
        body += [f"<{h3}>{e(head)}</{h3}>", html_table(table)]
    body += [f"<{h2}>Figures</{h2}>"] + [f'<figure class="{"single" if n in SINGLE else "grid"}"><img alt="{e(c)}" '
                                         f'src="data:image/png;base64,{b}"><figcaption>{e(c)}</figcaption></figure>'
                                         for n, c, b in shown]
    body += [f"<{h2}>Fitted parameters</{h2}>"]
    for head, formula, table in params:
        body += [f"<{h3}>{e(head)}</{h3}>", f"<p>{e(formula)}</p>", html_table(table)]
    body += [f"<{h2}>Method details</{h2}>", "<ul>" + "".join(f"<li>{e(x)}</li>" for x in details) + "</ul>"]
    for head, table in method_tables:
        body += [f"<{h3}>{e(head)}</{h3}>", html_table(table)]
    body += [f"<{h2}>Warnings</{h2}>"] + ([f"<p>{none}</p>"] if not groups else [])
    for head, meaning, items in groups:
        body += [f"<{h3}>{e(head)}</{h3}>", f"<p>{e(meaning)}</p>",
                 "<ul>" + "".join(f"<li>{e(x)}</li>" for x in items) + "</ul>"]
    return md, body


def html_page(title: str, body: List[str]) -> str:
    """A self-contained page: its style inline, its figures embedded."""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>" + "".join(body) + "</body></html>")


def markdown_table(table: pd.DataFrame) -> str:
    if isinstance(table.columns, pd.MultiIndex):  # one header row: `13B-5T predicted`, `13B-5T measured (error)`
        table = table.set_axis([" ".join(x for x in c if x) for c in table.columns], axis=1)
    return table.to_markdown(index=False, disable_numparse=True)


# A cell that reads as a number (with its interval, unit or sign): right-aligned, so digits line up; text reads left.
NUMBER = re.compile(r"^\s*(?:[-+−~<>≤≥]|over |under )?\s*[\d.]")


def html_table(table: pd.DataFrame) -> str:
    """The table as HTML: number cells right-aligned, text cells (names, winners, notes) left-aligned."""
    cells = re.sub(r"<td>(.*?)</td>", lambda m: m.group(0) if NUMBER.match(m.group(1)) or not m.group(1) else
                   f"<td class='text'>{m.group(1)}</td>", table.to_html(index=False, na_rep="", border=0,
                                                                    justify="center"), flags=re.S)
    return "<div class='wide'>" + cells + "</div>"


def method_sentence(out: MethodOutput, ps, preds: pd.DataFrame, cfg) -> str:
    runs = ps.points.drop_duplicates("run")
    runs = runs[runs["run"].isin(out.runs)] if out.runs else runs
    sizes = sorted(runs["params"].astype(float).unique())
    span = f"N = {display.count(sizes[0])}–{display.count(sizes[-1])}" if len(sizes) > 1 else \
        f"N = {display.count(sizes[0])}" if sizes else ""
    widths = []
    for k in display.order_kinds(preds["metric"].map(display.kind)):
        g = preds[preds["metric"].map(display.kind) == k]
        w = (g["upper"] - g["lower"]).dropna()
        if len(w):
            unit = " points" if is_accuracy(g["metric"].iloc[0]) else " " + display.KINDS.get(k, ("", ""))[1]
            widths.append(f"{display.KINDS.get(k, (k,))[0]} {display.scale(g['metric'].iloc[0]) * w.mean():.3g}{unit}")
    n = preds["target"].nunique()
    return (f"Method {out.method}, fitted on {runs['run'].nunique()} runs of {len(sizes)} sizes ({span}), predicts "
            f"{n} target{'s' * (n != 1)}. " + (f"Mean width of its {cfg.interval:.0%} intervals: " + ", ".join(widths) + "."
                                                if widths else "No intervals (bootstrap=0)."))


def answer_sentences(preds: pd.DataFrame, targets, interval: float) -> List[Tuple[str, str]]:
    """(target, sentence) per target: its N, D and C; each task's prediction with its interval, the measured
    value and error where known, and the mean absolute error; then its primary loss."""
    out = []
    for t in targets:
        p = preds[preds["target"] == t.name]
        if p.empty:
            continue
        head = (f"(N = {display.count(t.params)}, D = {display.count(t.tokens)}, "
                f"C = {display.flops(float(display.compute(t.params, t.tokens)))} FLOPs):")
        acc = _ordered(p[p["metric"].map(is_accuracy)])
        parts = [_said(r) for r in acc.itertuples()]
        have = acc[acc["actual"].notna()]
        score = ""
        if len(have) > 1:
            mae, inside = _score(have)
            score = f"; mean absolute error {mae} points over {len(have)} tasks" + (
                f", {inside[0]} of {inside[1]} measured values inside the {interval:.0%} intervals" if inside else "")
        primary = choose_primary(set(p["metric"]))
        loss = [_said(r, display.named(r.metric)) for r in p[p["metric"] == primary].itertuples()]
        text = ", ".join(parts) + score + ("; " if parts and loss else "") + "".join(loss)
        out.append((t.name, f"{head} {text or 'no prediction'}."))
    return out


def kind_rows(preds: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The predictions of one kind of metric, tasks in the papers' order."""
    return _ordered(preds[preds["metric"].map(display.kind) == kind])


def _ordered(preds: pd.DataFrame) -> pd.DataFrame:
    order = {m: i for i, m in enumerate(display.order_metrics(preds["metric"]))}
    return preds.iloc[np.argsort(preds["metric"].map(order).to_numpy(), kind="stable")]


def _said(r, name: Optional[str] = None) -> str:
    """`MMLU 51.9 [46.5, 55.9] (measured 51.6, +0.3)`."""
    said = f"{name or display.label(r.metric)} {display.estimate(r.metric, r.predicted, r.lower, r.upper)}"
    if np.isfinite(r.actual):
        said += f" (measured {display.value(r.metric, r.actual)}, {display.error(r.metric, r.predicted, r.actual)})"
    return said


MEASURED = "measured (error)"


def kind_table(preds: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One row per metric of `kind`; per target (the columns' top level) its `predicted [interval]` and, where
    the data has the target's run, `measured (error)`; a last row with each target's mean absolute error."""
    g = kind_rows(preds, kind)
    first = ("Held-out set" if kind == "loss" else "Task", "")
    columns, rows = [first], {}
    for t in dict.fromkeys(g["target"]):
        columns.append((t, "predicted"))
        if g.loc[g["target"] == t, "actual"].notna().any():
            columns.append((t, MEASURED))
    for r in g.itertuples():
        row = rows.setdefault(r.metric, {first: display.label(r.metric)})
        row[r.target, "predicted"] = display.estimate(r.metric, r.predicted, r.lower, r.upper)
        if np.isfinite(r.actual):
            row[r.target, MEASURED] = display.measured(r.metric, r.predicted, r.actual)
    columns = pd.MultiIndex.from_tuples(columns)
    table = pd.DataFrame([[row.get(c, "") for c in columns] for row in rows.values()], columns=columns)
    scores = {first: "mean absolute error"}
    for t in dict.fromkeys(g["target"]):
        have = g[(g["target"] == t) & g["actual"].notna()]
        if len(have) > 1:
            mae, inside = _score(have)
            scores[t, MEASURED] = mae + (f" ({inside[0]}/{inside[1]} inside)" if inside else "")
    if len(scores) > 1:
        table.loc[len(table)] = [scores.get(c, "") for c in columns]
    return table


def _score(have: pd.DataFrame) -> Tuple[str, Optional[Tuple[int, int]]]:
    """The mean absolute error of measured predictions of one kind (in points for accuracies, in % of the
    measured value for the rest), and how many of those with an interval have the measured value inside it
    (None: no interval, bootstrap=0)."""
    err = (have["predicted"] - have["actual"]).abs()
    mae = f"{100 * err.mean():.1f}" if is_accuracy(have["metric"].iloc[0]) else \
        f"{100 * (err / have['actual'].abs()).mean():.1f} %"
    bounded = have[have["lower"].notna() & have["upper"].notna()]
    inside = int(((bounded["lower"] <= bounded["actual"]) & (bounded["actual"] <= bounded["upper"])).sum())
    return mae, ((inside, len(bounded)) if len(bounded) else None)


# A parameter the fit could not pin, flagged beside its value (the Warnings say what it means).
CLIFF, BOUND_FLAG = "cliff", "on its bound"
FLAGS = {f"⚠ {CLIFF}": f"⚠ {CLIFF}: an exponent above {STEEP:g}, no scaling law's: its term is a step at the smallest "
                       "value fitted, its value and interval mean nothing (Warnings: Exponents no power law has).",
         f"⚠ {BOUND_FLAG}": f"⚠ {BOUND_FLAG}: held at the edge of its range rather than fitted (Warnings)."}
UNMEASURED = ("The parameters' intervals are the run bootstrap's, which cannot measure this fit (Warnings): they say "
              "little of how well the data pin each parameter.")
GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "epsilon": "ε", "eta": "η", "log_A": "log A", "log_B": "log B"}


def parameter_tables(out: MethodOutput, steps) -> List[Tuple[str, str, pd.DataFrame]]:
    """(law, its formula and source, table) for every law the figures draw: one row per fit, each parameter
    `value [interval]`."""
    first, fed = steps
    by_law = {}
    for key, fs in {**first, **fed}.items():
        rec = out.fits.get(key, {})
        cells = {"Fit": step_title(fs)}
        steep = steep_exponents(fs.fit.law, fs.fit.params)
        bound = bound_hits(fs.fit.law, fs.fit.params, fs.step.bounds)
        for name, v in rec.get("params", {}).items():
            lo, hi = rec.get("param_intervals", {}).get(name, (np.nan, np.nan))
            flag = f" ⚠ {CLIFF}" if name in steep else f" ⚠ {BOUND_FLAG}" if name in bound else ""
            cells[GREEK.get(name, name)] = f"{v:.4g}" + (f" [{lo:.4g}, {hi:.4g}]" if np.isfinite(lo) and np.isfinite(hi) else "") + flag
        by_law.setdefault(fs.fit.law, []).append(cells)
    shown = sum(len(v) for v in by_law.values())
    more = sum(1 for rec in out.fits.values() if rec.get("params")) - shown
    out_tables = []
    for law, rows in by_law.items():
        extra = "" if more <= 0 or out_tables else \
            f" The method's {more} other fit{'s are' if more > 1 else ' is'} in fits.json."
        flagged = " ".join(text for flag, text in FLAGS.items() if any(flag in c for row in rows for c in row.values()))
        if not bootstrap_measures(out):  # the parameters' intervals are still the bootstrap's
            flagged += (" " if flagged else "") + UNMEASURED
        out_tables.append((law.name, f"{law.formula} ({law.source}).{extra}" + (f" {flagged}" if flagged else ""),
                           pd.DataFrame(rows).fillna("")))
    return out_tables


def method_lines(out: MethodOutput, ps, cfg, dataset: Optional[str] = None) -> List[str]:
    dataset = f", dataset {dataset}" if dataset else ""
    return ([f"Input: {ps.source} (format {ps.profile.name}{dataset}); {ps.points['run'].nunique()} runs, "
             f"{len(ps.points)} points kept, {len(ps.dropped)} left out."]
            + [interval_line(out, cfg)] + list(out.notes))


def interval_line(out: MethodOutput, cfg) -> str:
    """Where the intervals come from: the run bootstrap, widened by the method's backtest misses where it was
    calibrated; or those misses alone where the bootstrap cannot measure the fit (which the figures then draw
    without a band)."""
    boot = f"the bootstrap over runs ({cfg.bootstrap} resamples, seed {cfg.seed})"
    if cfg.bootstrap <= 0:
        return "Intervals: none (bootstrap=0)."
    calibrated = "backtest" in out.fits
    if not bootstrap_measures(out):
        return (f"Intervals: {cfg.interval:.0%}, from the method's misses on runs it did not fit (below); {boot} "
                f"cannot measure this fit and is not used." if calibrated else
                f"Intervals: {cfg.interval:.0%} from {boot}, which cannot measure this fit (calibrate=false): "
                f"read them as too narrow.")
    return f"Intervals: {cfg.interval:.0%} from {boot}" + (", widened by the method's backtest misses (below)."
                                                           if calibrated else ".")


def _pretty_tasks(table: pd.DataFrame) -> pd.DataFrame:
    """A method's table: metrics by name, numbers to one decimal; one wider than long (best's weights: 13 paths
    for 8 tasks) turned on its side, so that the page holds it rather than clipping it."""
    t = table.rename_axis(columns=None)
    first = t.columns[0]
    t[first] = t[first].map(lambda m: display.label(m) if isinstance(m, str) else m)
    t = t.rename(columns=lambda c: display.named(c) if isinstance(c, str) and ":" in c else c)
    if t.shape[1] - 1 > t.shape[0]:
        t = t.set_index(first).T.rename_axis(index="path through", columns=None).reset_index()
    return t.map(lambda v: f"{v:.1f}" if isinstance(v, float) else v)


# Warnings, grouped by what they mean for the prediction: (title, meaning, pattern), most consequential first.
WARNING_GROUPS = [
    ("Read before the predictions", "These change what the predictions mean: an interval whose bootstrap mostly "
     "failed measures nothing, and a term the runs cannot identify is extrapolated by assumption.",
     r"most bootstrap refits failed|the D term is unidentified"),
    ("Laws reduced to the data", "The runs cannot fit the method's own law; each line says which smaller law was "
     "fitted and why. Runs at more sizes, or at a second tokens-per-parameter ratio, restore the full law.",
     r"law reduced to|sigmoid reduced to"),
    ("Targets beyond the calibrated range",
     "A backtest's miss grows with how far it extrapolates. These targets lie further beyond the ladder than the "
     "backtests that calibrated the intervals reached, in N or in distance d (the one the intervals are sized by); "
     "each line says which. Where it says their intervals are likely too narrow, read them as the least uncertainty "
     "the prediction has.", r"× the largest fitted N"),
    ("Targets inside the fitted range",
     "This is interpolation: it checks the fit, not the extrapolation a ladder is for.", r"lies inside the fit range"),
    ("Metrics not predicted", "These have no prediction in the tables above, for the reason given.",
     r"no sigmoid fits|; not predicted|only \S+ is predicted"),
    ("Backtests that could not be fitted", "Fewer backtests weight or calibrate the method than it plans: its "
     "intervals (and an ensemble's weights) rest on the rest.", r"backtest.* skipped|no (inner )?backtest"),
    ("No intervals", "Without bootstrap resamples the predictions carry no interval: their uncertainty is unstated.",
     r"bootstrap=0"),
    ("Intervals from the method's misses", "The run bootstrap cannot measure this fit, so its intervals come from "
     "its misses on runs outside the fit set instead.", re.escape(NOT_MEASURED)),
    ("Bootstrap refits that failed",
     "The intervals rest on the resamples that did fit; the ones that failed are often those whose runs pin the "
     "law least, so the intervals may be somewhat too narrow.", r"bootstrap refits failed"),
    ("Fits that did not converge", "The law's parameters may not be its optimum: predictions through it are less "
     "reliable than their intervals say.", r"did not converge"),
    ("Exponents no power law has", "A term falls so steeply across the ladder that it is a step, not a scaling "
     "law: the fit has no size or data dependence beyond the smallest fitted value to extrapolate.",
     r"is far steeper than a scaling law"),
    ("Fitted parameters on a bound", "The optimum lies on the edge of the allowed range, where the law is held "
     "rather than fitted; each line says what that means.", r"is on its bound"),
    ("Points left out", "These points are in no fit, for the reason given; the predictions do not rest on them.",
     r"^dropped \d+ point|at or below chance left out"),
    ("Held-out runs", "Left out of the fit and predicted from the rest: their measured values score the method, "
     "and no fit saw them.", r"^holdout="),
]
FIRST_SCREEN = ("Read before the predictions", "Laws reduced to the data")  # the terminal prints these first
# A bound warning as fit.fitting writes it (its meaning from fit.laws.Law.at_bound), with best's paths suffix.
BOUND = re.compile(r"^(?P<label>.+?): (?P<law>\w+): parameter (?P<param>\S+) = (?P<value>\S+) is on its bound \S+?"
                   r"(?:: (?P<meaning>.+?))?(?: \((?P<paths>paths? .+)\))?$")


def warning_groups(warnings: List[str]) -> List[Tuple[str, str, List[str]]]:
    """(title, what it means for the prediction, items) for each group with warnings; parameters on a bound
    gathered per law and parameter; anything else under `Other warnings`."""
    found = {title: [] for title, _, _ in WARNING_GROUPS}
    other = []
    for w in dict.fromkeys(warnings):
        title = next((t for t, _, pattern in WARNING_GROUPS if re.search(pattern, w)), None)
        (found[title] if title else other).append(w)
    found["Fitted parameters on a bound"] = _bounds(found["Fitted parameters on a bound"])
    meanings = {t: meaning for t, meaning, _ in WARNING_GROUPS}
    if found["Intervals from the method's misses"]:  # then the failed refits shape no interval
        meanings["Bootstrap refits that failed"] = ("The intervals do not rest on the bootstrap (above), so these "
                                                    "failures narrow none of them; they are said for the record.")
    out = [(t, meanings[t], found[t]) for t, _, _ in WARNING_GROUPS if found[t]]
    return out + ([("Other warnings", "As each says.", other)] if other else [])


def _bounds(warnings: List[str]) -> List[str]:
    """One line per (law, parameter, value): which fits (and in how many paths of an ensemble) and what it means."""
    gathered, meanings, left = {}, {}, []
    for w in warnings:
        m = BOUND.match(w)
        if not m:
            left.append(w)
            continue
        paths = m["paths"]
        n = 1 if not paths else len(paths.split(" ", 1)[1].split(", "))
        who = display.named(m["label"]) if ":" in m["label"] else display.TASK_NAMES.get(m["label"], m["label"])
        gathered.setdefault((m["law"], m["param"], m["value"]), []).append(who + (f" ({n} paths)" if n > 1 else ""))
        meanings.setdefault((m["law"], m["param"], m["value"]), m["meaning"])
    lines = [f"{law} {GREEK.get(p, p)} = {v}: {', '.join(who)}."
             + (f" Means: {meanings[law, p, v]}." if meanings[law, p, v] else "")
             for (law, p, v), who in gathered.items()]
    return lines + left


def provenance(cfg, ps) -> List[str]:
    """Harness commit, date, command and input: what reproduces the report."""
    argv = list(sys.argv)
    prog = "ladder" if argv and Path(argv[0]).name in ("ladder", "__main__.py") else (argv[0] if argv else "?")
    spelt = {None: "null", True: "true", False: "false"}  # as an override spells them
    settings = " ".join(f"{k}={spelt.get(v, v) if isinstance(v, (bool, type(None))) else v}"
                        for k, v in ((k, getattr(cfg, k)) for k in ("method", "bootstrap", "interval", "seed",
                                                                     "holdout", "calibrate")))
    return [f"Harness commit {harness_commit()}; written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
            f"Command: {shlex.join([prog, *argv[1:]])}",
            f"Input: {ps.source} (format {ps.profile.name}); settings: {settings}."]


def json_ready(o):
    """`o` with numpy numbers as Python ones and non-finite floats as None, for json.dumps."""
    if isinstance(o, dict):
        return {str(k): json_ready(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_ready(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return json_ready(o.tolist())
    return o
