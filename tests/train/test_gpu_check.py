"""scripts/gpu_check.py runs end to end on this CPU with a tiny model, so the GPU run is not its first."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def check(tmp_path, *sections) -> dict:
    out = tmp_path / "check.json"
    command = [sys.executable, str(ROOT / "scripts/gpu_check.py"), "--device", "cpu", "--tiny", "--steps", "2",
               "--warmup", "1", "--log-every", "1", "--eval-examples", "6", "--out", str(out), "--sections", *sections]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_throughput_and_eval_share_sections_write_their_figures(tmp_path):
    report = check(tmp_path, "throughput", "eval_share")
    speed = [s for s in report["sections"] if s["section"] == "throughput"]
    assert [s["data"] for s in speed] == ["synthetic", "shards"]
    assert all(s["harness_tokens_per_s"] > 0 and s["plain_tokens_per_s"] > 0 and s["micro_batch"] == 4 for s in speed)
    (share,) = [s for s in report["sections"] if s["section"] == "eval_share"]
    assert share["examples_timed"] == 8 * 6 and share["records"] > 8 and 0 < share["share_of_training"]
    assert report["environment"]["device"] == "cpu"


@pytest.mark.slow  # two torchrun launches, DeepSpeed's start-up among them
def test_fsdp_and_zero2_sections_train_a_rung_under_torchrun(tmp_path):
    report = check(tmp_path, "fsdp", "deepspeed_zero2")
    assert [(s["section"], s["state"], s["steps"]) for s in report["sections"]] == [
        ("fsdp", "done", 2), ("deepspeed_zero2", "done", 2)]
