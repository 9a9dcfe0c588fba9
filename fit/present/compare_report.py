"""`ladder compare`'s outputs: compare.csv (a row per target, metric and pair), compare.json (settings, variants,
decisions, backtests), figures/compare_<metric>.png and report.md / a self-contained report.html: the decision
table first (target, metric, winner, difference with interval, P, compute multiplier, whether it changes with
scale), one figure per metric with every variant on shared axes, then the decision backtests against the
single-scale baseline, the warnings and the provenance."""
import base64
import html
import json
import logging
import time
from pathlib import Path
from typing import List

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fit import display
from fit.compare import (REACH, Comparison, backtest_summary, common_targets, compare, decision_backtests, load_variants,
                         loss_step, own_targets)
from fit.config import CompareConfig, FitConfig, as_compare_config, as_fit_config, check_numbers
from fit.errors import FitInputError
from fit.present.figures import (DPI, FITTED, MEASURED, OTHER, SPREAD, STYLE, bootstrap_band, label_targets, law_inputs,
                                 side_by_side, target_stars)
from fit.points import is_accuracy
from fit.predict import method_named
from fit.present.report import html_page, html_table, json_ready, markdown_table, provenance, warning_groups
from ladder.core.configs import ConfigError
from ladder.core.files import atomic_write_text, writable_dir

log = logging.getLogger(__name__)


def run_compare(ccfg, fcfg) -> Path:
    ccfg, fcfg = as_compare_config(ccfg), as_fit_config(fcfg)
    method = method_named(fcfg.method)
    for key in ("results", "holdout", "dataset", "out"):
        if getattr(fcfg, key) is not None:
            raise FitInputError(f"fit.{key}={getattr(fcfg, key)}: not read by `ladder compare` (results=, variants= "
                                "and out= are compare's keys; the decision backtests replace holdout)")
    check_numbers(fcfg)
    started = time.perf_counter()
    log.info("reading %s", ccfg.results)  # a stage a line, on stderr, as `ladder fit` logs its stages
    variants = load_variants(ccfg.results, fcfg.format, ccfg.variants)
    log.info("read %d variants (%s) in %.0f s", len(variants), ", ".join(v.name for v in variants),
             time.perf_counter() - started)
    targets = common_targets(fcfg, variants)
    own = own_targets(fcfg, variants, targets)
    log.info("fitting %s to each variant%s: %d targets, %d bootstrap resamples", method.name,
             " and the joint law" if ccfg.joint else "", len(targets), fcfg.bootstrap)
    comp = compare(variants, targets, fcfg, method, joint=ccfg.joint, own=own)
    if own is not None:
        comp.warnings.insert(0, "compare: the variants' sizes differ, so each default target is each variant's own "
                                "run of that rank (" + "; ".join(f"{t.name}: " + ", ".join(
                                    f"{v} N = {display.count(o[i].params)}" for v, o in own.items())
                                    for i, t in enumerate(targets)) + "); name a common one with targets=[{params: N, "
                                "tokens: D}] to compare at one N")
    if comp.decisions.empty:
        raise FitInputError(f"compare: the variants have no predicted metric in common ({method.name} predicts "
                            + "; ".join(f"{v}: {', '.join(sorted({p['metric'] for p in o.predictions})) or 'nothing'}"
                                        for v, o in comp.outputs.items()) + ")")
    if ccfg.backtest:
        log.info("decision backtests: each variant refitted on its smaller sizes (%.0f s so far)",
                 time.perf_counter() - started)
        comp.backtests = decision_backtests(variants, fcfg, method, joint=ccfg.joint)
    out_dir = Path(ccfg.out or Path("outputs") / f"compare-{fcfg.method}")
    try:
        writable_dir(out_dir, "out")
    except ConfigError as exc:
        raise FitInputError(str(exc)) from None
    log.info("writing the report to %s (%.0f s so far)", out_dir, time.perf_counter() - started)
    write(out_dir, comp, ccfg, fcfg)
    print("\n".join(decision_lines(comp.decisions, fcfg.interval)))
    print("\n".join(terminal_lines(comp)))
    print(f"report: {out_dir / 'report.html'}")
    return out_dir


