"""`ladder compare` on the ablations of issue 32: one law over all variants (fit/joint.py) where each variant has
3 sizes and the variants' N differ; variants that share no cell; compare never silent (warnings on the terminal,
a crossing that cannot be computed said, an empty variant cell named, a fit that did not read the data refused)."""
import numpy as np
import pandas as pd
import pytest

from fit import joint
from fit.compare import compare, crossing, decision_backtests, load_variants
from fit.config import FitConfig
from fit.errors import FitInputError
from fit.registry import METHODS
from ladder.core.plan import Target
from scripts.backtest_compare import M, NEXT, ablation, baseline, scored
from tests.fit.test_compare import SIZES, rows

NOISE = 5e-4  # the OLMo ladder's seed spread (scripts/backtest_compare.py seed_spread: 0.05 %)
TARGET = "targets=[{name: next, params: 3e8, tokens: 2.4e10}]"


@pytest.fixture(scope="module")
def ablation_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("abl") / "ablation.csv"
    pd.DataFrame(ablation(0, NOISE)[0]).to_csv(path, index=False)
    return path


def test_a_nine_variant_three_size_ablation_whose_n_differ_is_answered(ablation_csv, tmp_path, capsys):
    """Issue 32 case 1: every method refused 3 runs; the joint law answers all 36 pairs, says its form and its
    exponent test in one sentence, and backtests by size rank; each variant by the method alone answers too, through
    the law sized to its runs (fit.sizing)."""
    from ladder.orchestration.cli import main
    assert main(["compare", f"results={ablation_csv}", "bootstrap=40", TARGET, f"out={tmp_path / 'o'}"]) == 0
    out = capsys.readouterr().out
    d = pd.read_csv(tmp_path / "o" / "compare.csv")
    assert len(d) == 36 and set(d["metric"]) == {"c4:loss"} and d["p_winner"].between(0.5, 1).all()
    assert "note: c4:loss: one law over the 9 variants, L_v(C) = " in out
    assert any(s in out for s in ("exponents shared: the variants' own exponents (gamma) do not differ detectably",
                                  "exponents per variant: the variants' own exponents (gamma) differ"))
    assert "(F-test of the nested fits, p = " in out
    assert "note: decision backtests: sizes paired by rank (the k-th size of each variant)" in out
    # the same with each variant fitted by the method alone: once a refusal (3 runs for a 5-parameter law), now
    # answered through the law its 3 runs identify, which it says
    assert main(["compare", f"results={ablation_csv}", "bootstrap=0", "joint=false", "backtest=false", TARGET,
                 f"out={tmp_path / 'p'}"]) == 0
    assert "warning: Laws reduced to the data" in capsys.readouterr().out


def test_on_its_synthetic_truth_the_joint_law_orders_pairs_better_than_the_single_scale_rule(tmp_path):
    cfg = FitConfig(bootstrap=0, targets=[{"name": "next", "params": NEXT, "tokens": M * NEXT}])
    law, rule = [], []
    for seed in range(3):
        data, truth = ablation(seed, NOISE)
        path = tmp_path / f"a{seed}.csv"
        pd.DataFrame(data).to_csv(path, index=False)
        variants = load_variants(str(path))
        comp = compare(variants, [Target("next", NEXT, M * NEXT)], cfg, METHODS["chinchilla"], curves=False,
                       joint=True)
        d = scored(comp, lambda r: truth[r.a] - truth[r.b], "c4:loss")
        law += list(d["right"])
        rule += list(baseline(variants, {v.name: list(v.ps.points["run"].unique()) for v in variants}, d, "c4:loss"))
    assert len(law) == 108 and np.mean(law) > np.mean(rule) + 0.03


