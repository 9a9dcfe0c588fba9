"""`python -m ladder <command>`: the same as the `ladder` command (torchrun and accelerate launch modules)."""
import sys

from ladder.orchestration.cli import main

sys.exit(main())
