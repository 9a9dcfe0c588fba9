"""scripts/gpu_check.py runs end to end on this CPU with tiny shapes, so the GPU run is not its first; and the
device simulation (scripts/device_sim.py) runs it as the lent GPU machine would."""
import argparse
import gc
import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
import weakref
import zipfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HOME": os.environ.get("HOME", "/root")}


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _script("gpu_check")


def command(out: Path, *sections) -> list:
    return [sys.executable, str(ROOT / "scripts/gpu_check.py"), "--device", "cpu", "--tiny", "--steps", "2",
            "--warmup", "1", "--log-every", "1", "--eval-examples", "40", "--resume-steps", "2",
            "--precision-steps", "6", "--out", str(out), "--sections", *sections]


def check(tmp_path, *sections) -> dict:
    out = tmp_path / "check.json"
    proc = subprocess.run(command(out, *sections), capture_output=True, text=True, timeout=900, env=ENV)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["finished"] and [s["section"] for s in report["sections"]][:1] == [sections[0]]
    return by_section(report)


def by_section(report: dict) -> dict:
    """The report's sections by name (a tiny check has one size)."""
    return {s["section"]: s for s in report["sections"]}


def test_in_process_sections_write_their_records(tmp_path):
    report = check(tmp_path, "throughput", "eval_in_loop", "resume", "baseline")
    ev = report["eval_in_loop"]
    assert ev["hook"] == "eval.cli.make_eval_hook" and [e["step"] for e in ev["evaluations"]] == [2, 4]
    assert ev["examples_timed"] == sum(ev["examples_per_task"].values()) and len(ev["examples_per_task"]) == 8
    assert ev["records"] > 8 and ev["share_of_training"] > 0 and ev["train_tokens_per_s"] > 0
    assert 0 < ev["checkpoint_seconds"] < ev["section_seconds"] and ev["checkpoint_bytes"] > 0
    resume = report["resume"]
    assert (resume["stopped_state"], resume["stopped_step"], resume["resumed_state"]) == ("interrupted", 2, "done")
    # On a CPU in fp32 the resumed run is the uninterrupted one, bit for bit.
    assert len(resume["resumed_losses"]) == 2 and resume["max_abs_loss_diff"] == 0 == resume["max_abs_grad_norm_diff"]
    harness, plain = report["throughput"], report["baseline"]
    # The kernel is traced in the harness's own run, on its live model: what the timed steps ran.
    assert harness["sdpa_kernel"] == "flash" and any("flash_attention_for_cpu" in op for op in harness["sdpa_aten_ops"])
    assert (harness["loop"], plain["loop"]) == ("harness", "plain") and plain["sdpa_kernel"] == "flash"
    for speed in (harness, plain):
        assert speed["tokens_per_s"] > 0 and speed["micro_batch"] == 4
        assert speed["hardware_flops_per_token"] < speed["model_flops_per_token"]  # flash skips the masked half
    assert harness["checkpoint_seconds"] > 0


def test_the_report_holds_each_section_as_soon_as_it_is_done(tmp_path):
    """A run stopped after a section (as the device's time limit stops one) still returns it."""
    out = tmp_path / "check.json"
    proc = subprocess.Popen(command(out, "baseline", "resume"), stdout=subprocess.PIPE, text=True, env=ENV)
    for line in proc.stdout:
        if line.startswith('{"section": "resume"'):
            proc.kill()
            break
    proc.wait()
    report = json.loads(out.read_text())
    assert not report["finished"] and [s["section"] for s in report["sections"]] == ["resume"]
    assert set(report["estimates_s"]) == {"resume tiny", "baseline tiny", "total"} and report["estimates_for"] == "H100"


