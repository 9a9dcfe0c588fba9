"""The report: the answer first (a sentence per target, then one table per kind of metric in its unit),
figures a paper would print (the fitted law out to the targets at C = 6ND, plain log ticks, residuals that
read), the fitted parameters, the warnings last and grouped, a provenance footer; and a report.html that
renders in a real browser (headless Chromium) with every image loaded and no console error."""
import base64
import io
import re
import shutil
import subprocess

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from PIL import Image

from fit import display
from fit.chain import progress
from fit.config import FitConfig
from fit.present.figures import figures
from fit.sources import load_points
from fit.present.report import answer_sentences, kind_table, parameter_tables, warning_groups
from fit.predict import apply_holdout, choose_targets
from fit.run import PRED_COLUMNS, run_fit
from fit.targets import NAMED, actual_value

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory, write_ladder):
    root = tmp_path_factory.mktemp("report")
    out = run_fit(FitConfig(results=str(write_ladder(root)), method="olmo_two_step", holdout="largest", bootstrap=30,
                            out=str(root / "out")))
    return out


def test_the_report_opens_with_the_answer_and_ends_with_warnings_and_provenance(report):
    md = (report / "report.md").read_text()
    heads = re.findall(r"^## (.+)$", md, flags=re.M)
    assert heads == ["Predictions", "Figures", "Fitted parameters", "Method details", "Warnings"]
    lead, first = md.split("## Predictions", 1)[0], md.split("## Predictions", 1)[1].split("## Figures", 1)[0]
    assert "Method olmo_two_step, fitted on 9 runs of 3 sizes (N = 120K–500K), predicts 3 targets" in lead
    for m in (5, 10, 20):  # one sentence per target: its N, D and C, the task, its measured value and error
        assert re.search(rf"^\*\*smoke-64-smoke-M{m}\*\* \(N = 900K, D = [\d.]+M, C = [\d.]+e1\d FLOPs\): derived "
                         r"[\d.]+ \[[\d.]+, [\d.]+\] \(measured [\d.]+, [+-][\d.]+\); smoke_val LM loss", first, re.M)
    assert first.index("### Accuracy (points)") < first.index("### LM loss (nats/token)")
    params = md.split("## Fitted parameters", 1)[1].split("## Method details", 1)[0]
    assert "| Fit " in params and "| α " in params and re.search(r"\| [\d.]+ \[[\d.]+, [\d.]+\]", params)
    warnings = md.split("## Warnings", 1)[1]
    assert "### Held-out runs" in warnings and "no fit saw them" in warnings
    assert re.search(r"^Harness commit \w+.*UTC\.", warnings, re.M) and "Input: " in warnings


def test_no_cell_is_none_true_nan_or_a_raw_count(report):
    md, page = (report / "report.md").read_text(), (report / "report.html").read_text()
    assert not re.search(r"\|\s*(None|True|False|nan|NaN)\s*\|", md)
    assert not re.search(r"<td>\s*(None|True|False|nan|NaN)\s*</td>", page)
    assert "900000" not in md and "900K" in md


def test_answer_names_each_task_with_interval_measured_error_and_mae():
    t = NAMED["13B-5T"]
    preds = pd.DataFrame([
        {"target": t.name, "metric": "hellaswag:acc", "predicted": 0.86, "lower": 0.813, "upper": 0.89, "actual": 0.832},
        {"target": t.name, "metric": "mmlu:acc", "predicted": 0.519, "lower": 0.465, "upper": 0.559, "actual": 0.516},
        {"target": t.name, "metric": "c4_en:loss", "predicted": 2.344, "lower": 2.238, "upper": 2.518, "actual": 2.4379}])
    [(name, text)] = answer_sentences(preds, [t], 0.9)
    assert name == "13B-5T" and text == (
        "(N = 13.2B, D = 5.0T, C = 4.0e23 FLOPs): MMLU 51.9 [46.5, 55.9] (measured 51.6, +0.3), HellaSwag 86.0 "
        "[81.3, 89.0] (measured 83.2, +2.8); mean absolute error 1.6 points over 2 tasks, 2 of 2 measured values "
        "inside the 90% intervals; c4_en LM loss 2.344 [2.238, 2.518] (measured 2.438, -3.9 %).")


