"""The report's figures: the primary loss against compute with its fitted law and bootstrap band out to the
targets, predicted against measured, each step's fits (small multiples, the primary loss law first), and the
residuals of the fits drawn.

Every figure tells apart the runs the method fitted (filled), the data's runs it did not fit (open grey),
the predicted targets (black stars, labelled) and the measured targets (open red circles); accuracies are
in points; log axes carry plain tick labels."""
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator  # noqa: E402

from fit import display  # noqa: E402
from fit.chain import FittedStep, MethodOutput  # noqa: E402
from fit.points import PointSet, is_accuracy  # noqa: E402
from fit.runs import RunTable, choose_primary  # noqa: E402
from fit.targets import at_target  # noqa: E402
from ladder.core.plan import Target  # noqa: E402

DPI = 150
SINGLE = ("loss_vs_compute",)  # figures of one panel, shown narrower than the page
PANEL = (4.6, 3.4)  # inches per small-multiples panel
COLS = 3
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
         "legend.fontsize": 8}
# What marks a target (its star, its measured circle): names avoid these before any other marker.
TARGET_GID = "target"
FITTED, OTHER = dict(s=16, zorder=3), dict(marker="s", facecolors="none", edgecolors="0.55", s=22, zorder=3)
MEASURED = dict(marker="o", facecolors="none", edgecolors="r", s=70, lw=1.4, zorder=5, gid=TARGET_GID)
STAR = dict(marker="*", ls="none", ms=11, zorder=6, gid=TARGET_GID)


@dataclass
class View:
    """What every figure reads: the data's runs (each run's final values), which of them the method
    fitted and which are targets, the predictions and the measured target values."""
    ps: PointSet
    targets: List[Target]
    out: MethodOutput
    preds: pd.DataFrame
    interval: float

    def __post_init__(self):
        runs = self.ps.points.drop_duplicates("run")
        aimed = np.zeros(len(runs), bool)
        for t in self.targets:
            aimed |= at_target(runs, t) | (runs["run"] == t.name).to_numpy()
        self.table = RunTable(self.ps, list(runs["run"]))
        self.target_runs = set(runs[aimed]["run"])
        self.fitted = set(self.out.runs)
        self.others = [r for r in runs["run"] if r not in self.fitted and r not in self.target_runs]
        self.actual = self.preds.set_index(["target", "metric"])["actual"].to_dict()
        self.primary = choose_primary(set(self.ps.points["metric"]))
        self.banded = bootstrap_measures(self.out)

    def band_words(self) -> str:
        """What the figures say of the band around a law: the bootstrap's, or why there is none."""
        return f"with its {self.interval:.0%} bootstrap band" if self.banded else \
            "(no band: the run bootstrap does not measure this fit, so its intervals come from its misses)"

    def measured(self, metric: Optional[str]) -> np.ndarray:
        return np.array([self.actual.get((t.name, metric), np.nan) for t in self.targets])

    def finals(self, runs, metric: str):
        """((N, D), values) of `runs` that have `metric`."""
        runs = [r for r in runs if (r, metric) in self.table.final]
        N = np.array([self.table.info[r][0] for r in runs])
        D = np.array([self.table.info[r][1] for r in runs])
        return np.vstack([N, D]), np.array([self.table.final[r, metric] for r in runs])


# How a method says its bootstrap cannot measure its fit (fit.methods.gadre); its intervals then come from its
# misses (fit.calibration), and a bootstrap band would show what the intervals are not.
NOT_MEASURED = "the bootstrap does not measure the fit"


def bootstrap_measures(out: MethodOutput) -> bool:
    return not any(NOT_MEASURED in w for w in out.warnings)


