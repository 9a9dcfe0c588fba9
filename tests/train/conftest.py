import sys
from pathlib import Path

# The training tests import their stand-ins (train_fakes) by name, as do the workers they launch.
sys.path.insert(0, str(Path(__file__).parent))
