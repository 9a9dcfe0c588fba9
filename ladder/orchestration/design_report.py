"""`ladder design`'s report: report.md, a self-contained report.html (figures embedded, as the fit report's) and
design.json, under outputs/NAME/ (or OUT/NAME/ with out=OUT), beside the ladder config it writes.

It leads with the answer: the chosen ladder, its cost and its expected forecast error per metric; then how much
ladder the target needs (the best expected error at budgets from 1/16 to 4 × the one given), the chosen rungs on
the N × D plane with the target, the runners-up and the shipped ladders, and last the error model and the
provenance. It reads one search's result (ladder.orchestration.design.Design) and nothing else."""
from __future__ import annotations

import base64
import html
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from fit import display  # noqa: E402
from fit.present.figures import DPI, STYLE  # noqa: E402
from fit.present.report import html_page, html_table, json_ready, markdown_table  # noqa: E402
from ladder.core.configs import ConfigError  # noqa: E402
from ladder.core.files import atomic_write_text, writable_dir  # noqa: E402
from ladder.core.provenance import harness_commit  # noqa: E402

WRITER = "ladder design"  # design.json's `written_by`: the reports it may write over
FILES = ("report.html", "report.md", "design.json", "figures/budget_curve.png", "figures/rungs.png")
# The fit report's style, but a ladder's description (a table's text cell) wraps: its tables then fit the page.
WRAP = "<style>td.text:not(:first-child){white-space:normal;min-width:16em}</style>"
# A quadrupling of the budget that cuts the best expected error by less than this share buys little more: the knee.
KNEE = 0.2


def report_destination(name: str, out) -> Path:
    """outputs/NAME (or OUT/NAME), checked (and made) before any search: never over a report `ladder design` did not
    write."""
    path = (Path("outputs") if out is None else Path(out)) / name
    own = path / "design.json"
    if any((path / f).exists() for f in FILES):
        try:
            mine = json.loads(own.read_text()).get("written_by") == WRITER
        except (OSError, ValueError, AttributeError):
            mine = False
        if not mine:
            raise ConfigError(f"{path}: holds a report that `ladder design` did not write; choose another name= "
                              f"or out=")
    return writable_dir(path, "out")


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _error_cells(metric: str, e) -> dict:
    """An Expected as table cells: the loss's relative error in %, accuracy's in points (as fit.design_accuracy
    gives it)."""
    scale, unit = (100, " %") if metric == "loss" else (1, "")
    return {"median abs. error": f"{scale * e.median:.2f}{unit}", "90th pct abs. error": f"{scale * e.p90:.2f}{unit}",
            "signed 90 % band": f"{scale * e.low:+.2f} … {scale * e.high:+.2f}{unit}",
            "failed fits": f"{100 * e.failed:.0f} %"}


def scaled(metric: str, x: float) -> float:
    """An error as the figures draw it: % for the loss, points for accuracy."""
    return 100 * x if metric == "loss" else x


def amount(metric: str, x: float) -> str:
    return f"{scaled(metric, x):.2f}" + (" %" if metric == "loss" else " points")


def expected_table(scored) -> pd.DataFrame:
    rows = [{"metric": "loss (relative, %)" if m == "loss" else "a task's accuracy (points)", **_error_cells(m, e),
             "draws": str(e.draws)} for m, e in scored.errors]
    return pd.DataFrame(rows)


def rung_table(c) -> pd.DataFrame:
    rows = []
    for n, rungs in c.by_size().items():
        ms = [r.multiplier for r in rungs]
        rows.append({"size": rungs[0].shape.name if hasattr(rungs[0], "shape") else display.count(n),
                     "N": display.count(n), "M": ", ".join(f"{m:g}" for m in ms),
                     "D": " – ".join(dict.fromkeys(display.count(r.tokens) for r in (rungs[0], rungs[-1]))),
                     "6ND of its rungs": f"{sum(6 * r.params * r.tokens for r in rungs):.3g}"})
    return pd.DataFrame(rows)


