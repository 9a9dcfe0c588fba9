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


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__ + " Prints the folder, or says it is absent.").parse_args()
    found = shared_data_dir()
    print(found if found else "no published ladder data: neither $LADDER_SHARED_DATA nor ../shared/data is a folder")
    raise SystemExit(0 if found else 1)
