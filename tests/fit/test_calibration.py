"""Intervals widened by each method's own inner backtests (fit/calibration.py)."""
import copy

import numpy as np
import pytest

from fit.calibration import calibrate
from fit.config import FitConfig
from fit.points import load_points
from fit.registry import METHODS
from ladder.core.plan import Target


@pytest.mark.parametrize("method", ["olmo_two_step", "direct"])
def test_calibration_widens_each_interval_by_the_inner_backtest_error(tmp_path, method, write_ladder):
    ps, targets = load_points(str(write_ladder(tmp_path))), [Target("big", 2e6, 4e7)]
    raw = METHODS[method](ps, targets, FitConfig(bootstrap=20))
    out = copy.deepcopy(raw)
    calibrate(METHODS[method], ps, targets, FitConfig(bootstrap=20), out)
    assert out.calibrated and set(out.fits["backtest"]["held_out"]) == {f"smoke-{s}-smoke-M{m}" for s in (48, 64)
                                                                       for m in (5, 10, 20)}
    rms = out.fits["backtest"]["rms_error"]
    for before, after in zip(raw.predictions, out.predictions):
        half = (before["upper"] - before["lower"]) / 2
        assert after["lower"] < before["lower"] and after["upper"] > before["upper"]
        widened = np.hypot(before["predicted"] - before["lower"], 1.6449 * rms[before["metric"]])
        assert before["predicted"] - after["lower"] == pytest.approx(widened, rel=1e-3) and half > 0
    assert any("widened by its inner backtests" in n for n in out.notes)


def test_a_fixed_paper_fit_set_is_not_calibrated_and_says_so(shared):
    ps = load_points(str(shared / "gadre-scaling"), dataset="rpj")
    from fit.run import choose_targets
    targets = choose_targets(FitConfig(dataset="rpj"), ps)
    out = METHODS["gadre"](ps, targets, FitConfig(bootstrap=20))
    calibrate(METHODS["gadre"], ps, targets, FitConfig(bootstrap=20), out)
    assert not out.calibrated and any("cannot be backtested inside" in w for w in out.warnings)
    assert any("59 % of the resamples" in w for w in out.warnings)
