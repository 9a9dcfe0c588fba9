"""Where the published ladder results lie (both papers': OLMo's W&B exports, Gadre et al.'s per-model JSON):
`<repo>/../shared/data`, or $LADDER_SHARED_DATA. `ladder design` measures its default error model on them; the
scripts and the fit tests read them; no other command needs them."""
import os
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Optional[Path]:
    """The folder, or None when absent."""
    env = os.environ.get("LADDER_SHARED_DATA")
    path = Path(env) if env else REPO / ".." / "shared" / "data"
    return path.resolve() if path.is_dir() else None
