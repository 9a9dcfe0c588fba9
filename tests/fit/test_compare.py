"""`ladder compare`: variants told apart by a CSV `variant` column, by a ladder's datasets or by their folders,
fitted by one method; the decision (winner, paired difference, P, compute multiplier, crossing), the decision
backtests, compare.csv/json and a report that renders in headless Chromium; bad input as one line."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from fit.compare import common_targets, compare, crossing, difference, load_variants, model_sd, paired_sd
from fit.present.compare_report import run_compare
from fit.config import CompareConfig, FitConfig
from fit.errors import FitInputError
from fit.registry import METHODS
from tests.fit.test_report import CHROMIUM, render

SIZES = (2e7, 4e7, 8e7, 1.6e8, 3.2e8)
MULTS = (10, 20, 40)


def loss(n, d, shift=0.0, alpha=0.34):
    return 1.8 + shift + 400 / n ** alpha + 410 / d ** 0.28


def rows(variant, shift=0.0, alpha=0.34, sizes=SIZES, noise=0.002, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i, n in enumerate(sizes):
        for m in MULTS:
            lv = loss(n, n * m, shift, alpha) * (1 + noise * rng.standard_normal())
            out.append({"variant": variant, "run": f"{variant}-{n:.0e}-{m}", "size": f"s{i}", "params": n, "tokens": n * m,
                        "c4:loss": lv, "task:acc": 0.25 + 0.75 / (1 + np.exp(3 * (lv - 3.2))), "task:chance": 0.25})
    return out


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    path = tmp_path_factory.mktemp("cmp") / "points.csv"
    pd.DataFrame(rows("base") + rows("worse", shift=0.06, seed=1)).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def report(points, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp-out")
    return run_compare(CompareConfig(results=str(points), out=str(out)),
                       FitConfig(method="chinchilla", bootstrap=100, targets=[{"name": "big", "params": 1.3e9,
                                                                              "tokens": 2.6e10}]))


def test_the_better_variant_wins_with_a_paired_difference_p_and_a_compute_multiplier(report):
    d = pd.read_csv(report / "compare.csv")
    r = d[d["metric"] == "c4:loss"].iloc[0]
    assert (r["a"], r["b"], r["winner"]) == ("base", "worse", "base")
    assert r["difference"] == pytest.approx(r["predicted_a"] - r["predicted_b"])
    assert r["difference_lower"] < r["difference"] < r["difference_upper"] < 0  # sure of the order
    assert r["p_winner"] > 0.9
    # the worse variant's own law reaches the better's loss only with several times the compute
    assert 1.5 < r["multiplier_lower"] <= r["compute_multiplier"] <= r["multiplier_upper"]
    assert not r["changes_with_scale"]


def test_decision_backtests_score_the_law_against_the_single_scale_rule(report):
    data = json.loads((report / "compare.json").read_text())
    assert data["variants"] == ["base", "worse"] and data["paired"] is True
    held = {round(b["held_size"]) for b in data["backtests"]}
    # each size with two smaller ones: the joint law (the default for losses) shares its shape over the variants
    assert held == {80000000, 160000000, 320000000}
    summary = {s["metrics"]: s for s in data["backtest_summary"]}
    assert summary["all"]["decisions"] == len(data["backtests"]) == 9
    assert summary["all"]["law_accuracy"] == 1.0 and summary["all"]["baseline_accuracy"] == 1.0
    md = (report / "report.md").read_text()
    assert "The law did not beat the single-scale baseline" in md  # a tie is not a win, and the report says so
    # one pair: its names head the columns, no "pair" column repeating "base vs worse" in every row
    table = md.split("### Every backtest decision", 1)[1].split("## Warnings", 1)[0]
    head = [c.strip() for c in table.strip().splitlines()[0].split("|")]
    assert "P(base better)" in head and "difference base − worse [interval]" in head, head
    assert "pair" not in head and "base vs worse" not in table


def test_the_report_answers_first_with_one_figure_per_metric(report):
    md = (report / "report.md").read_text()
    assert re.findall(r"^## (.+)$", md, flags=re.M) == ["Decisions", "Figures", "Decision backtests", "Warnings"]
    assert re.search(r"^- big c4 LM loss: base better than worse by [\d.]+ \[[\d.]+, [\d.]+\] \(90% interval\), "
                     r"P = [\d.]+; worse needs [\d.]+× \[[\d.]+×, [\d.]+×\] the compute$", md, re.M)
    assert sorted(p.name for p in (report / "figures").glob("*.png")) == ["compare_c4_loss.png"]


def test_a_crossing_between_the_ladder_and_the_target_flags_the_decision():
    """Curves that cross: the steeper variant is worse on the ladder and better at the target."""
    C = np.geomspace(1e17, 1e22, 12)
    curve = pd.DataFrame([{"variant": v, "target": "T", "C": c, "metric": "x:loss", "predicted": y}
                          for v, ys in (("a", 3 - 0.1 * np.log10(C / 1e17)), ("b", 3.2 - 0.2 * np.log10(C / 1e17)))
                          for c, y in zip(C, ys)])
    got = crossing(curve, "T", "x:loss", "a", "b")
    assert got["changes_with_scale"] and got["crossing_C"] == pytest.approx(1e19, rel=0.01)
    assert not crossing(curve[curve["C"] < 5e18], "T", "x:loss", "a", "b")["changes_with_scale"]


def test_the_difference_adds_the_model_error_to_the_paired_samples():
    sa, sb = np.full(200, 1.0), np.full(200, 1.5)
    lo, hi, above, _ = difference(sa, sb, -0.5, 0.0, 0.9, 0)
    assert (lo, hi, above) == (-0.5, -0.5, 0.0)
    lo, hi, above, draws = difference(sa, sb, -0.5, 0.5, 0.9, 0)
    assert lo == pytest.approx(-0.5 - 1.645 * 0.5, abs=0.05) and hi == pytest.approx(-0.5 + 1.645 * 0.5, abs=0.05)
    assert above == pytest.approx(0.1587, abs=1e-3)  # Φ(−1)
    # each draw is its resample's difference plus its model error (the draws the compute multiplier is solved on)
    assert np.allclose(draws.values, (sa - sb)[draws.resample] + draws.error)


def test_the_multiplier_and_the_difference_give_one_answer(tmp_path):
    """A bend of one variant's law that the run bootstrap cannot see, the other variant about as good at the target:
    its model error widens the difference's interval across 0, and the compute multiplier's interval, solved on
    the same draws, spans 1× with it (was the bootstrap's alone: [1.20×, 1.81×] beside a difference of
    [-0.079, 0.15], as Gadre et al.'s C4 vs RedPajama read 1.85× [1.55×, 2.48×] beside [-0.181, 0.337])."""
    df = pd.DataFrame(rows("base", noise=5e-4) + rows("worse", shift=0.18, noise=5e-4, seed=1))
    bent = df["variant"] == "base"
    df.loc[bent, "c4:loss"] *= 1 + 0.01 * np.log(df.loc[bent, "params"] / SIZES[0]) ** 2
    path = tmp_path / "bent.csv"
    df.drop(columns=["task:acc", "task:chance"]).to_csv(path, index=False)
    variants = load_variants(str(path))
    cfg = FitConfig(method="chinchilla", bootstrap=20, targets=[{"name": "big", "params": 1.3e9, "tokens": 2.6e10}])
    comp = compare(variants, common_targets(cfg, variants), cfg, METHODS["chinchilla"], curves=False, joint=True)
    r = comp.decisions.iloc[0]
    assert r.difference_lower < 0 < r.difference_upper and 0.5 < r.p_winner < 0.9  # the difference may be 0
    assert r.multiplier_lower < 1 < r.compute_multiplier < r.multiplier_upper


def test_laws_that_miss_alike_give_the_difference_the_paired_misses_sd(tmp_path):
    """A bend the law cannot follow, the same in both variants: each misses its backtests by it, their difference
    hardly at all, so the difference's model error is sized by the paired misses, not the two RMS as independent."""
    df = pd.DataFrame(rows("base", noise=5e-4) + rows("worse", shift=0.06, noise=5e-4, seed=1))
    df["c4:loss"] *= 1 + 0.02 * np.log(df["params"] / SIZES[0]) ** 2
    path = tmp_path / "bent.csv"
    df.drop(columns=["task:acc", "task:chance"]).to_csv(path, index=False)
    variants = load_variants(str(path))
    cfg = FitConfig(method="chinchilla", bootstrap=20, targets=[{"name": "big", "params": 1.3e9, "tokens": 2.6e10}])
    comp = compare(variants, common_targets(cfg, variants), cfg, METHODS["chinchilla"], curves=False)
    oa, ob = comp.outputs["base"], comp.outputs["worse"]
    assert len(oa.misses) == len(ob.misses) > 0  # the same backtests at the same cells
    r = comp.decisions.iloc[0]
    independent = np.hypot(model_sd(oa, "c4:loss", r.predicted_a), model_sd(ob, "c4:loss", r.predicted_b))
    paired = paired_sd(oa, ob, "c4:loss", r.predicted_a, r.predicted_b)
    assert 0 < paired < 0.3 * independent
    assert r.difference_upper - r.difference_lower < 2 * 1.645 * independent  # the interval uses the paired one


def test_variants_from_several_sources_and_a_ladders_datasets(tmp_path, write_ladder):
    a, b = write_ladder(tmp_path / "wiki"), write_ladder(tmp_path / "mix")
    variants = load_variants([str(a), str(b)])
    assert [v.name for v in variants] == ["wiki", "mix"]
    for f in (tmp_path / "mix").glob("rungs/*/results.jsonl"):  # one out_dir holding both datasets
        recs = [json.loads(x) for x in f.read_text().splitlines()]
        (tmp_path / "wiki" / "rungs" / (f.parent.name + "-mix")).mkdir()
        (tmp_path / "wiki" / "rungs" / (f.parent.name + "-mix") / "results.jsonl").write_text("\n".join(
            json.dumps({**r, "run": r["run"] + "-mix", "dataset": "mix"}) for r in recs) + "\n")
    assert [v.name for v in load_variants(str(a))] == ["mix", "smoke"]


def test_bad_input_is_one_line(points, tmp_path):
    one = tmp_path / "one.csv"
    pd.DataFrame(rows("base")).to_csv(one, index=False)
    with pytest.raises(FitInputError, match=r"^compare: 1 variant \(base\) .*compare needs two or more"):
        load_variants(str(one))
    with pytest.raises(FitInputError, match=r"no variant 'nope' \(the data has base, worse\)"):
        load_variants(str(points), names=["nope"])
    small = tmp_path / "mismatch.csv"  # the other variant's sizes are 5 % larger under the same names
    pd.DataFrame(rows("base") + rows("other", sizes=[s * 1.05 for s in SIZES])).to_csv(small, index=False)
    variants = load_variants(str(small))
    with pytest.raises(FitInputError, match=r"^targets: s4-20 is N=3.2e\+08, D=6.4e\+09 in variant base but "
                                            r"N=3.36e\+08, D=6.72e\+09 in other: the variants' ladders differ there"):
        common_targets(FitConfig(targets=["s4-20"]), variants)
    apart = tmp_path / "apart.csv"  # no metric in common
    df = pd.DataFrame(rows("base") + rows("other"))
    df.loc[df["variant"] == "other", "c4:loss"] = np.nan
    df.loc[df["variant"] == "base", "task:acc"] = np.nan
    df.drop(columns="task:chance").rename(columns={"task:acc": "other:loss"}).to_csv(apart, index=False)
    with pytest.raises(FitInputError, match=r"^compare: the variants have no predicted metric in common"):
        run_compare(CompareConfig(results=str(apart), out=str(tmp_path / "o"), backtest=False),
                    FitConfig(method="chinchilla", bootstrap=0, targets=[{"name": "big", "params": 1e9, "tokens": 2e10}]))


def test_the_cli_compares_and_refuses_bad_input_in_one_line(points, tmp_path, capsys):
    from ladder.orchestration.cli import main
    assert main(["compare", f"results={points}", "method=chinchilla", "bootstrap=20", "backtest=false",
                 "targets=[{name: big, params: 1.3e9, tokens: 2.6e10}]", f"out={tmp_path / 'o'}"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"report: {tmp_path / 'o' / 'report.html'}" and out[0].startswith("big c4 LM loss: base better")
    assert main(["compare", f"results={points}", "variants=[base]", f"out={tmp_path / 'p'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ladder compare: error: compare: 1 variant (base)")


def test_a_source_compared_with_a_copy_of_itself_is_refused(tmp_path, capsys):
    """The same runs under another name (a copied folder, say; issue 40 item 4): refused in one line, never
    "predicted equal" with a compute multiplier of 0.001×."""
    from ladder.orchestration.cli import main
    twins = tmp_path / "twins.csv"
    pd.DataFrame(rows("base") + rows("copy")).to_csv(twins, index=False)
    for joint in ("true", "false"):
        assert main(["compare", f"results={twins}", "method=chinchilla", "bootstrap=0", "backtest=false", f"joint={joint}",
                     "targets=[{name: big, params: 1.3e9, tokens: 2.6e10}]", f"out={tmp_path / 'o'}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["ladder compare: error: compare: variants base and copy hold identical points (the same runs, "
                       "the same values: a copy?); there is nothing to compare between them"]


def test_decision_backtests_find_the_sizes_of_a_small_ladder(tmp_path):
    """N like the smoke ladder's (14,336 …), which rounding to thousands once lost: no backtest was built."""
    from fit.compare import decision_backtests
    small = tuple(14336.0 * 2 ** k for k in range(5))
    path = tmp_path / "small.csv"
    pd.DataFrame(rows("base", sizes=small) + rows("worse", shift=0.06, sizes=small, seed=1)).to_csv(path, index=False)
    held = decision_backtests(load_variants(str(path)), FitConfig(method="chinchilla", bootstrap=0),
                              METHODS["chinchilla"])
    assert sorted(held["held_size"].unique()) == [115000.0, 229000.0]
    assert set(held["measured_winner"]) == {"base"}


def test_one_source_given_twice_is_refused(points):
    with pytest.raises(FitInputError, match=r"^compare: results names .*points.csv.* twice; give each source once"):
        load_variants([str(points), str(points)])


def test_without_resamples_the_backtests_leave_p_and_brier_blank_never_nan(points, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        run_compare(CompareConfig(results=str(points), out=str(tmp_path / "o")),
                    FitConfig(method="chinchilla", bootstrap=0,
                              targets=[{"name": "big", "params": 1.3e9, "tokens": 2.6e10}]))
    text = (tmp_path / "o" / "report.md").read_text()
    assert "nan" not in text.lower() and "no P(better), Brier score or interval coverage without bootstrap" in text
    # a line per stage, as `ladder fit` says them (piped, the Gadre compare said nothing for minutes)
    said = [r.getMessage() for r in caplog.records]
    stages = ["reading ", "read 2 variants (base, worse)", "fitting chinchilla to each variant", "decision backtests",
              "writing the report"]
    at = [next((i for i, m in enumerate(said) if m.startswith(s)), None) for s in stages]
    assert None not in at and at == sorted(at), said


def test_every_prediction_is_the_methods_own_on_that_variant(points):
    """Compare changes no prediction: each variant's is what the method predicts on that variant alone."""
    variants = load_variants(str(points))
    cfg = FitConfig(method="chinchilla", bootstrap=0, targets=[{"name": "big", "params": 1.3e9, "tokens": 2.6e10}])
    targets = common_targets(cfg, variants)
    comp = compare(variants, targets, cfg, METHODS["chinchilla"], curves=False)
    for v in variants:
        alone = METHODS["chinchilla"](v.ps, targets, cfg)
        assert [p["predicted"] for p in comp.outputs[v.name].predictions] == pytest.approx(
            [p["predicted"] for p in alone.predictions], rel=1e-6)  # the runs in (N, D) order: a sum reordered


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)")
def test_compare_report_renders_in_chromium_with_every_image_and_no_console_error(report, tmp_path):
    page = (report / "report.html").read_text()
    assert "http" not in page.split("<body>", 1)[1]
    images, loaded, height, errors = render(page, tmp_path)
    assert images == loaded == page.count("data:image/png;base64,") == 1
    assert height > 800 and errors == "[]"


@pytest.mark.slow
def test_gadre_c4_against_redpajama_at_the_papers_targets(shared, tmp_path):
    out = run_compare(CompareConfig(results=str(shared / "gadre-scaling"), out=str(tmp_path)),
                      FitConfig(targets=["1.4B-640", "6.9B-20"], bootstrap=100))
    d = pd.read_csv(out / "compare.csv")
    assert len(d) == 16  # the joint law compares every validation loss, 8 of them, at both targets
    d = d[d["metric"] == "c4_val:loss"].set_index("target")
    assert list(d["winner"]) == ["c4_original", "c4_original"]  # C4-trained models on the C4 eval loss
    assert d.loc["6.9B-20", "measured_difference"] < 0
    assert d.loc["6.9B-20", "difference_lower"] < d.loc["6.9B-20", "measured_difference"] < d.loc["6.9B-20", "difference_upper"]
    assert json.loads((out / "compare.json").read_text())["backtest_summary"]


def test_the_compare_figure_tells_the_variants_apart_by_colour_and_place(points):
    """Each variant's stars, measured circles, points and laws in its own colour, the legend naming the variants,
    and the two variants' stars at one target side by side (they were one blob at the figure's right edge)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex
    from fit.present.compare_report import metric_figure
    TARGET_GID = "target"  # what marks a target's star and circle (fit.present.figures.TARGET_GID)

    variants = load_variants(str(points))
    cfg = FitConfig(method="chinchilla", bootstrap=0)
    comp = compare(variants, common_targets(cfg, variants), cfg, METHODS["chinchilla"])
    fig = metric_figure(comp, "c4:loss", 0.9)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().texts]
    assert legend[:2] == ["base", "worse"] and "measured target" in legend
    colour = {t.get_text(): to_hex(h.get_color()) for t, h in zip(ax.get_legend().texts, ax.get_legend().legend_handles)
              if t.get_text() in ("base", "worse")}
    assert len(set(colour.values())) == 2
    stars = [ln for ln in ax.lines if ln.get_gid() == TARGET_GID and ln.get_marker() == "*"]
    circles = [c for c in ax.collections if c.get_gid() == TARGET_GID and len(c.get_offsets())]
    assert sorted(to_hex(s.get_color()) for s in stars) == sorted(colour.values())
    assert sorted(to_hex(c.get_edgecolor()[0]) for c in circles) == sorted(colour.values())
    laws = {to_hex(ln.get_color()) for ln in ax.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())}
    assert laws == set(colour.values())
    a, b = (ax.transData.transform(s.get_xydata()) for s in stars)
    assert len(a) == len(b) == 3  # the three targets (the largest size at each M)
    assert (np.abs(a[:, 0] - b[:, 0]) >= 10 * fig.dpi / 72).all()  # a star (ms=12) apart
    plt.close(fig)


def test_two_targets_close_in_compute_keep_their_variants_stars_together():
    """The Gadre compare: 1.4B-M640 and 6.9B-M20 are 1.3× apart in C, so the variants' stars interleaved (c4's
    6.9B star beside rpj's 1.4B star). Each target's stars now stand together, a star apart, in the targets' order."""
    import matplotlib.pyplot as plt
    from fit.present.figures import SPREAD, side_by_side

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.set_xscale("log")
    ax.set_xlim(1e15, 3e22)
    C = np.array([[4.6e21, 4.6e21], [5.8e21, 5.8e21]])  # (targets, variants)
    x = np.log10(side_by_side(ax, C))
    step = SPREAD * np.log10(3e22 / 1e15)
    assert np.allclose(np.diff(x, axis=1), step)  # a target's variants a star apart
    assert x[1].min() - x[0].max() >= step  # the next target's stars all beyond the first's
    assert np.mean(x) == pytest.approx(np.mean(np.log10(C)))  # the groups as a whole where the targets are
    far = np.log10(side_by_side(ax, np.array([[1e17, 1e17], [1e21, 1e21]])))
    assert np.allclose(far.mean(axis=1), [17, 21])  # targets far apart are not moved
    plt.close(fig)