def test_a_section_the_remaining_budget_cannot_hold_is_skipped_with_a_line(tmp_path):
    out = tmp_path / "check.json"
    proc = subprocess.run([*command(out, "resume", "throughput"), "--budget-s", "0"], capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sections = json.loads(out.read_text())["sections"]
    assert [s["section"] for s in sections] == ["throughput", "resume"]
    assert all(re.fullmatch(r"estimated \d+ s, 0 s of --budget-s left", s["skipped"]) for s in sections)
    assert proc.stdout.count("gpu_check: skipped ") == 2 and "gpu_check: skipped resume: estimated" in proc.stdout


@pytest.mark.parametrize("gpu", ["H100", "H200"])
def test_the_default_check_reaches_the_1b_figure_first_and_fits_seven_minutes(gpu):
    """By its own estimates on the device found: the olmo-1B harness figure within the first 3 minutes (the
    machine's start aside), all of it under 7; the micro-batches, and so the estimates, that device's."""
    args = argparse.Namespace(tiny=False, sizes=["olmo-1B", "olmo-190M"], sections=list(gpu_check.SECTIONS),
                              resume_steps=4, precision_steps=20, warmup=2, steps=4)
    steps = gpu_check.plan(args, gpu_check.GPUS[gpu])
    assert [gpu_check.label(name, a) for name, a, _ in steps] == [
        "imports", "throughput olmo-1B", "throughput olmo-190M", "distributed olmo-190M", "eval_in_loop olmo-190M",
        "resume small", "bf16_vs_fp32 small", "baseline olmo-1B", "baseline olmo-190M", "ladder_run"]
    ends = list(itertools.accumulate((s for _, _, s in steps), initial=gpu_check.ASSUMED["start"]))
    assert ends[2] < 180 and ends[-1] < 420
    other = gpu_check.plan(args, gpu_check.GPUS["H200" if gpu == "H100" else "H100"])
    assert (steps[1][2] < other[1][2]) == (gpu == "H100")  # twice the micro-batch, twice the tokens timed


def test_hardware_flops_count_what_each_attention_kernel_executes():
    shape = gpu_check.ModelShape(name="s", d_model=768, n_layers=12, n_heads=12, mlp_hidden=3072, vocab_size=100352,
                                 seq_len=4096)
    L, d, T = 12, 768, 4096
    # The math kernel multiplies every score, as the model convention counts them; the fused kernels skip
    # the keys after each causal query but recompute QKᵀ in backward: 7 of the 12 products' halves.
    assert gpu_check.hardware_flops_per_token(shape, "math") == shape.flops_per_token()
    for kernel in ("flash", "efficient", "cudnn"):
        assert shape.flops_per_token() - gpu_check.hardware_flops_per_token(shape, kernel) == 12 * L * d * T - 7 * L * d * (T + 1)
    assert gpu_check.hardware_flops_per_token(shape, None) is None


def test_out_of_memory_retries_free_the_failed_attempt_and_compile_afresh():
    alive, dynamic = [], []

    class Model:  # in a reference cycle, as a compiled model is: only the collector frees it
        def __init__(self):
            self.me = self

    def backend(gm, example_inputs):  # a recompile after a shape change passes the size in as a SymInt
        dynamic.append(any(isinstance(x, (int, torch.SymInt)) for x in example_inputs))
        return gm.forward

    def run(micro: int) -> float:
        assert all(ref() is None for ref in alive), "the failed attempt's model is still alive"
        model = Model()
        alive.append(weakref.ref(model))
        torch.compile(lambda x: (x * 2).sum(), backend=backend)(torch.ones(micro))
        if micro > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return 100.0 * micro

    gc.disable()  # only an explicit collection may free the cycle
    try:
        assert gpu_check.halving_on_oom(run, 8) == (200.0, 2, [8, 4])
    finally:
        gc.enable()
    assert dynamic == [False, False, False]
    with pytest.raises(ValueError):  # anything but running out of memory is not retried
        gpu_check.halving_on_oom(lambda micro: (_ for _ in ()).throw(ValueError("bad")), 8)


@pytest.mark.parametrize("loss", ["chunked", "full"])
def test_the_plain_baseline_compiles_each_block_once(monkeypatch, loss):
    """Without use_cache=False Olmo 2's KV cache index recompiled the blocks once per layer (to Dynamo's limit,
    then eagerly); the chunked loss holds the harness's micro-batch."""
    import train.loss
    import train.model
    from train.config import TrainConfig, WandbConfig
    from train_fakes import sequences_for, tiny_run

    bench_train = _script("bench_train")
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    monkeypatch.setattr(bench_train, "compile_blocks", lambda model, key: train.model.compile_blocks(
        model, key, backend=backend))
    monkeypatch.setattr(train.loss, "_compiled_chunk_loss_and_grad", lambda: train.loss._chunk_loss_and_grad)
    torch.compiler.reset()
    rung = tiny_run(steps=3)  # two layers
    cfg = TrainConfig(micro_batch_size=4, compile=True, progress=False, wandb=WandbConfig(mode="disabled"))
    assert bench_train.plain_loop(rung, sequences_for(rung), cfg, torch.device("cpu"), 1, loss) > 0
    assert len(graphs) == 1


def test_gpu_check_sh_names_the_command_that_builds_missing_wheels(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "scripts/gpu_check.sh"), str(tmp_path / "out.json")], capture_output=True,
                          text=True, env={**ENV, "GPU_CHECK_WHEELS": str(tmp_path / "none")})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"no wheels in {tmp_path / 'none'}/" in proc.stderr and "scripts/device_wheels.py --python 3.12" in proc.stderr


