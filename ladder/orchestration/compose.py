"""Hydra composition of the root config for the CLI; a bad override, or a value the schema cannot check, is a
ConfigError naming the key."""
from __future__ import annotations

import dataclasses
import typing
from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
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
    overrides = [_open_map_entry(_quoted(o)) for o in overrides]
    _refuse_size_choice(overrides)
    try:
        cfg = compose(config_name=config_name, overrides=overrides)
    except OverrideParseException as exc:
        bad = next((o for o in overrides if not _parses(o)), None)
        raise ConfigError(f"cannot read {bad!r}: {one_line(exc)}" if bad else one_line(exc)) from exc
    except Exception as exc:  # Hydra raises many types; all of them are bad input here
        raise ConfigError(one_line(exc)) from exc
    _check(cfg, overrides)
    return cfg


def _quoted(override: str) -> str:
    """`out=/tmp/a=b`: Hydra's grammar ends an unquoted value at its first `=`, so a value holding one
    (a path, mostly) is quoted for it. Lists, dicts and values already quoted are left as written."""
    key, _, value = override.partition("=")
    if "=" not in value or value[:1] in "[{" or "'" in value or '"' in value:
        return override
    return f"{key}='{value}'"


def _parses(override: str) -> bool:
    try:
        OverridesParser.create().parse_overrides([override])
    except OverrideParseException:
        return False
    return True


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _refuse_size_choice(overrides: Sequence[str]) -> None:
    """configs/model/ holds the named sizes a ladder lists, not a choice of the root config: Hydra's own
    answer ("No match in the defaults list") does not say where a size goes."""
    for o in overrides:
        if _key(o) == "model" or _key(o).startswith("model."):
            value = o.split("=", 1)[1] if "=" in o else "NAME"
            raise ConfigError(f"{o}: configs/model/ holds the named sizes a ladder trains, not a setting to choose; "
                              f"name sizes in the ladder instead: ladder.sizes=[{value}] (or a parameter count, "
                              f"ladder.sizes=[50M])")


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
                   "time_min": 1, "devices": 1, "job_start_s": 0}
_LAUNCHER_POSITIVE = ("gpu_flops", "cpu_flops", "expected_mfu", "time_margin")


def _check_launcher(launcher: DictConfig) -> None:
    for key, least in _LAUNCHER_LEAST.items():
        if launcher[key] is not None and launcher[key] < least:
            raise ConfigError(f"launcher.{key}={launcher[key]}: must be at least {least}"
                              + (" (null: derived from each job's size)" if key in ("gpus", "nodes", "mem_gb",
                                                                                    "time_min") else "")
                              + (" (null: the visible GPUs)" if key == "devices" else ""))
    for key in _LAUNCHER_POSITIVE:
        if not launcher[key] > 0:
            raise ConfigError(f"launcher.{key}={launcher[key]}: must be positive")
    if launcher.expected_mfu > 1:
        raise ConfigError(f"launcher.expected_mfu={launcher.expected_mfu}: a share of the peak, at most 1")
    if launcher.max_time_min < launcher.min_time_min:
        raise ConfigError(f"launcher.max_time_min={launcher.max_time_min}: must be at least launcher.min_time_min="
                          f"{launcher.min_time_min}")


def _check(cfg: DictConfig, overrides: Sequence[str] = ()) -> None:
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
    # A single-dataset ladder trains on the root `data` (configs/ladder/*.yaml), so data=NAME chooses its
    # dataset; a ladder that lists its datasets would silently ignore settings of any other.
    chosen = next((o for o in overrides if _key(o).split(".", 1)[0] == "data"), None)
    if chosen and cfg.data.name not in cfg.ladder.datasets:
        raise ConfigError(f"{chosen}: ladder {cfg.ladder.name} trains on {', '.join(cfg.ladder.datasets)} "
                          f"(ladder.datasets), not {cfg.data.name}; to train on it, list it there: "
                          f"ladder.datasets=[{', '.join([*cfg.ladder.datasets, cfg.data.name])}]")