def figure_steps(out: MethodOutput, primary: Optional[str]) -> Tuple[Dict[str, FittedStep], Dict[str, FittedStep]]:
    """(steps from (N, D) or compute, steps fed by another) that the figures draw: the shown ones (all, unless
    the method names some) and what feeds them, the primary loss's own law first."""
    shown = {k: out.steps[k] for k in (out.shown or out.steps) if k in out.steps}
    fed = {k: f for k, f in shown.items() if f.step.fed_by is not None}
    order = display.order_metrics(f.step.output or k for k, f in fed.items())
    fed = dict(sorted(fed.items(), key=lambda kv: order.index(kv[1].step.output or kv[0])))
    first = {k: f for k, f in out.steps.items() if f.step.fed_by is None
             and (not out.shown or k in shown or any(g.step.fed_by == k for g in fed.values()))}
    lead = {k: f for k, f in out.steps.items() if f.step.fed_by is None and f.step.output == primary}
    return {**lead, **first}, fed


def step_title(fs: FittedStep) -> str:
    s = fs.step
    if s.output is None:
        return s.key
    if s.fed_by is None:
        return display.named(s.output)
    inter = s.x_label
    return f"{display.label(s.output)} from {display.label(inter)} {display.KINDS.get(display.kind(inter), ('',))[0]}"


def figures(ps, targets, out: MethodOutput, preds: pd.DataFrame, interval: float) -> Iterator[tuple]:
    """(file name, caption, figure) of each figure, in the report's order."""
    view = View(ps, targets, out, preds, interval)
    first, fed = figure_steps(out, view.primary)
    if view.primary is not None:
        yield "loss_vs_compute", _loss_vs_compute_caption(view), _loss_vs_compute(view, first)
    have = preds[preds["actual"].notna()]
    if not have.empty:
        yield "predicted_vs_actual", f"predicted against measured, with {interval:.0%} intervals (accuracy in " \
                                     "points); on the dotted line the prediction is exact", _pred_vs_actual(have)
    if first:
        yield "step1", f"fits from (N, D) or compute, each law (lines, one per N) with the runs it fitted (dots), runs " \
                       f"it did not fit (grey squares), each target's curve (dashed) {view.band_words()}, the " \
                       "predicted targets (stars) and the measured ones (red circles)", \
            _grid(first, lambda ax, f: _step1(ax, f, view))
    if fed:
        anchored = any((f.step.points.run < 0).any() for f in fed.values())
        yield "step2", f"fits fed by the step before: the points fitted, the fit {view.band_words()}, the final values " \
                       "of runs not fitted (grey squares), the predicted targets (stars) and the measured ones (red " \
                       "circles); each panel spans its points and targets" + \
                       (" (a sigmoid's anchor at zero loss and full accuracy is fitted too, outside the view)"
                        if anchored else ""), _grid(fed, lambda ax, f: _step2(ax, f, view, out.shown.get(f.step.key)))
    if first or fed:
        yield "residuals", "residuals (measured − fitted) of the fits drawn above: relative (%) for laws of a loss, in " \
                           "points for accuracy curves; each dot is a fitted point, the bar its RMS (fits.json holds " \
                           "every fit's residuals)", _residuals({**first, **fed})


def _loss_vs_compute_caption(view: View) -> str:
    """What the compute figure draws, and only that: runs not fitted, predictions and measured targets are each
    named where the figure has them (a method that predicts no loss draws the data alone)."""
    metric = view.primary
    predicted = metric in set(view.preds["metric"])
    drawn = ["the ladder's final values (one colour per tokens-per-parameter ratio M)"]
    if len(view.finals(view.others, metric)[1]):
        drawn.append("runs not fitted (grey squares)")
    if predicted:
        drawn += [f"the fitted law along each M and out to each target at its own M (dashed) {view.band_words()}",
                  "the predicted targets (stars)"]
    if np.isfinite(view.measured(metric)).any():
        drawn.append("the measured targets (red circles)")
    listed = ", ".join(drawn[:-1]) + " and " + drawn[-1] if len(drawn) > 1 else drawn[0]
    unpredicted = "" if predicted else f"; method {view.out.method} does not predict this loss"
    return f"{display.long_label(metric)} against compute C = 6ND: {listed}{unpredicted}"