def test_without_intervals_the_answer_counts_none_inside():
    """bootstrap=0: the error is stated, no count of measured values inside intervals that do not exist."""
    t = NAMED["13B-5T"]
    preds = pd.DataFrame([{"target": t.name, "metric": m, "predicted": p, "lower": np.nan, "upper": np.nan,
                           "actual": a} for m, p, a in (("mmlu:acc", 0.519, 0.516), ("piqa:acc", 0.8, 0.83))])
    [(_, text)] = answer_sentences(preds, [t], 0.9)
    assert text.endswith("MMLU 51.9 (measured 51.6, +0.3), PIQA 80.0 (measured 83.0, -3.0); mean absolute error 1.6 "
                         "points over 2 tasks.")
    assert kind_table(preds, "acc").iloc[-1].tolist() == ["mean absolute error", "", "1.6"]


def test_a_kinds_table_has_one_row_per_metric_in_its_unit_and_a_mae_row():
    preds = pd.DataFrame([
        {"target": "A", "metric": "mmlu:acc", "predicted": 0.5, "lower": 0.45, "upper": 0.55, "actual": 0.52},
        {"target": "A", "metric": "piqa:acc", "predicted": 0.8, "lower": 0.7, "upper": 0.9, "actual": 0.85},
        {"target": "B", "metric": "mmlu:acc", "predicted": 0.6, "lower": np.nan, "upper": np.nan, "actual": np.nan},
        {"target": "A", "metric": "c4:loss", "predicted": 2.5, "lower": 2.4, "upper": 2.6, "actual": np.nan}])
    t = kind_table(preds, "acc")
    assert list(t.columns) == [("Task", ""), ("A", "predicted"), ("A", "measured (error)"), ("B", "predicted")]
    assert t.iloc[0].tolist() == ["MMLU", "50.0 [45.0, 55.0]", "52.0 (-2.0)", "60.0"]
    assert t.iloc[1].tolist() == ["PIQA", "80.0 [70.0, 90.0]", "85.0 (-5.0)", ""]
    assert t.iloc[2].tolist() == ["mean absolute error", "", "3.5 (2/2 inside)", ""]
    assert kind_table(preds, "loss").iloc[0].tolist() == ["c4", "2.500 [2.400, 2.600]"]


@pytest.fixture(scope="module")
def far(tmp_path_factory, write_ladder):
    """The small ladder fitted to predict the OLMo targets: N·D of 7B-4T overflows int64."""
    ps = load_points(str(write_ladder(tmp_path_factory.mktemp("far"))))
    targets = choose_targets(FitConfig(targets=["7B-4T", "13B-5T"]), ps)
    from fit.registry import METHODS
    out = METHODS["olmo_two_step"](ps, targets, FitConfig(bootstrap=20, calibrate=False))
    preds = pd.DataFrame(out.predictions, columns=PRED_COLUMNS)  # as run_fit builds it: N and D as int64
    return ps, targets, out, preds


def test_the_headline_figure_draws_each_target_at_6nd_with_the_law_reaching_it(far):
    ps, targets, out, preds = far
    assert preds["params"].dtype.kind == "i"
    figs = {name: fig for name, _, fig in figures(ps, targets, out, preds, 0.9)}
    ax = figs["loss_vs_compute"].axes[0]
    C = np.array([6.0 * t.params * t.tokens for t in targets])
    stars = next(line for line in ax.lines if line.get_marker() == "*")
    assert np.allclose(stars.get_xdata(), C, rtol=1e-9) and C.min() > 1e23
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == len(targets) and all(line.get_xdata().max() >= c for line, c in zip(dashed, C))
    assert {t.get_text() for t in ax.texts} >= {"7B-4T", "13B-5T"}  # targets labelled by name
    figs["loss_vs_compute"].canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\d+(\.\d+)?", x) for x in labels), labels  # not 3.8×10⁰
    for fig in figs.values():
        plt.close(fig)