def ladder_table(d, rows) -> pd.DataFrame:
    """(label, Scored) rows as the runners-up and the shipped ladders are shown: text left, numbers right."""
    def cost(c):
        return f"{c.compute:.3g} ({pct(c.compute / d.target.compute)})"
    return pd.DataFrame([{" ": label, "ladder": named(s.candidate), "rungs": str(len(s.candidate.rungs)),
                          "FLOPs (of the target)": cost(s.candidate),
                          **{k: v for k, v in _error_cells("loss", s.loss).items() if k != "failed fits"},
                          **({"accuracy: median abs. error (points)": f"{s.of('accuracy').median:.2f}"}
                             if "accuracy" in dict(s.errors) else {})}
                         for label, s in rows])


def named(c) -> str:
    """A candidate as a table cell: its schedule first, so that the cell reads (and aligns) as text."""
    return f"{c.schedule}: {c.describe().rsplit(', ', 1)[0]}"


def answer(d) -> list[str]:
    """The chosen ladder, its cost and its expected error, in two sentences."""
    c, t, e = d.best.candidate, d.target, d.best.loss
    sizes = ", ".join(r[0].shape.name for r in c.by_size().values())
    extra = (f", the {len({r.params for r in c.extra})} smallest also at M = "
             f"{', '.join(f'{m:g}' for m in sorted({r.multiplier for r in c.extra}))}" if c.extra else "")
    return [f"Train {len(c.by_size())} sizes ({sizes}; N = {display.count(min(c.by_size()))}–"
            f"{display.count(max(c.by_size()))}) at M = {', '.join(f'{m:g}' for m in c.multipliers)}{extra}, "
            f"{len(c.rungs)} rungs trained {c.schedule}: {c.compute:.3g} FLOPs, "
            f"{pct(c.compute / t.compute)} of {t.name}'s 6ND ({pct(d.budget / t.compute)} allowed).",
            f"Expected error of its forecast of {t.name}'s loss: {pct(e.median)} (median over {e.draws} simulated "
            f"ladders), 90 % of them within {pct(e.p90)}, the signed error's 90 % band {100 * e.low:+.2f} … "
            f"{100 * e.high:+.2f} %" + ("." if "accuracy" not in dict(d.best.errors) else
                                      f"; of a task's accuracy: {amount('accuracy', d.best.of('accuracy').median)}, "
                                      f"90 % within {amount('accuracy', d.best.of('accuracy').p90)}.")
            + (f" Ranked by the {d.metric} error." if d.metric != "loss" else "")]


def curve_sentences(d) -> list[str]:
    """What each quadrupling of the budget buys, and where the knee lies."""
    if len(d.curve) == 1:
        return ["The budget alone was searched (curve=false): the curve shows its best design only."]
    points = [p for p in d.curve if p.best is not None]
    none = [p for p in d.curve if p.best is None]
    said = []
    if none:
        said.append("No ladder of enough rungs fits " + " or ".join(_budget_words(p.budget / d.budget)
                                                                    for p in none) + ".")
    if len(points) < 2:
        return said
    steps = [(a, b, 1 - d.ranked(b.best).median / d.ranked(a.best).median) for a, b in zip(points, points[1:])]
    falls = ", to ".join(f"{amount(d.metric, d.ranked(p.best).median)} at {_budget_words(p.budget / d.budget)}"
                         for p in points)
    said.append(f"The best expected {d.metric} error falls from {falls}: each quadrupling cuts it by "
                + ", ".join(f"{100 * cut:.0f} %" for _, _, cut in steps) + ".")
    knee = next((a for i, (a, _, _) in enumerate(steps) if all(cut < KNEE for _, _, cut in steps[i:])), None)
    cut = f"{100 * KNEE:.0f} %"
    said.append(f"The knee lies at {_budget_words(knee.budget / d.budget)} ({pct(knee.budget / d.target.compute)} "
                f"of the target): beyond it 4 × the compute cuts the error by less than {cut}." if knee else
                f"No knee within 4 × the budget: the last quadrupling still cuts the error by {cut} or more.")
    return said


def _times(x: float) -> str:
    return f"{x:g} ×" if x >= 1 else f"1/{1 / x:g} ×"


def _budget_words(x: float) -> str:
    return "the budget" if x == 1 else f"{x:g} × the budget" if x > 1 else f"1/{1 / x:g} of the budget"


