from pathlib import Path

import pytest

from fit.points import shared_data_dir


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("published ladder data not found at <repo>/../shared/data (set LADDER_SHARED_DATA)")
    return path