def test_the_compute_figures_caption_names_only_what_it_draws(far, report):
    """No measured target (7B-4T, 13B-5T have no runs here): no "red circles" in the caption; a method that does
    not predict the loss: its caption says so once, without stars (the OLMo report's read "…, (method olmo_two_step
    does not predict it) and the measured targets (red circles)" over a figure with neither)."""
    ps, targets, out, preds = far
    name, caption, fig = next(figures(ps, targets, out, preds, 0.9))
    plt.close(fig)
    assert name == "loss_vs_compute" and "(stars)" in caption and "red circles" not in caption, caption
    primary = next(m for m in preds["metric"] if m.endswith("val:loss"))
    _, caption, fig = next(figures(ps, targets, out, preds[preds["metric"] != primary], 0.9))
    plt.close(fig)
    assert caption.endswith("does not predict this loss") and "stars" not in caption and "), (" not in caption
    assert "red circles" in re.search(r"!\[([^]]*)\]\(figures/loss_vs_compute", (report / "report.md").read_text())[1]


def test_the_residual_figure_has_one_labelled_row_per_fit_drawn(far):
    ps, targets, out, preds = far
    figs = {name: fig for name, _, fig in figures(ps, targets, out, preds, 0.9)}
    rows = [t.get_text() for ax in figs["residuals"].axes for t in ax.get_yticklabels()]
    assert rows == ["smoke_val LM loss", "derived from smoke_val LM loss"]
    for fig in figs.values():
        plt.close(fig)


def test_figures_are_small_multiples_at_150_dpi(report):
    pngs = {p.stem: p for p in (report / "figures").glob("*.png")}
    assert {"loss_vs_compute", "step1", "step2", "predicted_vs_actual", "residuals"} <= set(pngs)
    for p in pngs.values():
        assert Image.open(p).info["dpi"][0] == pytest.approx(150, abs=1)
    assert Image.open(pngs["step1"]).size[0] >= 600


@pytest.mark.parametrize("method", ["olmo_two_step", "best"])
def test_step_figures_draw_the_measured_targets(tmp_path, write_ladder, method):
    from fit.registry import METHODS
    ps = load_points(str(write_ladder(tmp_path)))
    fit_ps, held = apply_holdout(FitConfig(holdout="largest"), ps)
    targets = choose_targets(FitConfig(), fit_ps, held)
    out = METHODS[method](fit_ps, targets, FitConfig(bootstrap=10))
    preds = pd.DataFrame(out.predictions)
    preds["actual"] = [actual_value(ps, next(t for t in targets if t.name == r.target), r.metric, 1)
                       for r in preds.itertuples()]
    figs = {name: fig for name, _, fig in figures(ps, targets, out, preds, 0.9)}
    for name in ("step1", "step2"):
        labels = {t.get_text() for t in figs[name].legends[0].texts}
        assert {"predicted target", "measured target"} <= labels, name
    assert "90% bootstrap band" in {t.get_text() for t in figs["step2"].legends[0].texts}
    if method == "best":  # each task's top path, captioned with its weight
        titles = [ax.get_title() for ax in figs["step2"].axes if ax.get_visible()]
        assert titles and all("top path" in t for t in titles), titles
    for fig in figs.values():
        plt.close(fig)


def test_target_names_hide_neither_each_other_nor_the_stars():
    """The smoke ladder's step-2 panel: four stars close together on the sigmoid (make smoke's report)."""
    from fit.present.figures import label_targets
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    x, y = np.array([1.72, 2.01, 2.18, 2.37]), np.array([60.0, 47.4, 41.8, 36.4])
    ax.plot(np.linspace(0, 3.3, 50), 25 + 75 / (1 + np.exp(3 * (np.linspace(0, 3.3, 50) - 1.8))), "r-")
    ax.plot(x, y, "k*", ms=11)
    names = ["smoke-96-M20", "smoke-64-smoke-M20", "smoke-64-smoke-M10", "smoke-64-smoke-M5"]
    label_targets(ax, x, y, names)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert sorted(t.get_text() for t in ax.texts) == sorted(names)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    stars = ax.transData.transform(np.column_stack([x, y]))
    half = 5 * fig.dpi / 72  # within about half a star (ms=11) of its centre, a name would cover it
    assert all(b.padded(half).count_contains(stars) == 0 for b in boxes)
    plt.close(fig)


