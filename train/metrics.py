"""Where training metrics go: metrics.jsonl, wandb and a progress bar, all from the main process."""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from pathlib import Path
from typing import Optional

import torch

from train.config import TrainConfig
from ladder.core.configs import one_line
from ladder.core.files import atomic_write_text, naming
from ladder.core.layout import METRICS

log = logging.getLogger(__name__)

# Dense bf16 tensor-core peaks (vendor datasheets), matched against the device name, the most specific name
# first: the PCIe and NVL parts run at lower clocks and power than the SXM ones ("NVIDIA H100 80GB HBM3").
GPU_PEAK_BF16 = {"H100 PCIe": 756e12, "H100 NVL": 835e12, "H200 NVL": 835e12, "H200": 989e12, "H100": 989e12,
                 "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "4090": 165e12}


def datasheet_peak(device_name: str) -> Optional[float]:
    """The bf16 peak of the GPU of that name, or None for one not in GPU_PEAK_BF16."""
    return next((GPU_PEAK_BF16[key] for key in sorted(GPU_PEAK_BF16, key=len, reverse=True) if key in device_name),
                None)


def peak_flops(cfg: TrainConfig) -> Optional[float]:
    """Per-device peak FLOP/s for MFU: configured, else the GPU's bf16 datasheet figure; None if unknown."""
    if cfg.peak_flops:
        return cfg.peak_flops
    if cfg.precision == "bf16" and torch.cuda.is_available():
        return datasheet_peak(torch.cuda.get_device_name())
    return None


_MISSING_REPORTED: set = set()


def optional_module(name: str, what: str):
    """The module `name`, or None where it is not installed: a logger is optional (the device image has no
    wandb, for one), so its absence is one warning per process, and the run goes on without it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if name not in _MISSING_REPORTED:
            _MISSING_REPORTED.add(name)
            log.warning("%s is not installed (%s): %s; the run goes on without it", name, one_line(exc), what)
        return None


class MetricsLog:
    """Appends one JSON object per logged step; wandb mirrors it unless disabled."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, rung_id: str, resume_step: int, total_steps: int,
                 run_config: dict):
        self.path = Path(run_dir) / METRICS
        _drop_steps_after(self.path, resume_step)  # those steps are trained again from the checkpoint
        self.file = open(self.path, "a")
        self.name = rung_id
        self.wandb = _start_wandb(run_dir, cfg, rung_id, run_config)
        tqdm = optional_module("tqdm.auto", "no progress bar") if cfg.progress else None
        self.bar = tqdm and tqdm.tqdm(total=total_steps, initial=resume_step, desc=rung_id, unit="step",
                                      dynamic_ncols=True)

    def log(self, record: dict) -> None:
        with naming(self.path):
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    def log_evaluation(self, step: int, records: list) -> None:
        """A checkpoint's evaluation records (docs/formats.md) to wandb as `eval/<metric>` at its step, each
        rung's under its name where one run trains several (a trunk); results.jsonl already holds them."""
        if self.wandb is not None:
            self.wandb.log({f"eval/{'' if r['run'] == self.name else r['run'] + '/'}{r['metric']}": r["value"]
                            for r in records}, step=step)

    def progress(self, steps: int, tokens_per_s: float, loss: float) -> None:
        if self.bar is None:
            return
        self.bar.update(steps)
        self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)

    def close(self, exit_code: int = 0) -> None:
        """Also after a failure: a second error here (a full disk fails the file's last flush, and wandb, which
        writes beside it, its own finish) is one warning, never a traceback over the failure itself."""
        if self.bar is not None:
            self.bar.close()
        try:
            with naming(self.path):
                self.file.close()
        except OSError as exc:
            if not exit_code:
                raise
            log.warning("%s", exc)
        if self.wandb is not None:
            try:
                self.wandb.finish(exit_code=exit_code)
            except Exception as exc:  # wandb's own errors (HandleAbandonedError, ...) have no common base
                if not exit_code:
                    raise
                log.warning("wandb could not finish its run in %s: %s: %s", self.wandb.dir, type(exc).__name__, exc)


def _drop_steps_after(path: Path, step: int) -> None:
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except json.JSONDecodeError:  # a line torn by the kill that stopped the last attempt
            continue
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _start_wandb(run_dir: Path, cfg: TrainConfig, rung_id: str, run_config: dict):
    if cfg.wandb.mode == "disabled":
        return None
    wandb = optional_module("wandb", f"train.wandb.mode={cfg.wandb.mode} logs nothing to wandb (metrics.jsonl "
                                     f"holds every record)")
    if wandb is None:
        return None
    # A stable id per run directory, so a resumed run continues the same wandb run.
    run_id = f"{rung_id}-{hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:8]}"
    os.environ.setdefault("WANDB_SILENT", "true")
    return wandb.init(project=cfg.wandb.project, entity=cfg.wandb.entity, name=rung_id, id=run_id, resume="allow",
                      dir=str(run_dir), mode=cfg.wandb.mode, config=run_config)
