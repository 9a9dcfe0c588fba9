"""Reading the YAML files under configs/, with errors that fit on one line and name the key or file."""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ladder.core.sizes import ModelShape

CONFIG_DIR = Path(os.environ.get("LADDER_CONFIG_DIR", Path(__file__).resolve().parents[2] / "configs"))


class ConfigError(ValueError):
    """Bad configuration; its message is a single line naming the key or file."""


def one_line(exc: BaseException) -> str:
    """The most useful message in an exception chain, folded to one line.

    Prefer the message that names the key (OmegaConf adds `full_key:`), else the innermost one.
    """
    messages = []
    while exc is not None:
        if str(exc).strip() not in ("", "None"):  # Hydra's parser chains errors whose text is "None"
            messages.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    text = next((m for m in messages if "full_key:" in m), messages[-1] if messages else "invalid configuration")
    if "Available options" in text:  # Hydra lists them tab-indented, then its search path
        options = text.split("Available options", 1)[1].split("Config search path", 1)[0].split()[2:]
        return f"{text.splitlines()[0]}; available: {', '.join(options)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines[:1] + [line for line in lines[1:] if line.startswith("full_key:")][:1])


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def load_group_option(group: str, name: str, schema: type) -> DictConfig:
    """One option of a config group (e.g. model/olmo-190M), validated against `schema`."""
    path = CONFIG_DIR / group / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown {group} '{name}' (no {path.relative_to(CONFIG_DIR.parent)}); "
                          f"known: {', '.join(group_options(group))}")
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.load(path))
    except Exception as exc:
        raise ConfigError(f"{path}: {one_line(exc)}") from exc


def load_model(name: str) -> DictConfig:
    """A named size; the shape dataclass itself is the schema of configs/model/*.yaml."""
    return load_group_option("model", name, ModelShape)