def test_a_name_set_away_from_its_star_is_tied_to_it_by_a_line():
    """make smoke's step-2 panel: four stars on the sigmoid above three measured circles; the two names pushed
    below read as the circles' beside them. Each name either touches its star or has a line to it."""
    from fit.present.figures import MEASURED, label_targets
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    grid = np.linspace(-0.2, 3.3, 50)
    ax.plot(grid, 24 + 76 / (1 + np.exp(2.4 * (grid - 1.74))), "r-")
    ax.scatter([0.0, 2.6, 2.7, 2.8, 3.0, 3.1], [100, 30, 29, 28, 27, 23], s=6)  # the points fitted
    x, y = np.array([1.701, 1.999, 2.169, 2.354]), np.array([63.1, 49.5, 42.6, 36.6])
    ax.plot(x, y, "k*", ms=11)
    ax.scatter([1.987, 2.132, 2.324], [40.0, 39.5, 35.5], **MEASURED)
    names = ["smoke-96-M20", "smoke-64-smoke-M20", "smoke-64-smoke-M10", "smoke-64-smoke-M5"]
    label_targets(ax, x, y, names)
    fig.canvas.draw()
    stars = dict(zip(names, ax.transData.transform(np.column_stack([x, y]))))
    near = 10 * fig.dpi / 72  # a name's box within 10 points of its star reads as its (the nearest spots: 7)
    for text in ax.texts:
        box, (sx, sy) = text.get_window_extent(), stars[text.get_text()]
        gap = np.hypot(max(box.x0 - sx, 0, sx - box.x1), max(box.y0 - sy, 0, sy - box.y1))
        assert gap <= near or text.arrow_patch is not None, (text.get_text(), gap)
    assert any(text.arrow_patch is not None for text in ax.texts)  # this crowding moves names off their stars
    plt.close(fig)


def test_warnings_are_grouped_by_what_they_mean_most_consequential_first():
    from fit import laws
    from fit.fitting import _bound_warnings
    # As the fits write them (each with its law's meaning), best's paths suffix added as fit.best does.
    floor, = _bound_warnings(laws.SIGMOID, np.array([-1.0, 3.0, 1.0, 0.9]), [(-1, 0), (0, None), (0, None), (0, 1)],
                             True, "")
    no_e, = _bound_warnings(laws.OLMO_ND, np.array([3.0, 6.0, 0.3, 0.3, 0.0]), [(0, None)] * 5, True, "")
    groups = warning_groups([
        "dropped 3 point(s) of run r1: value is NaN or infinite",
        f"mmlu: {floor} (paths c4_en:loss, <task>:bpb)",
        f"piqa: {floor}",
        f"c4_en:loss: {no_e} (path c4_en:loss)",
        "best: target 13B-5T is 10.3× the largest fitted N, and the backtests that calibrated its intervals "
        "reached 3.45×; its intervals are likely too narrow",
        "something new"])
    titles = [g[0] for g in groups]
    assert titles == ["Targets beyond the calibrated range", "Fitted parameters on a bound", "Points left out",
                      "Other warnings"]
    assert "likely too narrow" in groups[0][1]
    bounds = groups[1][2]
    assert bounds == ["sigmoid a = -1: MMLU (2 paths), PIQA. Means: a + b is the accuracy at high loss: a = -1 puts "
                      "that floor at 0 rather than chance; it shapes the small models' end of the curve, not the "
                      "targets'.",
                      "olmo_nd E = 0: c4_en LM loss. Means: the fit finds no irreducible loss, so the law keeps "
                      "falling with scale: far beyond the ladder its predictions may lean low."]


def test_an_exponent_no_scaling_law_has_is_said_and_grouped():
    """The smoke ladder's 3 close sizes once fitted alpha = 710: the N term a cliff, which a bound does not
    catch (the paper's bounds leave exponents open above)."""
    from fit import laws
    from fit.fitting import _bound_warnings
    p = np.array([6774.4, 3.29, 709.8, 0.129, 0.5])
    said = _bound_warnings(laws.OLMO_ND, p, [(0, None)] * 5, True, "")
    assert said == ["olmo_nd: exponent alpha = 709.8 is far steeper than a scaling law's (about 0.05-1): its N term "
                    "is a cliff at the smallest N fitted and about 0 beyond, so the law extrapolates in N by its "
                    "other terms alone; N values further apart would pin it"]
    assert _bound_warnings(laws.OLMO_ND, np.array([3.0, 6.0, 0.34, 0.28, 1.7]), None, True, "") == []
    assert [g[0] for g in warning_groups([f"c4: {said[0]}"])] == ["Exponents no power law has"]


