"""Hydra composition of the root config for the CLI; a bad override, or a value the schema cannot check, is a
ConfigError naming the key."""
from __future__ import annotations

import dataclasses
import typing
from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from fit.config import as_fit_config, check_numbers
from ladder.core.configs import CONFIG_DIR, ConfigError, load_group_option, one_line
from ladder.orchestration.schema import LAUNCHERS, Config, register
from train.config import check as check_train
from train.data.config import DataConfig


def _init() -> None:
    if not GlobalHydra.instance().is_initialized():
        register()
        initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3")


def load(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose the root config with command-line overrides."""
    _init()
    try:
        cfg = compose(config_name=config_name, overrides=[_open_map_entry(o) for o in overrides])
    except Exception as exc:  # Hydra raises many types; all of them are bad input here
        raise ConfigError(one_line(exc)) from exc
    _check(cfg)
    return cfg


def _maps(schema: type = Config, prefix: str = "") -> list[str]:
    """Dotted names of the schema's free-form mappings (eval.task_paths, eval.lm_sets, ...)."""
    out = []
    for name, hint in typing.get_type_hints(schema).items():
        if typing.get_origin(hint) is dict:
            out.append(prefix + name)
        elif dataclasses.is_dataclass(hint):
            out += _maps(hint, f"{prefix}{name}.")
    return out


def _open_map_entry(override: str) -> str:
    """`eval.task_paths.piqa=FILE` as written in the docs: Hydra's struct mode refuses a new key of a
    mapping unless forced with `++`, which sets it whether or not the key exists."""
    key = override.split("=", 1)[0]
    if "=" in override and not override.startswith(("+", "~")) and any(
            key == m or key.startswith(m + ".") for m in _maps()):
        return "++" + override
    return override


def dataset_config(cfg: DictConfig, dataset: str) -> DictConfig:
    """The dataset's config; the root `data` wins when it names this dataset, so overrides apply."""
    return cfg.data if cfg.data.name == dataset else load_group_option("data", dataset, DataConfig)


# The least value of each number of the resource rule (ladder/orchestration/resources.py) and of the overrides
# that replace it (None: the rule decides); a zero divides, a negative would be submitted.
_LAUNCHER_LEAST = {"max_parallel": 1, "gpus_per_node": 0, "max_nodes": 1, "gpu_mem_gb": 1, "min_time_min": 1,
                   "cpus_per_task": 1, "cpu_tasks": 1, "mem_gb_per_gpu": 1, "gpus": 1, "nodes": 1, "mem_gb": 1,
                   "time_min": 1}
_LAUNCHER_POSITIVE = ("gpu_flops", "cpu_flops", "expected_mfu", "time_margin")


def _check_launcher(launcher: DictConfig) -> None:
    for key, least in _LAUNCHER_LEAST.items():
        if launcher[key] is not None and launcher[key] < least:
            raise ConfigError(f"launcher.{key}={launcher[key]}: must be at least {least}"
                              + (" (null: derived from each job's size)" if key in ("gpus", "nodes", "mem_gb",
                                                                                    "time_min") else ""))
    for key in _LAUNCHER_POSITIVE:
        if not launcher[key] > 0:
            raise ConfigError(f"launcher.{key}={launcher[key]}: must be positive")
    if launcher.expected_mfu > 1:
        raise ConfigError(f"launcher.expected_mfu={launcher.expected_mfu}: a share of the peak, at most 1")
    if launcher.max_time_min < launcher.min_time_min:
        raise ConfigError(f"launcher.max_time_min={launcher.max_time_min}: must be at least launcher.min_time_min="
                          f"{launcher.min_time_min}")


def _check(cfg: DictConfig) -> None:
    """Names the schema cannot check: what the plan, not only `ladder run`, must refuse."""
    check_train(cfg.train)
    check_numbers(as_fit_config(cfg.fit))  # before a `ladder run` trains for hours to reach the fit
    if cfg.launcher.name not in LAUNCHERS:
        raise ConfigError(f"launcher.name={cfg.launcher.name}: unknown launcher; known: {', '.join(LAUNCHERS)}")
    _check_launcher(cfg.launcher)
    for dataset in cfg.ladder.datasets:
        try:
            dataset_config(cfg, dataset)
        except ConfigError as exc:
            raise ConfigError(f"ladder.datasets: {exc}") from None