def all_warnings(comp: Comparison) -> List[str]:
    """Compare's own warnings, the decision backtests' skipped sizes, then every variant's, each once: named by its
    variant unless every variant has it."""
    out = list(comp.warnings) + [f"decision backtests: {s}" for s in comp.backtests.attrs.get("skipped", [])]
    for v in comp.variants:
        for w in comp.outputs[v.name].warnings:
            everywhere = all(w in comp.outputs[u.name].warnings for u in comp.variants)
            out.append(w if everywhere else f"variant {v.name}: {w}")
    return list(dict.fromkeys(out))


def terminal_lines(comp: Comparison) -> List[str]:
    """What the terminal shows after the decisions, as `ladder fit` shows its warnings: how the losses were fitted
    (the joint law's form and exponent test), how the backtests paired sizes, and the warnings grouped (fit.present.report),
    at most a few of each."""
    lines = [f"note: {n}" for n in comp.notes]
    if pairing(comp):
        lines.append(f"note: decision backtests: {pairing(comp)}")
    for title, meaning, items in warning_groups(all_warnings(comp)):
        lines += ["", f"warning: {title}: {meaning}"] + [f"  - {x}" for x in items[:3]]
        lines += [f"  ... and {len(items) - 3} more in the report"] if len(items) > 3 else []
    return lines


def pairing(comp: Comparison) -> str:
    """How the decision backtests paired the variants' sizes (empty without backtests)."""
    return comp.backtests.attrs.get("pairing", "")


def decision_lines(d: pd.DataFrame, interval: float) -> List[str]:
    """A sentence per decision: `6.9B-20 c4_val LM loss: c4_original better by 0.171 [0.04, 0.41] (P = 0.76) ...`."""
    return [f"{r.target} {display.named(r.metric)}: {_said(r, interval)}" for r in d.itertuples()]


def _advantage(r):
    """The winner's advantage, positive, with its interval: (value, lower, upper)."""
    sign = 1.0 if r.winner == r.a else -1.0
    sign *= 1.0 if r.metric.endswith(":acc") else -1.0
    lo, hi = sorted((sign * r.difference_lower, sign * r.difference_upper))
    return sign * r.difference, lo, hi


def _measured_advantage(r) -> float:
    """The measured difference in the predicted winner's favour: negative where the other variant measured better."""
    sign = (1.0 if r.winner == r.a else -1.0) * (1.0 if r.metric.endswith(":acc") else -1.0)
    return sign * r.measured_difference


def _amount(metric: str, v: float) -> str:
    v = v + 0.0  # no "-0.000"
    return "" if not np.isfinite(v) else f"{100 * v:.1f}" if is_accuracy(metric) else f"{v:.3f}"


def _said(r, interval: float) -> str:
    adv, lo, hi = _advantage(r)
    loser = r.b if r.winner == r.a else r.a
    unit = " points" if is_accuracy(r.metric) else ""
    # Equal predictions (the same runs given twice, say) name no winner: "better by -0.000" would mislead.
    text = (f"{r.winner} better than {loser} by {_amount(r.metric, adv)}{unit}" if r.difference != 0
            else f"{r.a} and {r.b} predicted equal")
    if np.isfinite(lo):
        text += f" [{_amount(r.metric, lo)}, {_amount(r.metric, hi)}] ({interval:.0%} interval), P = {r.p_winner:.2f}"
    if np.isfinite(r.compute_multiplier):
        text += f"; {loser} needs {_times(r.compute_multiplier, r.multiplier_lower, r.multiplier_upper)} the compute"
    if r.changes_with_scale:
        text += f"; changes with scale (the curves cross at C = {display.flops(r.crossing_C)})"
    elif getattr(r, "crossing_note", ""):
        text += f"; {r.crossing_note}"
    if r.measured_difference == 0:
        text += "; measured: equal"
    elif np.isfinite(r.measured_difference):
        measured = r.a if (r.measured_difference > 0) == r.metric.endswith(":acc") else r.b
        text += f"; measured: {measured} better by {_amount(r.metric, abs(r.measured_difference))}"
    return text