def test_a_cliff_like_exponent_is_flagged_beside_its_value():
    """alpha = 709.8 [709.7, 8160] printed raw read as a measured exponent: the table flags it and says why."""
    from fit import laws
    from fit.chain import FittedStep, MethodOutput, Points, Step
    from fit.fitting import FitResult
    p = np.array([6774.4, 3.29, 709.8, 0.129, 0.0])
    step = Step("c4:loss", laws.OLMO_ND, Points(np.ones((2, 3)), np.ones(3), np.arange(3)), [p],
                bounds=[(None, None)] * 4 + [(0, None)], output="c4:loss")
    out = MethodOutput("chinchilla", fits={"c4:loss": {"params": dict(zip(laws.OLMO_ND.params, p)),
                                                         "param_intervals": {"alpha": (709.7, 8160.0)}}})
    fitted = FittedStep(step, FitResult(laws.OLMO_ND, p, 0.0, True), np.ones((2, 1)), np.ones(1))
    [(_, formula, table)] = parameter_tables(out, ({"c4:loss": fitted}, {}))
    assert table.loc[0, "α"] == "709.8 [709.7, 8160] ⚠ cliff"
    assert table.loc[0, "β"] == "0.129" and table.loc[0, "E"] == "0 ⚠ on its bound"
    assert "⚠ cliff: an exponent above 3, no scaling law's" in formula and "⚠ on its bound: held at" in formula


