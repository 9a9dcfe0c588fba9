"""The scripts run as the README spells them (`.venv/bin/python scripts/NAME.py`, which `make bench` runs too):
with no PYTHONPATH and from any folder, each answers --help."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parents[1] / "scripts"
# The scripts that import their siblings as `scripts.NAME` (bench_fit failed so in `make bench`), and shared_data.
SIBLING_USERS = sorted(p.name for p in SCRIPTS.glob("*.py") if re.search(r"^from scripts\.", p.read_text(), re.M))


@pytest.mark.parametrize("name", [*SIBLING_USERS, "shared_data.py"])
def test_a_script_runs_without_pythonpath(name, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(SCRIPTS / name), "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.startswith("usage:")


def test_the_sibling_users_are_found():
    assert {"bench_fit.py", "coverage.py", "backtest_best.py"} <= set(SIBLING_USERS)
