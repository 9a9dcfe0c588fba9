"""Where the published ladder data lies: `<repo>/../shared/data`, or $LADDER_SHARED_DATA (ladder.core.published;
the scripts and the fit tests read it)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, run as a script

from ladder.core.published import shared_data_dir  # noqa: E402

__all__ = ["shared_data_dir"]

if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__ + " Prints the folder, or says it is absent.").parse_args()
    found = shared_data_dir()
    print(found if found else "no published ladder data: neither $LADDER_SHARED_DATA nor ../shared/data is a folder")
    raise SystemExit(0 if found else 1)