def bootstrap_band(fs: FittedStep, out: MethodOutput, X: np.ndarray, interval: float):
    """The central `interval` of the step's bootstrap curves at inputs X (in its output's units); None without
    bootstrap samples."""
    keys = [f"param|{fs.step.key}|{k}" for k in fs.fit.law.params]
    if not all(k in out.samples for k in keys):
        return None
    P = np.column_stack([out.samples[k] for k in keys])
    P = P[np.all(np.isfinite(P), axis=1)]
    if len(P) < 2:
        return None
    with np.errstate(all="ignore"):
        curves = fs.step.output_of(fs.fit.law.f(np.asarray(X, float), P.T[..., None]))
    return np.nanquantile(curves, [(1 - interval) / 2, (1 + interval) / 2], axis=0)


def law_inputs(fs: FittedStep, ND: np.ndarray) -> np.ndarray:
    return ND if fs.step.inputs is None else fs.step.inputs(ND)


def _curve(fs: FittedStep, ND: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return fs.step.output_of(fs.fit.predict(law_inputs(fs, ND)))


def _plain_log(axis, lo: float, hi: float) -> None:
    """A log axis labelled 2.4, 2.6, … rather than 2.4×10⁰."""
    ticks = [t for t in MaxNLocator(nbins=7).tick_values(lo, hi) if lo <= t <= hi and t > 0]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


# Where a star's name goes, in offset points: left of it first (targets lie at the figure's right, beyond the
# ladder), above or below, then right of it, then further up or down, then further aside (crowded targets: make
# smoke's four, the Gadre report's two at one loss).
LABEL_SPOTS = [(-9, 4, "right", "bottom"), (-9, -4, "right", "top"), (9, 4, "left", "bottom"),
               (9, -4, "left", "top"), (-9, 16, "right", "bottom"), (-9, -16, "right", "top"),
               (9, 16, "left", "bottom"), (9, -16, "left", "top"), (-9, 28, "right", "bottom"),
               (-9, -28, "right", "top"), (9, 28, "left", "bottom"), (9, -28, "left", "top"), (24, -8, "left", "top"),
               (24, 8, "left", "bottom"), (-24, 8, "right", "bottom"), (-24, -8, "right", "top")]


def label_targets(ax, xs, ys, names) -> None:
    """Each star's name, from the highest star down, in the one of LABEL_SPOTS that stays inside the axes (off
    them it would cover the tick labels), then overlaps the fewest names placed before, then covers the fewest
    targets' markers (a name beside another target's star or circle reads as that one's), then the fewest other
    markers (the first such): targets near each other and the points around them stay readable."""
    ax.get_xlim(), ax.get_ylim()  # the axes' final limits (autoscaled), before reading positions off them
    renderer = ax.figure.canvas.get_renderer()
    r = 4 * ax.figure.dpi / 72  # about a marker's half-size, in pixels
    markers = _markers(ax)
    placed = []

    frame = ax.get_window_extent(renderer)

    def cost(spot, x, y, n):
        text = _name(ax, n, x, y, spot)
        box = text.get_window_extent(renderer)
        text.remove()
        outside = box.x0 < frame.x0 or box.x1 > frame.x1 or box.y0 < frame.y0 or box.y1 > frame.y1
        covered = markers.covered(box)
        crossed = markers.crossed(ax.transData.transform((x, y)), spot[:2], ax.figure.dpi / 72) \
            if _far(spot) else 0
        return (outside, sum(box.padded(r).overlaps(b) for b in placed), covered[markers.target].sum() + crossed,
                covered.sum())

    for x, y, n in sorted([s for s in zip(xs, ys, names) if np.isfinite(s[0]) and np.isfinite(s[1])],
                          key=lambda s: -s[1]):
        spot = min(LABEL_SPOTS, key=lambda sp: cost(sp, x, y, n))
        text = _name(ax, n, x, y, spot)
        placed.append(text.get_window_extent(renderer))  # the name's box alone, as `cost` measured it
        if _far(spot):
            text.remove()
            _name(ax, n, x, y, spot, leader=True)


@dataclass
class Markers:
    """Every marker drawn on an axes: its centre and radius in display pixels, whether it marks a target and
    whether it is a star (a predicted target)."""
    xy: np.ndarray
    radius: np.ndarray
    target: np.ndarray
    star: np.ndarray

    def covered(self, box) -> np.ndarray:
        """Which markers a text box touches: its edge within the marker's radius (and a point) of the centre."""
        dx = np.maximum.reduce([box.x0 - self.xy[:, 0], np.zeros(len(self.xy)), self.xy[:, 0] - box.x1])
        dy = np.maximum.reduce([box.y0 - self.xy[:, 1], np.zeros(len(self.xy)), self.xy[:, 1] - box.y1])
        return np.hypot(dx, dy) < self.radius

    def crossed(self, start, offset, px: float) -> int:
        """How many other targets' stars a leader line from `start` (a star, in pixels) by `offset` (points)
        passes over: a line past another target's star ties the name to that one as much as to its own (past a
        measured circle, which may be its own target's, it reads as no one's)."""
        end = np.asarray(start) + np.asarray(offset, float) * px
        d = end - start
        t = np.clip(((self.xy - start) @ d) / (d @ d), 0, 1)
        gap = np.hypot(*(self.xy - (start + t[:, None] * d)).T)
        own = np.hypot(*(self.xy - start).T) < px
        return int((self.target & self.star & ~own & (gap < self.radius)).sum())


def _markers(ax) -> Markers:
    """Every marker drawn on `ax` (scatter points, and lines drawn with a marker), each with its own radius: a
    star (ms=11) reaches 5.5 points from its centre, a fitted dot 2, so a name clear of a dot can still cover a
    star (make smoke's step-2 panel: M5's name over M10's star)."""
    px = ax.figure.dpi / 72
    xy, radius, target, star = [], [], [], []
    for c in ax.collections:
        if isinstance(c, PathCollection) and len(c.get_offsets()):
            pts = c.get_offset_transform().transform(c.get_offsets())
            sizes = np.resize(c.get_sizes() if len(c.get_sizes()) else [36.0], len(pts))
            xy.append(pts)
            radius.append((np.sqrt(sizes) / 2 + np.max(c.get_linewidths(), initial=0) + 1) * px)
            target.append(np.full(len(pts), c.get_gid() == TARGET_GID))
            star.append(np.zeros(len(pts), bool))
    for line in ax.lines:
        if line.get_marker() not in (None, "None", "", " "):
            pts = line.get_transform().transform(line.get_xydata())
            xy.append(pts)
            radius.append(np.full(len(pts), (line.get_markersize() / 2 + 1) * px))
            target.append(np.full(len(pts), line.get_gid() == TARGET_GID))
            star.append(np.full(len(pts), line.get_marker() == "*"))
    if not xy:
        return Markers(np.empty((0, 2)), np.empty(0), np.empty(0, bool), np.empty(0, bool))
    # a name keeps about a marker's half-size (4 points) clear of the smallest dots too, and a clear gap (3 points
    # more) from another target's star or circle: a name just beside one reads as its (the Gadre report's 6.9B-M20
    # beside 1.4B's circle)
    target = np.concatenate(target)
    return Markers(np.vstack(xy), np.maximum(np.concatenate(radius), 4 * px) + 3 * px * target, target,
                   np.concatenate(star))


# A name set further than this (points) above or below its star, or twice this beside it, is tied to it by a thin
# line: beside another target's marker it would otherwise read as that one's (the Gadre report's 6.9B-M20 beside
# 1.4B's circle).
LEADER_PT = 8


def _far(spot) -> bool:
    return abs(spot[1]) > LEADER_PT or abs(spot[0]) > 2 * LEADER_PT


def _name(ax, name: str, x: float, y: float, spot, leader: bool = False):
    dx, dy, ha, va = spot
    line = dict(arrowstyle="-", color="0.35", lw=0.6, shrinkA=0, shrinkB=5) if leader else None
    return ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=8, ha=ha, va=va, zorder=7,
                       bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.6), arrowprops=line)


