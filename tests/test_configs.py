"""Every config file composes against its schema."""
import pytest

from ladder.core.configs import CONFIG_DIR, group_options, load_model
from ladder.orchestration.compose import load
from ladder.core.sizes import ModelShape

ROOT_GROUPS = ("ladder", "data", "train", "eval", "fit", "compare", "launcher")


@pytest.mark.parametrize("group,option", [(g, o) for g in ROOT_GROUPS for o in group_options(g)])
def test_every_root_group_option_composes(group, option):
    cfg = load([f"{group}={option}"])
    assert cfg[group] is not None


@pytest.mark.parametrize("name", group_options("model"))
def test_every_model_config_is_a_valid_shape(name):
    shape = ModelShape(**load_model(name))
    assert shape.name == name


def test_every_config_file_belongs_to_a_known_group():
    groups = {p.parent.name for p in CONFIG_DIR.rglob("*.yaml") if p.parent != CONFIG_DIR}
    assert groups <= set(ROOT_GROUPS) | {"model"}