def _wheel(directory: Path, name: str, version: str, *requires: str) -> None:
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{name}-{version}.dist-info/METADATA", "".join(
            f"{line}\n" for line in ("Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
                                     *(f"Requires-Dist: {r}" for r in requires))))


def test_the_carried_set_is_one_version_of_each_and_meets_its_own_pins(tmp_path):
    """With --no-deps nothing on the device checks what one carried wheel requires of another."""
    device_wheels = _script("device_wheels")
    _wheel(tmp_path, "pydantic", "2.14.4", "pydantic-core==2.50.5", 'old-only; python_version < "3.8"')
    _wheel(tmp_path, "pydantic_core", "2.50.5")
    found = device_wheels.wheel_set(tmp_path)
    device_wheels._check_requirements(tmp_path, found, "3.12")  # the marker's requirement does not apply
    _wheel(tmp_path, "typing_inspection", "0.4.5", "pydantic-core>=2.51")
    with pytest.raises(SystemExit, match="requires pydantic-core>=2.51; the pin is 2.50.5"):
        device_wheels._check_requirements(tmp_path, device_wheels.wheel_set(tmp_path), "3.12")
    _wheel(tmp_path, "pydantic_core", "2.51.0")
    with pytest.raises(SystemExit, match="two wheels of pydantic_core"):  # pip would refuse to install both
        device_wheels.wheel_set(tmp_path)


def test_building_the_sdist_wheels_without_their_build_tools_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    """pip wheel --no-build-isolation builds with the caller's setuptools: before 70.1 it needs `wheel` too."""
    device_wheels = _script("device_wheels")
    versions = {"setuptools": "69.5.1"}
    monkeypatch.setattr(device_wheels.importlib.metadata, "version", lambda name: versions[name])
    monkeypatch.setattr(device_wheels.importlib.util, "find_spec", lambda name: None)
    assert device_wheels.missing_build_tools() == ("its setuptools 69.5.1 is older than 70.1 and the wheel package "
                                                   "is not installed")
    monkeypatch.setattr(device_wheels, "wheel_set", lambda directory: {})
    monkeypatch.setattr(device_wheels, "_pip", lambda *args, **kwargs: None)  # the binary wheels: fetched
    with pytest.raises(SystemExit, match=r"cannot build .*deepspeed.* from their sdists with .*: its setuptools "
                                         r"69.5.1 .*; run `.* -m pip install 'setuptools>=70.1'` first"):
        device_wheels.build(tmp_path, "3.12")
    versions["setuptools"] = "70.1.0"
    assert device_wheels.missing_build_tools() is None


@pytest.mark.slow  # a venv of the device image's packages (minutes when not cached), the wheels, the whole check
def test_device_simulation_runs_the_check_as_the_device_would(tmp_path):
    """scripts/device_sim.py: the venv and the wheels built afresh where .cache/device-sim lacks them (as on
    CI), the wheels installed afresh (--target) on every run; the check, then the GPU-path tests under the
    image's transformers. The torchrun sections (FSDP and ZeRO-2 launches, bf16 against fp32) are checked here
    alone, where they run on the image's packages."""
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/device_sim.py"), "--out", str(out), "--",
                           "--steps", "2", "--warmup", "1", "--log-every", "1", "--eval-examples", "40",
                           "--resume-steps", "2", "--precision-steps", "6"],
                          capture_output=True, text=True, timeout=3000, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["finished"] and [s["section"] for s in report["sections"]] == list(gpu_check.SECTIONS)
    assert report["environment"]["transformers"] == "5.17.0" and report["environment"]["deepspeed"] == "0.19.8"
    sections = by_section(report)
    assert sections["imports"]["failed"] == {} and sections["imports"]["cli_returncode"] == 0
    assert sections["imports"]["modules"] > 50
    runs = [sections["distributed"][k] for k in ("fsdp", "deepspeed_zero2")]
    assert [(r["state"], r["steps"], r["checkpoints"]) for r in runs] == [("done", 2, ["step-00000002"])] * 2
    precision = sections["bf16_vs_fp32"]
    assert len(precision["fp32_losses"]) == len(precision["bf16_losses"]) == 6
    assert 0 < precision["max_abs_diff"] < 0.05  # bf16 rounds differently, and no more than that
    # The image has no wandb: the real `ladder run` (wandb offline, its default) said so once and went on
    assert sections["ladder_run"]["wandb_installed"] is False and sections["ladder_run"]["wandb_missing_warnings"] == 1
    assert sections["ladder_run"]["report"] and sections["ladder_run"]["returncode"] == 0
    assert re.search(r"^\d+ passed", proc.stdout, re.MULTILINE)  # test_train_gpu_path.py's pytest summary