def curve_table(d) -> pd.DataFrame:
    return pd.DataFrame([{"× the budget": _times(p.budget / d.budget),
                          "FLOPs (of the target)": f"{p.budget:.3g} ({pct(p.budget / d.target.compute)})",
                          "candidates": str(p.candidates),
                          "best ladder": named(p.best.candidate) if p.best else "none fits",
                          "median abs. error": amount(d.metric, d.ranked(p.best).median) if p.best else "",
                          "90th pct abs. error": amount(d.metric, d.ranked(p.best).p90) if p.best else ""}
                         for p in d.curve])


def curve_figure(d):
    t = d.target
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    points = [p for p in d.curve if p.best is not None]
    x = [100 * p.budget / t.compute for p in points]
    m = d.metric
    ax.plot(x, [scaled(m, d.ranked(p.best).median) for p in points], "o-", color="C0", label="best median |error|")
    ax.plot(x, [scaled(m, d.ranked(p.best).p90) for p in points], "o--", color="C0", alpha=0.5, mfc="none",
            label="its 90th percentile")
    ax.axvline(100 * d.budget / t.compute, color="0.6", lw=0.8, ls=":")
    c = d.best.candidate
    ax.plot([100 * c.compute / t.compute], [scaled(m, d.ranked(d.best).median)], "*", color="C3", ms=12,
            label=f"the chosen ladder, again with {d.best.loss.draws} draws")
    for i, (name, s) in enumerate(d.shipped):
        ax.plot([100 * s.candidate.compute / t.compute], [scaled(m, d.ranked(s).median)], "sD^"[i % 3], color="0.5",
                mfc="none",
                label=f"shipped: {name}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    lo, hi = ax.get_xlim()
    ax.xaxis.set_major_locator(LogLocator(subs=(1,) if hi / lo > 300 else (1, 2, 5)))  # decades where wide
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} %"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}" + (" %" if m == "loss" else "")))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"ladder compute, % of {t.name}'s 6ND")
    ax.set_ylabel(f"expected |error| of the loss at {t.name}" if m == "loss" else
                  f"expected accuracy |error| at {t.name} (points)")
    ax.legend(loc="best", frameon=False)
    ax.grid(True, which="major", alpha=0.3)
    return fig


