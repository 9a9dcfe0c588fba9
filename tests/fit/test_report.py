"""The report: the answer first, readable small-multiples figures with the held-out runs' measured
points, and a report.html that renders in a real browser (headless Chromium) with every image loaded
and no console error."""
import base64
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fit.config import FitConfig
from fit.sources import load_points
from fit.report import _figures, answer_table
from fit.run import run_fit

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory, write_ladder):
    root = tmp_path_factory.mktemp("report")
    out = run_fit(FitConfig(results=str(write_ladder(root)), method="olmo_two_step", holdout="largest", bootstrap=30,
                            out=str(root / "out")))
    return out


def test_the_report_opens_with_the_answer_table(report):
    md = (report / "report.md").read_text()
    heads = re.findall(r"^## (.+)$", md, flags=re.M)
    assert heads[:3] == ["Predictions", "Backtest (held-out runs)", "Warnings"] and heads[-1] == "Method details"
    first = md.split("## Predictions", 1)[1].split("##", 1)[0]
    assert "Method `olmo_two_step` fitted on 9 runs of 3 sizes predicts 3 target(s)" in first
    assert "Mean width of the 90% intervals: acc" in first
    for m in (5, 10, 20):
        assert f"smoke-64-smoke-M{m} measured" in first


def test_answer_table_has_one_row_per_metric_and_intervals_in_points():
    preds = pd.DataFrame([
        {"target": "A", "metric": "mmlu:acc", "predicted": 0.5, "lower": 0.45, "upper": 0.55, "actual": 0.52},
        {"target": "B", "metric": "mmlu:acc", "predicted": 0.6, "lower": np.nan, "upper": np.nan, "actual": np.nan},
        {"target": "A", "metric": "c4:loss", "predicted": 2.5, "lower": 2.4, "upper": 2.6, "actual": np.nan}])
    t = answer_table(preds).set_index("metric")
    assert list(t.columns) == ["A", "A measured", "B"]
    assert t.loc["mmlu:acc", "A"] == "50 [45, 55]" and t.loc["mmlu:acc", "A measured"] == "52"
    assert t.loc["mmlu:acc", "B"] == "60" and t.loc["c4:loss", "A"] == "2.5 [2.4, 2.6]"


def test_figures_are_small_multiples_at_150_dpi_with_measured_held_out_points(report):
    pngs = {p.stem: p for p in (report / "figures").glob("*.png")}
    assert {"loss_vs_compute", "step1", "step2", "predicted_vs_actual", "residuals"} <= set(pngs)
    for p in pngs.values():
        assert Image.open(p).info["dpi"][0] == pytest.approx(150, abs=1)
    assert Image.open(pngs["step1"]).size[0] >= 600


@pytest.mark.parametrize("method", ["olmo_two_step", "best"])
def test_step_figures_draw_the_measured_targets(tmp_path, write_ladder, method):
    from fit.registry import METHODS
    from fit.run import apply_holdout, choose_targets
    ps = load_points(str(write_ladder(tmp_path)))
    fit_ps, held = apply_holdout(FitConfig(holdout="largest"), ps)
    targets = choose_targets(FitConfig(), fit_ps, held)
    out = METHODS[method](fit_ps, targets, FitConfig(bootstrap=10))
    preds = pd.DataFrame(out.predictions)
    from fit.targets import actual_value
    preds["actual"] = [actual_value(ps, next(t for t in targets if t.name == r.target), r.metric, 1)
                       for r in preds.itertuples()]
    figs = {name: fig for name, _, fig in _figures(ps, targets, out, preds, 0.9)}
    for name in ("step1", "step2"):
        labels = {t.get_text() for t in figs[name].legends[0].texts}
        assert {"predicted target", "measured target"} <= labels, name
    assert "90% bootstrap band" in {t.get_text() for t in figs["step2"].legends[0].texts}
    if method == "best":  # each task's top path, captioned with its weight
        titles = [ax.get_title() for ax in figs["step2"].axes if ax.get_visible()]
        assert titles and all("top path" in t for t in titles), titles


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
    probed = tmp_path / "report.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
                          "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=120)
    probe = re.search(r'<pre id="probe">images=(\d+) loaded=(\d+) height=(\d+) errors=(.*?)</pre>', run.stdout)
    assert probe, run.stderr[-2000:]
    images, loaded, height, errors = probe.groups()
    assert int(images) == n_images >= 5 and int(loaded) == n_images
    assert int(height) > 1000 and errors == "[]"
    assert "CONSOLE" not in run.stderr
