import sys
from pathlib import Path

import torch

# The training tests import their stand-ins (train_fakes) by name, as do the workers they launch.
sys.path.insert(0, str(Path(__file__).parent))
# Their models are tiny: one thread beats several, by far on a CPU shared with other jobs.
torch.set_num_threads(1)