def rungs_figure(d):
    """The chosen rungs on the N × D plane (colour: M; area: compute), the target (star), lines of constant M."""
    t, c = d.target, d.best.candidate
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    shapes = "sD^v"
    for i, (name, s) in enumerate(d.shipped):
        rs = s.candidate.rungs
        ax.scatter([r.params for r in rs], [r.tokens for r in rs], marker=shapes[i % 4], facecolors="none",
                   edgecolors="0.6", s=22, label=f"shipped: {name}", zorder=2)
    n = np.array([r.params for r in c.rungs], float)
    dd = np.array([r.tokens for r in c.rungs], float)
    m = np.array([r.multiplier for r in c.rungs], float)
    area = 30 + 220 * np.sqrt(n * dd / (n * dd).max())
    sc = ax.scatter(n, dd, c=np.log2(m), cmap="viridis", s=area, edgecolors="k", linewidths=0.5, zorder=3,
                    label="chosen rungs (area: compute)")
    cbar = fig.colorbar(sc, ax=ax, pad=0.02)
    cbar.set_ticks(np.log2(sorted(set(m))))
    cbar.set_ticklabels([f"{v:g}" for v in sorted(set(m))])
    cbar.set_label("M = D/N")
    ax.scatter([t.params], [t.tokens], marker="*", s=260, color="C3", edgecolors="k", zorder=4,
               label=f"target {t.name}")
    everything = [*n, t.params] + [r.params for _, s in d.shipped for r in s.candidate.rungs]
    tokens = [*dd, t.tokens] + [r.tokens for _, s in d.shipped for r in s.candidate.rungs]
    lo_n, hi_n = min(everything) / 2, max(everything) * 2
    lo_d, hi_d = min(tokens) / 2, max(tokens) * 2
    ms = sorted(set(m) | {round(t.tokens / t.params)})
    for k in ms:
        ax.plot([lo_n, hi_n], [k * lo_n, k * hi_n], color="0.8", lw=0.7, zorder=1)
        x = min(max(lo_n * 1.3, lo_d * 1.3 / k), hi_d / 1.6 / k)  # near the left edge, inside the plot
        ax.annotate(f"M = {k:g}", (x, k * x), fontsize=7, color="0.4", ha="left", va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo_n, hi_n)
    ax.set_ylim(lo_d, hi_d)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _: display.count(v)))
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("N (parameters)")
    ax.set_ylabel("D (tokens)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False, markerscale=0.7)
    ax.grid(True, which="major", alpha=0.3)
    return fig


def model_lines(d) -> list[str]:
    return [f"The loss: {d.model.describe()}.",
            f"Accuracy: {d.models['accuracy'].describe()} (fit.design_accuracy)." if "accuracy" in d.models else
            f"Accuracy: not simulated ({d.no_accuracy}).",
            f"Each candidate simulated {d.draws} times with the same draws (common random numbers), fitted with "
            f"method {d.method}'s law, ranked by the {d.metric} error; the best {len(d.finalists)} within the "
            f"budget again with {4 * d.draws} draws. {d.simulated} candidates in all, {d.cpu / d.simulated:.2g} "
            "CPU s each.",
            "The model does not tell lr schedules apart (docs/train.md); its 90 % band held the realized error in "
            "12 of 14 backtests on the published ladders (docs/design.md)."]


def noise_table(d) -> pd.DataFrame:
    t = d.model.noise.copy()
    if t.empty:
        return t
    out = pd.DataFrame({"source": t["source"], "N": t["params"].map(display.count), "runs": t["runs"].astype(str)})
    for col, label in (("offset", "offset"), ("residual_sd", "residual sd"), ("seed_sd", "seed sd"),
                       ("run_sd", "run sd")):
        out[f"{label} (%)"] = t[col].map(lambda v: f"{100 * v:.3f}" if np.isfinite(v) else "")
    return out


def provenance(d, config: Path, select: list[str]) -> list[str]:
    argv = list(sys.argv)
    prog = "ladder" if argv and Path(argv[0]).name in ("ladder", "__main__.py", "cli.py") else argv[0] if argv else "?"
    return [f"Harness commit {harness_commit()}; written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
            f"Command: {shlex.join([prog, *argv[1:]])}",
            "Inputs: " + "; ".join(f"{k}={_spelt(v)}" for k, v in d.settings) + f"; so method={d.method}, "
            f"draws={d.draws}, seed={d.seed}, base ladder {d.base}.",
            f"Ladder config: {config} (ladder plan {' '.join(select)})."]


def _spelt(v) -> str:
    """A key's value as an override spells it: [a,b] for a list."""
    return f"[{','.join(str(x) for x in v)}]" if isinstance(v, list) else str(v)


def as_json(d, config: Path) -> dict:
    def ladder(s):
        c = s.candidate
        return {"describe": c.describe(), "schedule": c.schedule, "compute": c.compute,
                "rungs": [{"params": r.params, "tokens": r.tokens, "multiplier": r.multiplier} for r in c.rungs],
                "errors": {m: e.__dict__ for m, e in s.errors}}
    t = d.target
    return json_ready({
        "written_by": WRITER, "target": {"name": t.name, "params": t.params, "tokens": t.tokens, "compute": t.compute},
        "budget": d.budget, "settings": dict(d.settings), "base": d.base, "method": d.method, "draws": d.draws,
        "seed": d.seed, "config": str(config), "best": ladder(d.best), "finalists": [ladder(s) for s in d.finalists],
        "shipped": {name: ladder(s) for name, s in d.shipped},
        "curve": [{"budget": p.budget, "candidates": p.candidates, "best": ladder(p.best) if p.best else None}
                  for p in d.curve],
        "simulated": d.simulated, "cpu_seconds": d.cpu,
        "error_model": {"describe": d.model.describe(), "sources": list(d.model.sources),
                        "noise": d.model.noise.to_dict("records")}})


def write_report(out_dir: Path, d, config: Path, select: list[str]) -> None:
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    t = d.target
    shown = []
    with plt.rc_context(STYLE):
        for name, caption, draw in (
                ("budget_curve", f"How much ladder {t.name} needs: the best expected |error| of the {d.metric} "
                                 f"forecast among the candidates within each budget (first pass, {d.draws} draws), "
                                 "its 90th percentile, the chosen ladder (star) and the shipped ladders (grey); the "
                                 "dotted line is the budget given", curve_figure),
                ("rungs", f"The chosen rungs on the N × D plane (colour: M; area: compute), the target {t.name} "
                          "(star), lines of constant M and the shipped ladders (grey)", rungs_figure)):
            fig = draw(d)
            fig.savefig(fig_dir / f"{name}.png", dpi=DPI, bbox_inches="tight")
            plt.close(fig)
            shown.append((name, caption, base64.b64encode((fig_dir / f"{name}.png").read_bytes()).decode()))
    title = f"Ladder design: {t.name} at {pct(d.budget / t.compute)} of its compute"
    lead = answer(d)
    accuracy = "" if "accuracy" in d.models else f"Accuracy (points): not simulated ({d.no_accuracy})."
    figures = {n: (c, b) for n, c, b in shown}
    sections = [  # (heading, sentences, tables, figures)
        ("The ladder", [], [("Expected forecast error", expected_table(d.best)),
                            ("Its rungs", rung_table(d.best.candidate))], []),
        ("How much ladder do I need", curve_sentences(d), [("Best design within each budget", curve_table(d))],
         ["budget_curve"]),
        ("The chosen rungs and the target", [], [], ["rungs"]),
    ]
    ranked = sorted(d.finalists, key=lambda s: (s is not d.best, d.ranked(s).median))
    runners = [("Runners-up", f"The best {len(ranked)} within the budget by the first pass ({d.draws} draws), "
                f"simulated again with {4 * d.draws} draws: the lowest median is chosen (★).",
                ladder_table(d, [("★" if s is d.best else str(i + 1), s) for i, s in enumerate(ranked)])),
               ("Shipped ladders", "At their own cost and schedule, under the same error model (those whose sizes "
                "all lie below the target).", ladder_table(d, d.shipped))]
    footer = provenance(d, config, select)
    e = html.escape

    md = [f"# {title}", "", *[f"{x}\n" for x in lead]] + ([accuracy, ""] if accuracy else [])
    body = [WRAP, f"<h1>{e(title)}</h1>"] + [f"<p class='answer'>{e(x)}</p>" for x in lead] + (
        [f"<p><small>{e(accuracy)}</small></p>"] if accuracy else [])
    for head, text, tables, names in sections:
        md += [f"## {head}", ""] + [f"{x}\n" for x in text]
        body += [f"<h2>{e(head)}</h2>"] + [f"<p>{e(x)}</p>" for x in text]
        for n in names:
            c, b = figures[n]
            md += [f"![{c}](figures/{n}.png)\n\n*{c}*\n"]
            body += [f'<figure class="single"><img alt="{e(c)}" src="data:image/png;base64,{b}">'
                     f"<figcaption>{e(c)}</figcaption></figure>"]
        for sub, table in tables:
            md += [f"### {sub}", "", markdown_table(table), ""]
            body += [f"<h3>{e(sub)}</h3>", html_table(table)]
    md += ["## Runners-up and shipped ladders", ""]
    body += ["<h2>Runners-up and shipped ladders</h2>"]
    none = "None: every shipped ladder reaches the target's N."
    for head, text, table in runners:
        md += [f"### {head}", "", text, ""] + ([markdown_table(table), ""] if not table.empty else [none, ""])
        body += [f"<h3>{e(head)}</h3>", f"<p>{e(text)}</p>"] + ([html_table(table)] if not table.empty else
                                                               [f"<p>{none}</p>"])
    md += ["## The error model", ""] + [f"- {x}" for x in model_lines(d)] + [""]
    body += ["<h2>The error model</h2>", "<ul>" + "".join(f"<li>{e(x)}</li>" for x in model_lines(d)) + "</ul>"]
    noise = noise_table(d)
    if not noise.empty:
        md += ["### Noise per source and size", "", markdown_table(noise), ""]
        body += ["<h3>Noise per source and size</h3>", html_table(noise)]
    md += ["---", ""] + [f"{x}  " for x in footer]
    body += ["<footer>" + "<br>".join(e(x) for x in footer) + "</footer>"]
    atomic_write_text(out_dir / "report.md", "\n".join(md) + "\n")
    atomic_write_text(out_dir / "report.html", html_page(title, body))
    atomic_write_text(out_dir / "design.json", json.dumps(as_json(d, config), indent=1))
