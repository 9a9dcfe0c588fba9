"""Where the published ladder data lies: `<repo>/../shared/data`, or $LADDER_SHARED_DATA (the scripts and the
fit tests read it; the harness itself never does)."""
import os
from pathlib import Path
from typing import Optional


def shared_data_dir() -> Optional[Path]:
    """The folder, or None when absent."""
    env = os.environ.get("LADDER_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return path.resolve() if path.is_dir() else None