def _loss_data(alphas, scales, sizes=(1e7, 3e7, 1e8, 3e8), noise=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i, (a, s) in enumerate(zip(alphas, scales)):
        for n in sizes:
            X.append([n, 20 * n, i])
            y.append((1.7 + s * (6 * n * 20 * n) ** -a) * (1 + noise * rng.standard_normal()))
    X = np.array(X).T
    names = tuple(f"v{i}" for i in range(len(alphas)))
    return joint.Data("x:loss", names, X, np.array(y), [(names[int(i)], f"r{k}") for k, i in enumerate(X[2])])


def test_the_exponent_test_keeps_shared_exponents_unless_the_variants_differ():
    same = _loss_data([0.1] * 4, [60, 70, 80, 90])
    fit, said = joint.exponent_test(same, joint.choose_form(same)[0])
    assert said.startswith("exponents shared: the variants' own exponents (gamma) do not differ detectably")
    assert float(said.rsplit("p = ", 1)[1].rstrip(")")) > 0.05 and fit.design.own == ("c",)
    apart = _loss_data([0.08, 0.1, 0.12, 0.14], [30, 70, 160, 400])
    fit, said = joint.exponent_test(apart, joint.choose_form(apart)[0])
    assert said.startswith("exponents per variant") and "gamma" in fit.design.own


def test_one_size_per_variant_is_refused_naming_what_to_add():
    one = _loss_data([0.1, 0.1], [60, 70], sizes=(1e8,))
    with pytest.raises(FitInputError, match="no scaling law is identified: add runs at a second size"):
        joint.choose_form(one)


def test_variants_that_share_no_cell_are_fitted_on_their_own_runs_and_backtested_by_size_rank(tmp_path):
    """Issue 32 case 2: the other variant's N are 15 % larger at every size (an architecture change)."""
    path = tmp_path / "apart.csv"
    pd.DataFrame(rows("base") + rows("wide", shift=0.06, sizes=[s * 1.15 for s in SIZES], seed=1)).to_csv(path,
                                                                                                      index=False)
    variants = load_variants(str(path))
    cfg = FitConfig(method="chinchilla", bootstrap=0, targets=[{"name": "big", "params": 1.3e9, "tokens": 2.6e10}])
    for j in (False, True):
        comp = compare(variants, [Target("big", 1.3e9, 2.6e10)], cfg, METHODS["chinchilla"], joint=j)
        r = comp.decisions[comp.decisions["metric"] == "c4:loss"].iloc[0]
        assert r["winner"] == "base" and r["crossing_note"] == ""
        held = decision_backtests(variants, cfg, METHODS["chinchilla"], joint=j)
        assert held.attrs["pairing"].startswith("sizes paired by rank (the k-th size of each variant)")
        loss = held[held["metric"] == "c4:loss"]
        # each variant's own k-th size: the wider one's larger N can make up for its worse law, and the law says so
        assert len(loss) == (9 if j else 6) and (loss["winner"] == loss["measured_winner"]).all()


def test_a_crossing_that_cannot_be_computed_says_why():
    curve = pd.DataFrame(columns=["variant", "target", "C", "metric", "predicted"])
    got = crossing(curve, "T", "x:loss", "a", "b", {"b": "chinchilla: 3 run(s) for a law with 5 parameters"})
    assert got["crossing_note"] == "crossing not computed (b's curve: chinchilla: 3 run(s) for a law with 5 parameters)"
    assert not got["changes_with_scale"] and np.isnan(got["crossing_C"])


def test_rows_with_an_empty_variant_cell_are_named_not_dropped(tmp_path):
    df = pd.DataFrame(rows("base") + rows("worse", shift=0.06, seed=1))
    df.loc[[3, 7], "variant"] = np.nan
    path = tmp_path / "blank.csv"
    df.to_csv(path, index=False)
    with pytest.raises(FitInputError, match=r"blank.csv: 2 of 30 row\(s\) have an empty 'variant' cell \(line\(s\) 5, "
                                            r"9\); name each row's variant"):
        load_variants(str(path))


def test_a_variant_whose_values_are_all_missing_is_named(tmp_path):
    """Issue 40 item 8: its points are refused with the variant's name, not as an anonymous 'no points'."""
    df = pd.DataFrame(rows("base") + rows("empty", shift=0.06, seed=1))
    df.loc[df["variant"] == "empty", ["c4:loss", "task:acc"]] = np.nan
    path = tmp_path / "nan.csv"
    df.to_csv(path, index=False)
    with pytest.raises(FitInputError, match=r"^variant empty: "):
        load_variants(str(path))


def test_a_method_that_did_not_read_the_data_is_refused_not_predicted_equal(tmp_path, capsys):
    """Issue 32 case 3: olmo_two_step_flops on a table with no `flops` column; with each variant by the method alone,
    compare refused "predicted equal" (exit 0); now it refuses, naming why. By default the losses are the joint
    law's and the method's failures are warnings on the terminal."""
    from ladder.orchestration.cli import main
    path = tmp_path / "noflops.csv"
    pd.DataFrame(rows("base") + rows("worse", shift=0.06, seed=1)).to_csv(path, index=False)
    args = ["compare", f"results={path}", "method=olmo_two_step_flops", "bootstrap=20", "backtest=false",
            "targets=[{name: big, params: 1.3e9, tokens: 2.6e10}]"]
    assert main(args + ["joint=false", f"out={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err
    assert "predicted equal" not in err and ("flops" in err or "predicted exactly equal" in err)
    assert main(args + [f"out={tmp_path / 'p'}"]) == 0
    out = capsys.readouterr().out
    assert "big c4 LM loss: base better than worse" in out and "\nwarning: " in out


def test_without_named_targets_each_variant_is_compared_at_its_own_largest_size(ablation_csv, tmp_path, capsys):
    """Default targets where the variants' N differ: each variant's own run of that rank (said), not a refusal."""
    from ladder.orchestration.cli import main
    assert main(["compare", f"results={ablation_csv}", "bootstrap=0", "backtest=false", f"out={tmp_path / 'o'}"]) == 0
    out = capsys.readouterr().out
    d = pd.read_csv(tmp_path / "o" / "compare.csv")
    assert len(d) == 36 and d["target"].str.startswith("~").all() and np.isfinite(d["measured_difference"]).all()
    assert "each default target is each variant's own run of that rank" in out


def test_a_multiplier_at_the_edge_of_the_search_is_said_as_a_bound():
    from fit.present.compare_report import _times
    assert _times(1e4, 4.99e3, 1e4) == "over 10,000× [4.99e+03×, over 10,000×]"
    assert _times(1e-3, 1e-3, 2.0) == "under 0.001× [under 0.001×, 2×]"
    assert _times(1.53, 1.46, 1.58) == "1.53× [1.46×, 1.58×]"
    assert _times(1e4, 1e4, 1e4) == "over 10,000×"  # the interval at the bound too says nothing more


def test_the_decision_table_drops_a_fitted_by_that_every_row_shares():
    """The Gadre C4-vs-RPJ table repeated "one law over all variants" in every row and ran past the page; the lead
    sentence says it once. Where rows were fitted differently the column stays."""
    from fit.present.compare_report import decision_table
    row = dict(target="6.9B-20", metric="c4_val:loss", a="c4", b="rpj", winner="c4", difference=-0.07,
               difference_lower=-0.3, difference_upper=0.17, p_winner=0.68, compute_multiplier=1.8,
               multiplier_lower=1.4, multiplier_upper=2.4, changes_with_scale=False, crossing_C=np.nan,
               measured_difference=-0.04, fitted_by="joint")
    same = decision_table(pd.DataFrame([row, {**row, "metric": "ptb:loss"}]))
    assert "Fitted by" not in same.columns and list(same.columns[:3]) == ["Target", "Metric", "Winner"]
    mixed = decision_table(pd.DataFrame([row, {**row, "metric": "mmlu:acc", "fitted_by": "best"}]))
    assert mixed["Fitted by"].tolist() == ["one law over all variants", "best"]


def test_a_decision_backtest_that_cannot_be_fitted_is_said(tmp_path):
    """A method alone (joint=false) that cannot fit the smaller sizes (olmo_two_step_flops on a table without
    FLOPs): the backtest says why it was skipped rather than vanishing."""
    path = tmp_path / "few.csv"
    df = pd.DataFrame(rows("base", sizes=SIZES[:4]) + rows("worse", shift=0.06, sizes=SIZES[:4], seed=1))
    df[df["run"].str.endswith("-10")].to_csv(path, index=False)
    held = decision_backtests(load_variants(str(path)), FitConfig(method="olmo_two_step_flops", bootstrap=0),
                              METHODS["olmo_two_step_flops"])
    assert held.empty and len(held.attrs["skipped"]) == 1
    assert held.attrs["skipped"][0].startswith("held-out size 160M skipped: variant base: olmo_two_step_flops")
    assert "flops" in held.attrs["skipped"][0]


def test_curves_that_cross_inside_the_ladder_do_not_change_with_scale():
    """Issue 36 item 2: a crossing at the smallest model's compute flagged "changes with scale"; the order beyond
    the ladder's largest fitted compute is what the ladder does not show."""
    C = np.geomspace(1e17, 1e22, 12)
    curve = pd.DataFrame([{"variant": v, "target": "T", "C": c, "metric": "x:loss", "predicted": y}
                          for v, ys in (("a", 3 - 0.1 * np.log10(C / 1e17)), ("b", 3.2 - 0.2 * np.log10(C / 1e17)))
                          for c, y in zip(C, ys)])  # they cross at C = 1e19
    assert crossing(curve, "T", "x:loss", "a", "b", {}, ladder_end=1e18)["changes_with_scale"]
    inside = crossing(curve, "T", "x:loss", "a", "b", {}, ladder_end=1e20)
    assert not inside["changes_with_scale"] and np.isnan(inside["crossing_C"])


def test_the_backtest_table_sorts_multipliers_as_numbers():
    from fit.present.compare_report import backtest_table
    b = pd.DataFrame([{"target": f"s-M{m}", "params": 1e8, "tokens": m * 1e8, "held_size": 1e8, "fitted_size": 5e7,
                       "metric": "c4:loss", "a": "x", "b": "y", "winner": "x", "p_a_better": 0.9,
                       "measured_winner": "x", "baseline_winner": "x", "difference": -0.1, "difference_lower": -0.2,
                       "difference_upper": 0.0, "measured_difference": -0.1} for m in (320, 40, 5, 10)])
    assert list(backtest_table(b)["Held-out run"]) == ["s-M5", "s-M10", "s-M40", "s-M320"]