def test_fit_says_where_its_report_went(tmp_path, capsys, monkeypatch):
    """Its last line, as `ladder run` prints it; without out= the report goes under outputs/."""
    from ladder.orchestration.cli import main
    rows = [{"run": f"r{n:.0f}-{m}", "params": n, "tokens": n * m, "c4:loss": 1.8 + 400 / n ** 0.34 + 410 / (n * m) ** 0.28}
            for n in (190e6, 370e6, 760e6, 1.3e9) for m in (20, 40)]
    pd.DataFrame(rows).to_csv(tmp_path / "points.csv", index=False)
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "results=points.csv", "method=chinchilla", "bootstrap=0"]) == 0
    named = f"outputs/fit-chinchilla-{tmp_path.name}-points"  # by its input: two inputs never share a folder
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"report: {named}/report.html"
    assert (tmp_path / named / "report.html").exists()
    assert main(["fit", "results=points.csv", "method=chinchilla", "bootstrap=0", "out=mine"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "report: mine/report.html"


def test_the_progress_bar_shows_on_a_terminal_only(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stream)
        assert list(progress(range(3), "best: paths", "path")) == [0, 1, 2]
        assert ("best: paths" in stream.getvalue()) == shown


def test_counts_and_compute_are_formatted_and_computed_in_float():
    assert (display.count(13202396160), display.count(5000088518656), display.count(214080)) == ("13.2B", "5.0T", "214K")
    assert display.flops(float(display.compute(13202396160, 5000088518656))) == "4.0e23"
    assert display.compute(np.array([6887575552]), np.array([3945065873408]))[0] > 0


PROBE = """<script>window.__errors=[];['error','warn'].forEach(function(k){var o=console[k];console[k]=function(){
window.__errors.push(k+': '+Array.prototype.join.call(arguments,' '));o.apply(console,arguments);};});
window.addEventListener('error',function(e){window.__errors.push('error: '+(e.message||(e.target&&e.target.src)||'?'));},true);
window.addEventListener('load',function(){var im=document.images,ok=0;for(var i=0;i<im.length;i++){
if(im[i].complete&&im[i].naturalWidth>0)ok++;}var p=document.createElement('pre');p.id='probe';
p.textContent='images='+im.length+' loaded='+ok+' height='+document.body.scrollHeight+' errors='+JSON.stringify(window.__errors);
document.body.appendChild(p);});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)")
def test_report_html_renders_in_chromium_with_every_image_and_no_console_error(report, tmp_path):
    page = (report / "report.html").read_text()
    assert "src=\"figures/" not in page and "http" not in page.split("<body>", 1)[1]  # self-contained
    n_images = page.count("data:image/png;base64,")
    for b64 in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page):
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    images, loaded, height, errors = render(page, tmp_path)
    assert images == n_images >= 5 and loaded == n_images
    assert height > 1000 and errors == "[]"


def render(page: str, tmp_path):
    """(images, images loaded, page height, console errors) of `page` as headless Chromium renders it."""
    probed = tmp_path / "report.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
                          "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=120)
    probe = re.search(r'<pre id="probe">images=(\d+) loaded=(\d+) height=(\d+) errors=(.*?)</pre>', run.stdout)
    assert probe, run.stderr[-2000:]
    assert "CONSOLE" not in run.stderr
    images, loaded, height, errors = probe.groups()
    return int(images), int(loaded), int(height), errors


@pytest.fixture(scope="module")
def gadre_report(shared, tmp_path_factory):
    out = tmp_path_factory.mktemp("gadre") / "out"
    return run_fit(FitConfig(results=str(shared / "gadre-scaling"), dataset="rpj", method="gadre", bootstrap=20,
                             out=str(out)))


def test_gadre_report_reads_as_its_intervals_are_made(gadre_report):
    """Its bootstrap cannot refit the paper's 5-run law, so the intervals are its misses: no caption or detail
    says bootstrap band; targets by size and M, not run ids; the 10x-like extrapolation's warning beside its
    numbers."""
    md = (gadre_report / "report.md").read_text()
    figures_part = md.split("## Figures", 1)[1].split("## Fitted parameters", 1)[0]
    assert "bootstrap band" not in figures_part and "no band: the run bootstrap does not measure this fit" in figures_part
    assert "cannot measure this fit and is not used" in md.split("## Method details", 1)[1]
    assert "The parameters' intervals are the run bootstrap's, which cannot measure this fit" in md
    assert "**1.4B-M640**" in md and "**6.9B-M20**" in md and "6.9B-M20 is run rpj-open_lm_7b-1.0" in md
    answer = next(line for line in md.splitlines() if line.startswith("**6.9B-M20**"))
    assert "Its intervals are likely too narrow: it lies 4.78× beyond the largest fitted N" in answer
    # the warnings too (their reach warning named "target rpj-open_lm_7b-1.0"): the run id only where it is said
    assert "target 6.9B-M20 is 4.78× the largest fitted N" in md.split("## Warnings", 1)[1]
    assert md.count("rpj-open_lm_7b-1.0") == md.count("6.9B-M20 is run rpj-open_lm_7b-1.0")


def test_gadre_step2_panels_span_their_points_not_the_law_at_zero_loss(gadre_report, shared):
    """The error law at L = 0 runs to -400 points, which squashed the data; each panel's y range is its points'."""
    from fit.predict import method_named, predict
    cfg = FitConfig(results=str(shared / "gadre-scaling"), dataset="rpj", method="gadre", bootstrap=0)
    ps = load_points(cfg.results, dataset="rpj")
    targets = choose_targets(cfg, *apply_holdout(cfg, ps))
    out = predict(method_named("gadre"), ps, targets, cfg)
    preds = pd.DataFrame(out.predictions, columns=PRED_COLUMNS[:-1])
    figs = {name: fig for name, _, fig in figures(ps, targets, out, preds, 0.9)}
    for ax in (a for a in figs["step2"].axes if a.get_visible()):
        lo, hi = ax.get_ylim()
        assert 30 < lo < hi < 100, (ax.get_title(), lo, hi)  # top-1 error of these runs: 45-85 points
        assert ax.get_xlim()[0] > 1.5  # their losses: 2.4-6
    for fig in figs.values():
        plt.close(fig)


def test_a_method_table_wider_than_long_is_turned_so_the_page_holds_it():
    """best's weights, 13 paths for 8 tasks, overflowed the page as 14 columns; turned, a row per path."""
    from fit.present.report import _pretty_tasks
    paths = [f"set{i}:loss" for i in range(13)]
    weights = pd.DataFrame(np.full((8, 13), 100 / 13), columns=paths,
                           index=[f"{t}:acc" for t in ("mmlu", "hellaswag", "piqa", "csqa", "arc_easy", "arc_challenge",
                                                       "socialiqa", "openbookqa")])
    t = _pretty_tasks(weights.round(1).reset_index(names="task"))
    assert list(t.columns) == ["path through", "MMLU", "HellaSwag", "PIQA", "CommonsenseQA", "ARC-Easy",
                               "ARC-Challenge", "Social IQa", "OpenBookQA"]
    assert t["path through"].tolist() == [f"set{i} LM loss" for i in range(13)] and t.loc[0, "MMLU"] == "7.7"


def test_failed_refits_of_a_bootstrap_not_used_are_not_said_to_narrow_the_intervals():
    groups = dict((t, m) for t, m, _ in warning_groups([
        "gadre: 64% of 50 bootstrap refits failed; intervals rest on the rest",
        "gadre: its loss law ... interpolate: the bootstrap does not measure the fit. With calibrate ..."]))
    assert "narrow none of them" in groups["Bootstrap refits that failed"]
    alone = dict((t, m) for t, m, _ in warning_groups(["best: 6% of 200 bootstrap refits failed; intervals rest on the rest"]))
    assert "may be somewhat too narrow" in alone["Bootstrap refits that failed"]


def test_an_lm_sets_bits_per_byte_is_not_called_a_task_loss():
    """The smoke compare's decisions read "smoke_val task loss" for the held-out set's bpb."""
    assert display.named("smoke_val:bpb") == "smoke_val LM bits per byte"
    assert display.long_label("smoke_wiki_val:bpb") == "smoke_wiki_val LM bits per byte (bits/byte)"
    assert display.named("mmlu:bpb") == "MMLU task loss" and display.named("c4_en:loss") == "c4_en LM loss"


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)")
def test_a_wide_table_of_names_wraps_its_names_not_the_page(tmp_path):
    """The smoke compare's decision table (ten columns, names like "one law over all variants") ran past a 1280-px
    page, its last columns seen only by scrolling: headers and names wrap, a row's name and numbers do not."""
    from fit.present.report import html_page, html_table
    row = {"Target": "smoke-48-M10", "Metric": "smoke_wiki_val LM bits per byte", "Fitted by": "one law over all "
           "variants", "Winner": "smoke_wiki", "over": "smoke", "by [interval]": "0.177 [-0.035, 0.386]",
           "P(winner better)": "0.92", "compute multiplier": "over 10,000× [2.77e+03×, over 10,000×]",
           "with scale": "same order", "measured advantage": "0.232"}
    page = html_page("t", [html_table(pd.DataFrame([row] * 3))]).replace("</body>", """<script>
      var w=document.querySelector('div.wide'),p=document.createElement('pre');
      p.id='probe';p.textContent='over='+(w.scrollWidth-w.clientWidth);
      document.body.appendChild(p);</script></body>""")
    (tmp_path / "t.html").write_text(page)
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000", "--dump-dom",
                          (tmp_path / "t.html").as_uri()], capture_output=True, text=True, timeout=120)
    probe = re.search(r'<pre id="probe">over=(-?\d+)</pre>', run.stdout)
    assert probe, run.stderr[-2000:]
    assert int(probe[1]) <= 0  # no column past the page