def target_stars(ax, x, y, lower, upper, colour="k", label: Optional[str] = None):
    """The predicted targets: stars with their intervals (none where an interval is missing), marked as targets
    for label_targets."""
    y, lower, upper = (np.asarray(v, float) for v in (y, lower, upper))
    err = [np.clip(y - lower, 0, None), np.clip(upper - y, 0, None)]
    bars = ax.errorbar(x, y, yerr=err if np.isfinite(err).all() else None, fmt="*", color=colour, ms=12,
                       capsize=3, label=label, zorder=6)
    bars.lines[0].set_gid(TARGET_GID)
    return bars


def side_by_side(ax, C: np.ndarray) -> np.ndarray:
    """Where the n variants' stars and circles go at each target on a log x axis: C (targets, n) is each
    variant's compute at each target (NaN where it predicts none). A target's n places stand SPREAD of the axes'
    width apart, centred on the target; targets too close for their groups (the Gadre compare's 1.4B-M640 and
    6.9B-M20, 1.3× apart in C) are moved apart just enough, in their order, so that one target's stars never stand
    between another's. Read once the axes' limits are final."""
    lo, hi = np.log10(ax.get_xlim())
    step = SPREAD * (hi - lo)
    T, n = C.shape
    with np.errstate(all="ignore"):
        centre = np.nanmean(np.log10(C), axis=1)
    order = np.argsort(centre)
    u = centre[order].copy()
    for j in range(1, T):
        u[j] = max(u[j], u[j - 1] + (n + 0.5) * step)
    u -= np.mean(u - centre[order])  # the groups as a whole where the targets are
    placed = np.empty(T)
    placed[order] = u
    return 10 ** (placed[:, None] + step * (np.arange(n) - (n - 1) / 2))


