import importlib.util
from pathlib import Path

import pytest

from scripts.shared_data import shared_data_dir


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("published ladder data not found at <repo>/../shared/data (set LADDER_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def write_ladder():
    """test_holdout.write_ladder: a lawful 4 × 3 ladder in the harness's results.jsonl format, written
    under a given directory (which it returns)."""
    spec = importlib.util.spec_from_file_location("test_holdout", Path(__file__).with_name("test_holdout.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_ladder