def _touches(box, centre, radius_pt, dpi):
    gap = np.hypot(max(box.x0 - centre[0], 0, centre[0] - box.x1), max(box.y0 - centre[1], 0, centre[1] - box.y1))
    return gap < radius_pt * dpi / 72


@pytest.mark.parametrize("case", ["smoke", "gadre"])
def test_a_name_covers_no_other_targets_star_or_circle(case):
    """make smoke's step-2 panel (M5's name over M10's star) and the Gadre report's (6.9B-M20's name beside 1.4B's
    measured circle): no name's box comes within a star's (5.5 points) or a circle's (about 5) reach of another
    target's marker."""
    from fit.present.figures import MEASURED, label_targets
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    if case == "smoke":
        grid = np.linspace(-0.2, 3.3, 50)
        ax.plot(grid, 24 + 76 / (1 + np.exp(2.4 * (grid - 1.74))), "r-")
        x, y = np.array([1.701, 1.999, 2.169, 2.354]), np.array([63.1, 49.5, 42.6, 36.6])
        cx, cy = np.array([np.nan, 1.987, 2.132, 2.324]), np.array([np.nan, 40.0, 39.5, 35.5])
        names = ["smoke-96-M20", "smoke-64-smoke-M20", "smoke-64-smoke-M10", "smoke-64-smoke-M5"]
        ax.set_xlim(-0.25, 3.4)
    else:
        grid = np.linspace(2.1, 6.4, 50)
        ax.plot(grid, 76 - 60 * np.exp(-1.0 * (grid - 2.0)), "r-")
        ax.scatter(np.linspace(2.8, 6.1, 30), 76 - 60 * np.exp(-1.0 * (np.linspace(2.8, 6.1, 30) - 2.0)), s=6)
        x, y = np.array([2.52, 2.44]), np.array([62.1, 61.1])
        cx, cy = np.array([2.52, 2.43]), np.array([60.0, 59.8])
        names = ["1.4B-M640", "6.9B-M20"]
        ax.set_xlim(2.1, 6.4)
        ax.set_ylim(58, 77)
    ax.plot(x, y, "k*", ms=11, zorder=6, gid="target")  # as the step figures draw them (figures.STAR)
    ax.scatter(cx, cy, **MEASURED)
    fig.tight_layout()
    label_targets(ax, x, y, names)
    fig.canvas.draw()
    stars = ax.transData.transform(np.column_stack([x, y]))
    circles = ax.transData.transform(np.column_stack([cx, cy]))
    for text in ax.texts:
        # the name's own box (an annotation's extent takes in its leader line too, which may pass a marker)
        box, i = Text.get_window_extent(text), names.index(text.get_text())
        for j in range(len(names)):
            if j != i:
                assert not _touches(box, stars[j], 5.5, fig.dpi), (text.get_text(), "star", names[j])
                assert not (np.isfinite(circles[j]).all() and _touches(box, circles[j], 5, fig.dpi)), \
                    (text.get_text(), "circle", names[j])
        if text.arrow_patch is not None:  # nor does a leader line pass over another target's star
            start = stars[i]
            d = np.asarray(text.xyann, float) * fig.dpi / 72
            for j in (j for j in range(len(names)) if j != i):
                t = np.clip((stars[j] - start) @ d / (d @ d), 0, 1)
                assert np.hypot(*(stars[j] - start - t * d)) >= 5.5 * fig.dpi / 72, (text.get_text(), names[j])
    plt.close(fig)