SPREAD = 0.022  # about a star's width (ms=12) on an 8-inch figure


def _loss_vs_compute(view: View, first: Dict[str, FittedStep]):
    metric = view.primary
    fig, ax = plt.subplots(figsize=(8, 5))
    ladder = [r for r in view.table.runs if r in view.fitted]
    mult = {r: view.table.info[r][3] for r in view.table.runs}
    step = next((f for f in first.values() if f.step.output == metric), None)
    ys = []
    colours = {}
    for m in sorted({mult[r] for r in ladder}):
        ND, y = view.finals([r for r in ladder if mult[r] == m], metric)
        C = display.compute(ND[0], ND[1])
        dots = ax.scatter(C, y, label=f"M = {display.multiplier(m)}", **FITTED)
        colours[m] = dots.get_facecolor()[0]
        ys += list(y)
        if step is not None and len(C):
            grid = np.geomspace(C.min(), C.max() * 1.5, 50)  # not below the ladder, where nothing pins the law
            n = np.sqrt(grid / (6 * m))
            ax.plot(grid, _curve(step, np.vstack([n, m * n])), color=colours[m], lw=1)
    ND, y = view.finals(view.others, metric)
    if len(y):
        ax.scatter(display.compute(ND[0], ND[1]), y, label="runs not fitted", **OTHER)
        ys += list(y)
    tC = display.compute([t.params for t in view.targets], [t.tokens for t in view.targets])
    pr = view.preds[view.preds["metric"] == metric].set_index("target")
    if step is not None and not pr.empty:
        ladder_C = display.compute(*view.finals(ladder, metric)[0])
        start = min(ladder_C.max() / 3 if len(ladder_C) else tC.min(), tC.min()) / 1.5  # from the ladder's end
        for t, c in zip(view.targets, tC):
            m = t.tokens / t.params
            grid = np.geomspace(start, c * 1.3, 80)
            n = np.sqrt(grid / (6 * m))
            ND = np.vstack([n, m * n])
            ax.plot(grid, _curve(step, ND), "k--", lw=0.8)
            band = bootstrap_band(step, view.out, law_inputs(step, ND), view.interval) if view.banded else None
            if band is not None:
                ax.fill_between(grid, band[0], band[1], color="0.5", alpha=0.2, lw=0)
        p = pr.reindex([t.name for t in view.targets])
        target_stars(ax, tC, p["predicted"], p["lower"], p["upper"], label="predicted target")
        ys += list(p["lower"]) + list(p["upper"]) + list(p["predicted"])
    actual = view.measured(metric)
    if np.isfinite(actual).any():
        ax.scatter(tC, actual, label="measured target", **MEASURED)
        ys += list(actual)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ys = np.array([v for v in ys if np.isfinite(v)])
    if len(ys):
        lo, hi = ys.min() / 1.03, ys.max() * 1.03
        ax.set_ylim(lo, hi)
        _plain_log(ax.yaxis, lo, hi)
    ax.set(xlabel="compute C = 6ND (FLOPs)", ylabel=display.long_label(metric),
           title=f"{display.long_label(metric)} against compute")
    ax.legend(ncol=2, loc="upper right")
    if step is not None and not pr.empty:
        label_targets(ax, tC, p["predicted"], [t.name for t in view.targets])
    fig.tight_layout()
    return fig