def _times(m: float, lo: float, hi: float) -> str:
    """A compute multiplier with its interval; one at the edge of the range searched (fit.compare.REACH) is a bound,
    said as one ("over 10,000×"), never a number the law reached."""
    def fmt(x):
        if x >= REACH[1] * (1 - 1e-6):
            return f"over {REACH[1]:,.0f}×"
        if x <= REACH[0] * (1 + 1e-6):
            return f"under {REACH[0]:g}×"
        return f"{x:.3g}×"
    if fmt(lo) == fmt(m) == fmt(hi):  # all three at the bound: "over 10,000× [over 10,000×, over 10,000×]" says no more
        return fmt(m)
    return fmt(m) + (f" [{fmt(lo)}, {fmt(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else "")


def decision_table(d: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in d.itertuples():
        adv, lo, hi = _advantage(r)
        rows.append({"Target": r.target, "Metric": display.named(r.metric),
                     "Fitted by": "one law over all variants" if getattr(r, "fitted_by", "") == "joint"
                     else getattr(r, "fitted_by", ""),
                     "Winner": r.winner if r.difference != 0 else "(equal)",
                     "over": r.b if r.winner == r.a else r.a,
                     "by [interval]": _amount(r.metric, adv) + (f" [{_amount(r.metric, lo)}, {_amount(r.metric, hi)}]"
                                                             if np.isfinite(lo) else ""),
                     "P(winner better)": "" if not np.isfinite(r.p_winner) else f"{r.p_winner:.2f}",
                     "compute multiplier": "" if not np.isfinite(r.compute_multiplier) else
                     _times(r.compute_multiplier, r.multiplier_lower, r.multiplier_upper),
                     "with scale": f"changes (cross at C = {display.flops(r.crossing_C)})" if r.changes_with_scale
                     else (getattr(r, "crossing_note", "") or "same order"),
                     "measured advantage": _amount(r.metric, _measured_advantage(r))})
    table = pd.DataFrame(rows)
    # how every row was fitted, where one way fitted them all, the lead sentence says once: the column only widened
    # the table past the page
    return table.drop(columns="Fitted by") if table["Fitted by"].nunique() <= 1 else table


def prediction_table(d: pd.DataFrame) -> pd.DataFrame:
    """Each variant's prediction of each target and metric, with its interval and the measured value."""
    rows = {}
    for r in d.itertuples():
        for v, p, lo, hi, m in ((r.a, r.predicted_a, r.lower_a, r.upper_a, r.measured_a),
                                (r.b, r.predicted_b, r.lower_b, r.upper_b, r.measured_b)):
            rows[r.target, r.metric, v] = {"Target": r.target, "Metric": display.named(r.metric), "Variant": v,
                                           "predicted [interval]": display.estimate(r.metric, p, lo, hi),
                                           "measured (error)": display.measured(r.metric, p, m)}
    return pd.DataFrame(list(rows.values()))


def backtest_lines(s: pd.DataFrame) -> List[str]:
    """What the backtests say, plainly: whether the law beat the single-scale baseline."""
    if s.empty:
        return ["No decision backtest could be built (the variants' ladders need at least four common sizes, "
                "and runs of a larger size to predict)."]
    a = s[s["metrics"] == "all"].iloc[0]
    verdict = ("The law beat the single-scale baseline" if a.law_accuracy > a.baseline_accuracy else
               "The law did not beat the single-scale baseline (ranking by the largest fitted size's measured value)")
    line = (f"{verdict}: decision accuracy {_shown('{:.0%}')(a.law_accuracy)} against "
            f"{_shown('{:.0%}')(a.baseline_accuracy) or 'none (no run at the largest fitted size)'} over "
            f"{a.decisions:.0f} decisions")
    if np.isfinite(a.law_brier):
        line += (f"; Brier score of P(better) {a.law_brier:.3f} against {a.baseline_brier:.3f}; the difference's "
                 f"intervals covered {a.coverage:.0%} of the measured differences")
    else:
        line += " (no P(better), Brier score or interval coverage without bootstrap resamples: bootstrap=0)"
    return [line + "."]


def _shown(spec: str):
    """A formatter that leaves a missing value (no bootstrap: no P, no Brier score) blank, never "nan"."""
    return lambda v: "" if not np.isfinite(v) else spec.format(v)


def summary_table(s: pd.DataFrame) -> pd.DataFrame:
    if s.empty:
        return s
    pct, brier = _shown("{:.0%}"), _shown("{:.3f}")
    return pd.DataFrame({"Metrics": s["metrics"], "decisions": s["decisions"].map(str),
                         "law accuracy": s["law_accuracy"].map(pct), "law Brier": s["law_brier"].map(brier),
                         "baseline accuracy": s["baseline_accuracy"].map(pct),
                         "baseline Brier": s["baseline_brier"].map(brier),
                         "interval coverage": s["coverage"].map(pct)})


def backtest_table(b: pd.DataFrame) -> pd.DataFrame:
    """Every backtest decision, by held-out size, then M (numerically: M5 before M40 before M320), then metric."""
    if b.empty:
        return b
    b = b.assign(_m=b["tokens"] / b["params"]).sort_values(["held_size", "_m", "metric", "a", "b"], kind="stable")
    pairs = set(zip(b["a"], b["b"]))
    # one pair (two variants): its names in the headers, not a column repeating them in every row (the table ran
    # past the page)
    a, v = next(iter(pairs)) if len(pairs) == 1 else ("a", "b")
    table = pd.DataFrame({
        "Held-out run": b["target"], "fitted up to N": b["fitted_size"].map(display.count),
        "Metric": b["metric"].map(display.named), "pair": b["a"] + " vs " + b["b"], "predicted winner": b["winner"],
        f"P({a} better)": b["p_a_better"].map(_shown("{:.2f}")), "measured winner": b["measured_winner"],
        "baseline winner": b["baseline_winner"],
        f"difference {a} − {v} [interval]": [display.estimate(r.metric, r.difference, r.difference_lower,
                                                              r.difference_upper) for r in b.itertuples()],
        "measured": [display.value(r.metric, r.measured_difference) for r in b.itertuples()]})
    return table.drop(columns="pair") if len(pairs) == 1 else table


def metric_figure(comp: Comparison, metric: str, interval: float):
    """Every variant in its own colour on shared axes against C = 6ND: its final points (the runs it fitted
    filled, the others hollow), its fitted law out to each target along the target's M (dashed, with its
    bootstrap band where the law's resamples are kept), its predicted targets (stars with intervals) and its
    measured targets (open circles). The variants' stars and circles at one target stand side by side
    (fit.present.figures.side_by_side), each target named once; the legend names the variants by colour."""
    k = display.scale(metric)
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    V = len(comp.variants)
    colour = {v.name: colours[i % len(colours)] for i, v in enumerate(comp.variants)}
    unfitted = False
    for v in comp.variants:
        out = comp.outputs[v.name]
        p = v.ps.points[v.ps.points["metric"] == metric]
        fin = p.sort_values("tokens").groupby("run").tail(v.ps.profile.final_window).groupby("run").agg(
            params=("params", "first"), tokens=("run_tokens", "first"), value=("value", "mean"))
        fitted = fin.index.isin(out.runs)
        # a run at a target is drawn as its measured circle, not again as a run not fitted
        at = np.zeros(len(fin), bool)
        for q in out.predictions:
            at |= np.isclose(fin["params"], q["params"], rtol=1e-3) & np.isclose(fin["tokens"], q["tokens"], rtol=1e-3)
        others = ~fitted & ~at
        C = display.compute(fin["params"], fin["tokens"])
        ax.scatter(C[fitted], k * fin["value"][fitted], color=colour[v.name], **{**FITTED, "s": 12})
        ax.scatter(C[others], k * fin["value"][others], **{**OTHER, "edgecolors": colour[v.name], "s": 16})
        unfitted |= bool(others.any())
        fs = loss_step(out, metric)
        c = comp.curves[(comp.curves["variant"] == v.name) & (comp.curves["metric"] == metric)]
        for _, g in c.groupby("target"):
            g = g.sort_values("C")
            ax.plot(g["C"], k * g["predicted"], color=colour[v.name], lw=1, ls="--")
            t = next((q for q in out.predictions if q["target"] == g["target"].iloc[0]), None)
            band = None if fs is None or t is None else bootstrap_band(fs, out, law_inputs(fs, _along_nd(g["C"], t)), interval)
            if band is not None:
                ax.fill_between(g["C"], k * band[0], k * band[1], color=colour[v.name], alpha=0.12, lw=0)
    ax.set_xscale("log")
    # the stars and circles go beside their target, placed within the limits of what the variants drew, which
    # then widen to hold them
    lo, hi = ax.get_xlim()
    preds = {v.name: {q["target"]: q for q in comp.outputs[v.name].predictions if q["metric"] == metric}
             for v in comp.variants}
    names = list(dict.fromkeys(t for p in preds.values() for t in p))
    C = np.array([[display.compute(p[t]["params"], p[t]["tokens"]) if t in p else np.nan for p in preds.values()]
                  for t in names], float).reshape(len(names), V)
    ax.set_xlim(lo, hi)  # fixed, so that the stars added rescale nothing
    x = side_by_side(ax, C)
    pad = 10 ** (SPREAD * np.log10(hi / lo))  # a star's width beyond the outermost
    ax.set_xlim(min(lo, np.nanmin(x) / pad), max(hi, np.nanmax(x) * pad))
    named = {}
    for i, v in enumerate(comp.variants):
        ts = [t for t in names if t in preds[v.name]]
        q = [preds[v.name][t] for t in ts]
        xs = np.array([x[names.index(t), i] for t in ts])
        y = k * np.array([r["predicted"] for r in q], float)
        target_stars(ax, xs, y, [k * r["lower"] for r in q], [k * r["upper"] for r in q], colour[v.name])
        actual = k * np.array([r.get("actual", np.nan) for r in q], float)
        ax.scatter(xs[np.isfinite(actual)], actual[np.isfinite(actual)], **{**MEASURED, "edgecolors": colour[v.name]})
        for t, xx, yy in zip(ts, xs, y):  # each target named once, at its highest star
            if t not in named or yy > named[t][1]:
                named[t] = (xx, yy)
    for v in comp.variants:
        ax.plot([], [], color=colour[v.name], marker="o", ms=4, lw=1, ls="--", label=v.name)
    ax.plot([], [], color="0.3", lw=1, ls="--", label=f"fitted law to each target ({interval:.0%} band)")
    ax.plot([], [], color="0.3", marker="*", ms=10, ls="none", label=f"predicted target ({interval:.0%} interval)")
    if any(np.isfinite(q.get("actual", np.nan)) for o in comp.outputs.values() for q in o.predictions
           if q["metric"] == metric):
        ax.scatter([], [], **{**MEASURED, "edgecolors": "0.3", "gid": None}, label="measured target")
    if unfitted:
        ax.scatter([], [], **{**OTHER, "s": 16}, label="runs not fitted")
    ax.set(xlabel="compute C = 6ND (FLOPs)", ylabel=display.long_label(metric),
           title=f"{display.long_label(metric)}: every variant, fitted laws to the targets")
    ax.legend(loc="best", ncol=2 if V > 4 else 1)
    fig.tight_layout()
    label_targets(ax, [x for x, _ in named.values()], [y for _, y in named.values()], list(named))
    return fig


def _along_nd(C, t: dict) -> np.ndarray:
    """(N, D) along the target's M = D/N at each compute C."""
    m = t["tokens"] / t["params"]
    n = np.sqrt(np.asarray(C, float) / (6 * m))
    return np.vstack([n, m * n])


def write(out_dir: Path, comp: Comparison, ccfg: CompareConfig, fcfg: FitConfig) -> None:
    d, b = comp.decisions, comp.backtests
    summary = backtest_summary(b)
    atomic_write_text(out_dir / "compare.csv", d.to_csv(index=False))
    atomic_write_text(out_dir / "compare.json", json.dumps(json_ready({
        "method": fcfg.method, "results": ccfg.results, "variants": [v.name for v in comp.variants],
        "targets": [t.__dict__ for t in comp.targets], "bootstrap": fcfg.bootstrap, "interval": fcfg.interval,
        "seed": fcfg.seed, "calibrate": fcfg.calibrate, "paired": comp.paired,
        "decisions": d.to_dict("records"), "backtests": b.to_dict("records"),
        "backtest_summary": summary.to_dict("records"), "warnings": all_warnings(comp), "notes": comp.notes,
        "joint": ccfg.joint, "backtest_pairing": pairing(comp),
    }), indent=1))
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    shown = []
    with plt.rc_context(STYLE):
        for metric in dict.fromkeys(d["metric"]):
            name = "compare_" + metric.replace(":", "_").replace("/", "_")
            fig = metric_figure(comp, metric, fcfg.interval)
            fig.savefig(fig_dir / f"{name}.png", dpi=DPI, bbox_inches="tight")
            plt.close(fig)
            shown.append((name, f"{display.long_label(metric)} of every variant against compute C = 6ND, each "
                                "variant in its own colour: its runs (filled: fitted; open squares: not fitted), its "
                                f"law out to each target (dashed, {fcfg.interval:.0%} band), its predicted targets "
                                "(stars) and measured ones (open circles), the variants' side by side at each target",
                          base64.b64encode((fig_dir / f"{name}.png").read_bytes()).decode()))
    names = ", ".join(v.name for v in comp.variants)
    title = f"Ladder compare: {names} ({fcfg.method})"
    by_method = set(d["fitted_by"]) - {"joint"}
    lead = (f"{len(comp.variants)} variants ({names})"
            + (", the losses fitted by one law over all variants (a shared shape, a scale per variant; its bootstrap "
               "resamples every variant's runs in one draw, so the resamples pair)" if comp.notes else "")
            + ("; " if comp.notes and by_method else "")
            + ((" the other metrics " if comp.notes else ", ") + f"each fitted by {fcfg.method} on "
               + ("the same cells (N, D), so that the bootstrap resamples pair" if comp.paired else
                  "its own runs (the variants' cells differ, so the resamples do not pair)") if by_method else "")
            + f"; {fcfg.interval:.0%} intervals from {fcfg.bootstrap} resamples with seed {fcfg.seed}, plus each "
              "variant's calibrated model error where calibrate is on.")
    answers = decision_lines(d, fcfg.interval)
    tables = [("Decision table", decision_table(d)), ("Each variant's predictions", prediction_table(d))]
    verdict = backtest_lines(summary) if ccfg.backtest else ["Decision backtests off (backtest=false)."]
    if ccfg.backtest and pairing(comp):
        verdict.append(f"The backtests' {pairing(comp)}.")
    bt_tables = [("Decision accuracy", summary_table(summary)), ("Every backtest decision", backtest_table(b))]
    bt_tables = [(h, t) for h, t in bt_tables if not t.empty]
    warnings = all_warnings(comp)
    footer = provenance(fcfg, comp.variants[0].ps)

    md = [f"# {title}", "", lead, "", "## Decisions", ""] + [f"- {x}" for x in answers] + [""]
    for head, table in tables:
        md += [f"### {head}", "", markdown_table(table), ""]
    if comp.notes:  # after the answer: how each loss's law was chosen (its form, its scale, the exponent test)
        md += ["### How each loss was fitted", ""] + [f"- {n}" for n in comp.notes] + [""]
    md += ["## Figures", ""] + [f"![{c}](figures/{n}.png)\n\n*{c}*\n" for n, c, _ in shown]
    md += ["## Decision backtests", ""] + verdict + [""]
    for head, table in bt_tables:
        md += [f"### {head}", "", markdown_table(table), ""]
    md += ["## Warnings", ""] + ([f"- {w}" for w in warnings] or ["No warnings."]) + [""]
    md += ["---", ""] + [f"{x}  " for x in footer]
    atomic_write_text(out_dir / "report.md", "\n".join(md) + "\n")

    e = html.escape
    body = [f"<h1>{e(title)}</h1>", f"<p>{e(lead)}</p>", "<h2>Decisions</h2>",
            "<ul>" + "".join(f"<li>{e(x)}</li>" for x in answers) + "</ul>"]
    for head, table in tables:
        body += [f"<h3>{e(head)}</h3>", html_table(table)]
    if comp.notes:
        body += ["<h3>How each loss was fitted</h3>", "<ul>" + "".join(f"<li>{e(n)}</li>" for n in comp.notes) + "</ul>"]
    body += ["<h2>Figures</h2>"] + [f'<figure class="single"><img alt="{e(c)}" src="data:image/png;base64,{b64}">'
                                    f"<figcaption>{e(c)}</figcaption></figure>" for n, c, b64 in shown]
    body += ["<h2>Decision backtests</h2>"] + [f"<p>{e(x)}</p>" for x in verdict]
    for head, table in bt_tables:
        body += [f"<h3>{e(head)}</h3>", html_table(table)]
    body += ["<h2>Warnings</h2>", "<ul>" + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul>" if warnings
             else "<p>No warnings.</p>"]
    body += ["<footer>" + "<br>".join(e(x) for x in footer) + "</footer>"]
    atomic_write_text(out_dir / "report.html", html_page(title, body))
