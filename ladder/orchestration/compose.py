"""Hydra composition of the root config for the CLI; a bad override is a ConfigError naming the key."""
from __future__ import annotations

from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from ladder.core.configs import CONFIG_DIR, ConfigError, one_line
from ladder.orchestration.schema import register


def _init() -> None:
    if not GlobalHydra.instance().is_initialized():
        register()
        initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3")


def load(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose the root config with command-line overrides."""
    _init()
    try:
        return compose(config_name=config_name, overrides=list(overrides))
    except Exception as exc:  # Hydra raises many types; all of them are bad input here
        raise ConfigError(one_line(exc)) from exc