def test_step2_frames_the_runs_not_the_sigmoids_anchor_at_zero_loss(tmp_path, write_ladder):
    """olmo_two_step fits its sigmoid with a (0, 1) point in every resample: the panel's x axis spans the runs'
    losses and the targets, not L = 0, and the caption says the anchor is fitted outside the view."""
    from fit.registry import METHODS
    ps = load_points(str(write_ladder(tmp_path)))
    fit_ps, held = apply_holdout(FitConfig(holdout="largest"), ps)
    targets = choose_targets(FitConfig(), fit_ps, held)
    out = METHODS["olmo_two_step"](fit_ps, targets, FitConfig(bootstrap=0))
    preds = pd.DataFrame(out.predictions)
    preds["actual"] = np.nan
    drawn = {name: (caption, fig) for name, caption, fig in figures(ps, targets, out, preds, 0.9)}
    caption, fig = drawn["step2"]
    fed = [f for f in out.steps.values() if f.step.fed_by is not None]
    assert any((f.step.points.run < 0).any() for f in fed)
    lowest = min(f.step.points.X[0][f.step.points.run >= 0].min() for f in fed)
    for ax in (a for a in fig.axes if a.get_visible()):
        lo, hi = ax.get_xlim()
        assert lo > 0.5 * lowest, (ax.get_title(), lo, lowest)
    assert "anchor at zero loss and full accuracy is fitted too, outside the view" in caption
    for _, f in drawn.values():
        plt.close(f)