def _grid(items: Dict[str, FittedStep], draw):
    n = len(items)
    cols = min(COLS, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL[0] * cols, PANEL[1] * rows), squeeze=False)
    # Each panel's names are placed once the layout is final (`draw` may return what places them), so that a
    # name kept inside its axes stays there.
    name = [draw(ax, f) for ax, f in zip(axes.flat, items.values())]
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    legend = {}
    for ax in axes.flat[:n]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lab, h)
    fig.tight_layout()
    for place in filter(None, name):
        place()
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(8, len(legend)),
                   bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig


def _step1(ax, fs: FittedStep, view: View):
    s, fit = fs.step, fs.fit
    k = display.scale(s.output) if s.output else 1.0
    X, y = s.points.X, k * s.output_of(s.points.y)
    tx, ty = fs.target_x, k * s.output_of(fs.target_value)
    names = [t.name for t in view.targets]
    if X.shape[0] == 2:
        lo, hi = min(X[1].min(), tx[1].min()) / 1.5, max(X[1].max(), tx[1].max()) * 1.5
        grid = np.geomspace(lo, hi, 60)
        for n in np.unique(X[0]):
            sel = X[0] == n
            dots = ax.scatter(X[1][sel], y[sel], label=f"N = {display.count(n)}", **FITTED)
            with np.errstate(all="ignore"):
                ax.plot(grid, k * s.output_of(fit.predict(np.vstack([np.full_like(grid, n), grid]))), lw=0.9,
                        color=dots.get_facecolor()[0])
        for i in range(tx.shape[1]):
            Xt = np.vstack([np.full_like(grid, tx[0, i]), grid])
            with np.errstate(all="ignore"):
                ax.plot(grid, k * s.output_of(fit.predict(Xt)), "k--", lw=0.8)
            band = bootstrap_band(fs, view.out, Xt, view.interval) if view.banded else None
            if band is not None:
                ax.fill_between(grid, k * band[0], k * band[1], color="0.5", alpha=0.2, lw=0)
        xs = tx[1]
    else:
        ax.scatter(X[0], y, label="fitted runs", **FITTED)
        grid = np.geomspace(X[0].min() / 1.5, max(X[0].max(), tx[0].max()) * 1.5, 60)
        with np.errstate(all="ignore"):
            ax.plot(grid, k * s.output_of(fit.predict(grid[None, :])), lw=0.9)
        band = bootstrap_band(fs, view.out, grid[None, :], view.interval) if view.banded else None
        if band is not None:
            ax.fill_between(grid, k * band[0], k * band[1], color="0.5", alpha=0.2, lw=0)
        xs = tx[0]
    if s.output is not None:
        ND, other = view.finals(view.others, s.output)
        if len(other):
            Xo = law_inputs(fs, ND)
            ax.scatter(Xo[-1], k * other, label="runs not fitted", **OTHER)
    ax.plot(xs, ty, color="k", label="predicted target", **STAR)
    actual = k * view.measured(s.output)
    if np.isfinite(actual).any():
        ax.scatter(xs, actual, label="measured target", **MEASURED)
    ax.set_xscale("log")
    ax.set_xlabel(s.x_label)
    ax.set_ylabel(display.long_label(s.output) if s.output else s.key)
    ax.set_title(f"{step_title(fs)} ({fit.law.name})")
    return lambda: label_targets(ax, xs, ty, names)


