"""Output contract, input formats, dropped points, bad input and bootstrap reproducibility."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fit.config import FitConfig
from fit.errors import FitInputError
from fit.sources import detect_format, load_points
from fit.run import PRED_COLUMNS, run_fit

LADDER = [(190e6, 20), (190e6, 40), (370e6, 20), (370e6, 40), (760e6, 20), (760e6, 40), (1.3e9, 20), (1.3e9, 40)]


def _loss(n, d):
    return 1.8 + 400 / n ** 0.34 + 410 / d ** 0.28


def write_csv(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def ladder_rows():
    return [{"run": f"r{n:.0f}-{m}", "params": n, "tokens": n * m, "c4:loss": _loss(n, n * m)} for n, m in LADDER]


def test_gadre_run_writes_the_output_contract(shared, tmp_path, capsys):
    out = run_fit(FitConfig(results=str(shared / "gadre-scaling"), dataset="rpj", method="gadre",
                            bootstrap=40, out=str(tmp_path / "o")))
    preds = pd.read_csv(out / "predictions.csv")
    assert list(preds.columns) == PRED_COLUMNS
    assert set(preds["metric"]) == {"c4_val:loss", "avg46:err", "avg17:err"}
    assert preds["actual"].notna().all() and (preds["lower"] <= preds["upper"]).all()
    fits = json.loads((out / "fits.json").read_text())
    assert {"c4_val:loss", "avg46:err", "avg17:err"} <= set(fits["laws"])
    assert set(fits["laws"]["c4_val:loss"]) >= {"params", "param_intervals", "points", "residuals", "cm_params"}
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "| Held-out set" in (out / "report.md").read_text()  # a markdown table, not plain text
    assert (out / "figures" / "loss_vs_compute.png").exists() and (out / "figures" / "residuals.png").exists()
    assert "c4_val LM loss" in capsys.readouterr().out


def test_csv_format_detection_and_dropped_points(tmp_path):
    rows = ladder_rows()
    rows.append({"run": "nan", "params": 5e8, "tokens": 1e10, "c4:loss": np.nan})
    rows.append(dict(rows[0]))  # a duplicate of the first run
    rows.append({"run": "nosize", "params": np.nan, "tokens": 1e10, "c4:loss": 3.0})
    path = write_csv(tmp_path / "points.csv", rows)
    assert detect_format(path) == "csv"
    ps = load_points(str(path))
    reasons = " | ".join(ps.dropped_summary())
    assert "NaN" in reasons and "duplicated" in reasons and "missing or invalid params" in reasons
    assert len(ps.points) == len(LADDER)


def test_harness_results_jsonl_is_read(tmp_path):
    for n, m in LADDER:
        rung = tmp_path / "rungs" / f"olmo-{n:.0f}-c4-M{m}"
        rung.mkdir(parents=True)
        recs = [{"run": rung.name, "size": f"{n:.0f}", "dataset": "c4", "params": n, "run_tokens": n * m,
                 "multiplier": m, "step": s, "tokens": n * m * s / 10, "final": s == 10, "metric": "c4_val:loss",
                 "value": _loss(n, n * m * s / 10)} for s in (5, 10)]
        (rung / "results.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    assert detect_format(tmp_path) == "harness"
    out = run_fit(FitConfig(results=str(tmp_path), method="chinchilla", bootstrap=0))
    assert out == tmp_path / "report"
    preds = pd.read_csv(out / "predictions.csv")
    assert (preds["metric"] == "c4_val:loss").all()


def test_chinchilla_recovers_a_known_law(tmp_path):
    path = write_csv(tmp_path / "p.csv", ladder_rows())
    out = run_fit(FitConfig(results=str(path), method="chinchilla", bootstrap=0, out=str(tmp_path / "o"),
                            targets=[{"params": 7e9, "tokens": 1.4e11}]))
    pred = pd.read_csv(out / "predictions.csv").iloc[0]
    assert pred["predicted"] == pytest.approx(_loss(7e9, 1.4e11), rel=2e-3)


def test_bootstrap_is_reproducible_for_a_seed(shared, tmp_path):
    def run(seed, name):
        cfg = FitConfig(results=str(shared / "gadre-scaling"), dataset="rpj", method="gadre", bootstrap=60,
                        seed=seed, out=str(tmp_path / name), calibrate=False)  # gadre's calibrated interval has no bootstrap
        return pd.read_csv(run_fit(cfg) / "predictions.csv")
    a, b, c = run(3, "a"), run(3, "b"), run(4, "c")
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["lower"], c["lower"])


def test_bad_input_is_named(tmp_path, shared):
    with pytest.raises(FitInputError, match="no such file"):
        run_fit(FitConfig(results=str(tmp_path / "absent")))
    with pytest.raises(FitInputError, match="choose one with dataset"):
        run_fit(FitConfig(results=str(shared / "gadre-scaling"), method="gadre"))
    with pytest.raises(FitInputError, match="method=nope"):
        run_fit(FitConfig(results=str(tmp_path), method="nope"))
    big = {"run": "big", "params": 1e10, "tokens": 2e11, "c4:loss": _loss(1e10, 2e11)}
    few = write_csv(tmp_path / "few.csv", ladder_rows()[:2] + [big])  # one size below the target
    with pytest.raises(FitInputError, match="all 2 fit run\\(s\\) are at one size .* add runs at a second size"):
        run_fit(FitConfig(results=str(few), method="chinchilla", bootstrap=0, targets=[{"params": 7e9, "tokens": 1e11}]))
    one = write_csv(tmp_path / "one.csv", [{"run": f"r{m}", "params": 1e8, "tokens": 1e8 * m, "c4:loss": _loss(1e8, 1e8 * m)}
                                           for m in (5, 10, 20, 40, 80, 160, 320)])
    for targets in ([{"params": 7e9, "tokens": 1e11}], None):
        with pytest.raises(FitInputError, match="its 7 run\\(s\\) are all at one size \\(N = 1e\\+08\\)"):
            run_fit(FitConfig(results=str(one), method="chinchilla", bootstrap=0, targets=targets))
    nan = write_csv(tmp_path / "nan.csv", [{**r, "c4:loss": np.nan} for r in ladder_rows()])
    with pytest.raises(FitInputError, match="nan.csv: every point was left out \\(8 value is NaN or infinite\\)"):
        run_fit(FitConfig(results=str(nan), bootstrap=0))
    nocol = write_csv(tmp_path / "nocol.csv", [{"params": 1e8, "c4:loss": 3.0}])
    with pytest.raises(FitInputError, match="missing required column 'tokens'"):
        run_fit(FitConfig(results=str(nocol)))


def test_target_inside_fit_range_and_bound_hits_are_warned(tmp_path, capsys):
    path = write_csv(tmp_path / "p.csv", ladder_rows())
    target = {"params": 3e8, "tokens": 6e9}
    with pytest.raises(FitInputError, match=r"all 2 fit run\(s\) are at one size .* include=\[RUN,...\] adds others"):
        run_fit(FitConfig(results=str(path), method="chinchilla", bootstrap=0, targets=[target]))
    larger = [r["run"] for r in ladder_rows() if r["params"] >= 3e8]  # a fit takes them only when asked
    out = run_fit(FitConfig(results=str(path), method="chinchilla", bootstrap=0, out=str(tmp_path / "o"),
                            targets=[target], include=larger))
    assert "inside the fit range" in capsys.readouterr().out
    assert "inside the fit range" in (out / "report.md").read_text()


def write_two_dataset_run(root, offset=1.5):
    """A ladder run directory over datasets `a` and `b` (b's losses `offset` higher), each rung evaluated on both
    validation sets, as `ladder run 'ladder.datasets=[a,b]'` writes it."""
    for ds, shift in (("a", 0.0), ("b", offset)):
        for n, m in LADDER:
            rung = root / "rungs" / f"olmo-{n:.0f}-{ds}-M{m}"
            rung.mkdir(parents=True)
            recs = [{"run": rung.name, "size": f"{n:.0f}", "dataset": ds, "params": n, "run_tokens": n * m,
                     "multiplier": m, "step": s, "tokens": n * m * s / 10, "final": s == 10, "metric": f"{val}_val:loss",
                     "value": _loss(n, n * m * s / 10) + shift + 0.2 * (val != ds)} for s in (5, 10) for val in "ab"]
            (rung / "results.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    return root


def test_a_ladder_over_two_datasets_is_fitted_per_dataset(tmp_path, capsys):
    """Each dataset's held-out runs are predicted from that dataset's runs alone and measured on their own
    values; pooled, both datasets' targets got one prediction and the first dataset's measured value."""
    out = run_fit(FitConfig(results=str(write_two_dataset_run(tmp_path / "run")), method="chinchilla", bootstrap=0,
                            holdout="largest"))
    preds = pd.read_csv(out / "predictions.csv")
    assert set(preds["dataset"]) == {"a", "b"}
    for r in preds.itertuples():
        assert f"-{r.dataset}-M" in r.target  # its own dataset's runs are its targets
        n, d = r.params, r.tokens
        own = _loss(n, d) + (1.5 if r.dataset == "b" else 0.0) + 0.2 * (r.metric[0] != r.dataset)
        assert r.actual == pytest.approx(own)
        assert r.predicted == pytest.approx(own, rel=0.02)
    assert len(preds) == 2 * 2 * 2  # datasets × held-out runs × validation sets
    fits = json.loads((out / "fits.json").read_text())
    assert set(fits["datasets"]) == {"a", "b"} and fits["datasets"]["b"]["dataset"] == "b"
    md = (out / "report.md").read_text()
    assert "## Dataset a" in md and "## Dataset b" in md and "fitted apart" in md
    assert (out / "figures" / "b" / "loss_vs_compute.png").exists()
    said = capsys.readouterr().out
    assert "dataset a (its runs fitted apart" in said and "dataset b (its runs fitted apart" in said


def test_default_output_folders_of_two_inputs_do_not_collide(tmp_path, monkeypatch):
    """Without out=, each input's fit has a folder of its own (method=direct on two inputs wrote both into
    outputs/fit-direct, the second over the first)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    one = write_csv(tmp_path / "a" / "points.csv", ladder_rows())
    two = write_csv(tmp_path / "b.csv", ladder_rows())
    outs = [run_fit(FitConfig(results=str(p), method="chinchilla", bootstrap=0, targets=[{"params": 7e9, "tokens": 1.4e11}]))
            for p in (one, two)]
    assert outs[0] != outs[1] and all((o / "report.html").is_file() for o in outs)
    assert outs[0] == Path("outputs") / "fit-chinchilla-a-points"
    assert outs[1] == Path("outputs") / f"fit-chinchilla-{tmp_path.name}-b"


def test_a_fit_says_each_stage_as_it_starts(tmp_path, caplog):
    """A line per stage (on stderr through logging, so piped output gets them too, where no bar shows): reading,
    what was read, fitting, writing the report and each figure; nothing went for the first and last seconds."""
    import logging

    path = write_csv(tmp_path / "p.csv", ladder_rows())
    with caplog.at_level(logging.INFO):
        run_fit(FitConfig(results=str(path), method="chinchilla", bootstrap=0, out=str(tmp_path / "o"),
                          targets=[{"params": 7e9, "tokens": 1.4e11}]))
    said = [r.getMessage() for r in caplog.records]
    stages = ["reading ", "read 8 points of 8 runs", "fitting chinchilla", "writing the report", "figure figures/"]
    at = [next(i for i, m in enumerate(said) if m.startswith(s)) for s in stages]
    assert at == sorted(at), said