def _step2(ax, fs: FittedStep, view: View, caption: Optional[str] = None):
    """The fit over the span of its points, the runs not fitted and the targets (a law of a loss can run to
    -400 points at L = 0, which would squash the data into a line): x and y limits from what is drawn as points."""
    s, fit = fs.step, fs.fit
    k = display.scale(s.output) if s.output else 1.0
    inter = view.out.steps[s.fed_by].step.output
    # the runs' points only: a point in every resample (the sigmoid's (0, 1) anchor, olmo_two_step) stretched the
    # axis to L = 0 and squashed the data; the caption says it is fitted and left out of the view
    own = s.points.run >= 0
    xs, ys = s.points.X[0][own], k * s.points.y[own]
    ax.scatter(xs, ys, s=6, alpha=0.5, lw=0, label="points fitted", zorder=2)
    shown_x, shown_y = [*xs, *np.ravel(fs.target_x[0])], [*ys]
    if inter is not None and s.output is not None:
        runs = [r for r in view.others if (r, inter) in view.table.final and (r, s.output) in view.table.final]
        if runs:
            ox, oy = view.finals(runs, inter)[1], k * view.finals(runs, s.output)[1]
            ax.scatter(ox, oy, label="runs not fitted", **OTHER)
            shown_x, shown_y = shown_x + list(ox), shown_y + list(oy)
    ty = k * fs.target_value
    ax.plot(fs.target_x[0], ty, color="k", label="predicted target", **STAR)
    mx, my = view.measured(inter), k * view.measured(s.output)
    if np.isfinite(mx + my).any():
        ax.scatter(mx, my, label="measured target", **MEASURED)
    shown_x, shown_y = _finite(shown_x + list(mx)), _finite(shown_y + list(ty) + list(my))
    x_lo, x_hi = _padded(shown_x, 0.08)
    grid = np.linspace(x_lo, x_hi, 200)
    with np.errstate(all="ignore"):
        ax.plot(grid, k * fit.predict(grid[None, :]), "r-", lw=1, label="fit")
    band = bootstrap_band(fs, view.out, grid[None, :], view.interval) if view.banded else None
    if band is not None:
        ax.fill_between(grid, k * band[0], k * band[1], color="r", alpha=0.2, lw=0,
                        label=f"{view.interval:.0%} bootstrap band")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(*_padded(shown_y, 0.12))
    ax.set_xlabel(display.long_label(inter) if inter else s.x_label)
    ax.set_ylabel(display.long_label(s.output) if s.output else s.key)
    title = step_title(fs)
    if caption and ": " in caption:
        title += f"\n{caption.split(': ', 1)[1]}"
    ax.set_title(title, fontsize=9)
    return lambda: label_targets(ax, fs.target_x[0], ty, [t.name for t in view.targets])


def _finite(values) -> np.ndarray:
    v = np.asarray(values, float)
    return v[np.isfinite(v)]


def _padded(values: np.ndarray, pad: float) -> Tuple[float, float]:
    """(low, high) of `values`, each widened by `pad` of their span (by 1 where they are one value)."""
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo or max(abs(hi), 1.0)
    return lo - pad * span, hi + pad * span


def _pred_vs_actual(have: pd.DataFrame):
    """One panel per kind of metric: predicted against measured with intervals, each point named while few."""
    kinds = {k: g for k, g in have.groupby(have["metric"].map(display.kind))}
    items = {k: (k, kinds[k]) for k in display.order_kinds(kinds)}

    def draw(ax, item):
        kind, g = item
        k = display.scale(g["metric"].iloc[0])
        a, p = k * g["actual"], k * g["predicted"]
        ax.errorbar(a, p, yerr=[(k * (g["predicted"] - g["lower"])).clip(lower=0),
                                (k * (g["upper"] - g["predicted"])).clip(lower=0)], fmt="o", ms=4, capsize=2)
        lo = min(a.min(), (k * g["lower"]).min(), p.min())
        hi = max(a.max(), (k * g["upper"]).max(), p.max())
        lo, hi = lo - 0.05 * (hi - lo or 1), hi + 0.05 * (hi - lo or 1)
        ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        what, unit = display.KINDS.get(kind, (kind, ""))
        ax.set_xlabel(f"measured {what}" + (f" ({unit})" if unit else ""))
        ax.set_ylabel(f"predicted {what}" + (f" ({unit})" if unit else ""))
        ax.set_title(f"{display.kind_title(kind)}: {len(g)} prediction{'s' * (len(g) > 1)}")
        many = g["target"].nunique() > 1
        names = [display.label(r.metric) + (f" · {r.target}" if many else "") for r in g.itertuples()]
        # named while few, each where it overlaps the fewest names and points
        return (lambda: label_targets(ax, a, p, names)) if len(g) <= 12 else None

    return _grid(items, draw)


def _residuals(steps: Dict[str, FittedStep]):
    """Each fit drawn above as one row of its residuals: relative for a law of a loss (or of −log Q), in
    points for an accuracy curve, one panel per unit."""
    panels = {"relative residual (%)": [], "residual (points)": []}
    for fs in steps.values():
        s = fs.step
        X, y = s.points.X, s.points.y
        with np.errstate(all="ignore"):
            f = fs.fit.predict(X)
        points = s.fed_by is not None and s.to_output is None and s.output is not None and is_accuracy(s.output)
        r = 100 * (y - f) if points else 100 * (y - f) / np.abs(f)
        panels["residual (points)" if points else "relative residual (%)"].append((step_title(fs), r[np.isfinite(r)]))
    panels = {k: v for k, v in panels.items() if v}
    rows = max(len(v) for v in panels.values())
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 1.6 + 0.38 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (unit, items) in zip(axes.flat, panels.items()):
        for i, (name, r) in enumerate(items):
            ax.scatter(r, i + rng.uniform(-0.2, 0.2, len(r)), s=5, alpha=0.5, color="C0")
            rms = float(np.sqrt(np.mean(r ** 2))) if len(r) else np.nan
            ax.plot([-rms, rms], [i, i], color="k", lw=2, solid_capstyle="butt")
        ax.axvline(0, color="k", lw=0.6)
        ax.set_yticks(range(len(items)))
        ax.set_yticklabels([n for n, _ in items])
        ax.set_ylim(len(items) - 0.5, -0.5)
        ax.set_xlabel(unit)
        ax.set_title("steps from (N, D)" if unit.startswith("relative") else "accuracy from a loss")
    fig.tight_layout()
    return fig
