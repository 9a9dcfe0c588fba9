import pytest

from ladder.core.configs import load_model
from ladder.core.sizes import ModelShape, parse_count, shape_for_params
from train.model import build_model

# Published N of the OLMo ladder (Bhagia et al. 2024; shared/data README) and open_lm `params` (Gadre et al. 2024).
OLMO_N = {"olmo-190M": 190354176, "olmo-370M": 371262464, "olmo-760M": 758220288, "olmo-1B": 1279395840,
          "olmo-7B": 6887575552, "olmo-13B": 13202396160}
OPENLM_PARAMS = {"openlm-0.011B": 10569312, "openlm-0.079B": 78914048, "openlm-0.154B": 153677376,
                 "openlm-0.411B": 411616256, "openlm-1.4B": 1439795200, "openlm-6.9B": 6889410560}


@pytest.mark.parametrize("name,n", OLMO_N.items())
def test_olmo_shapes_give_published_n(name, n):
    assert ModelShape(**load_model(name)).params("olmo") == n


@pytest.mark.parametrize("name,n", OPENLM_PARAMS.items())
def test_open_lm_shapes_give_published_params(name, n):
    assert abs(ModelShape(**load_model(name)).params("total") / n - 1) < 0.01


@pytest.mark.parametrize("arch", ["olmo2", "llama"])
@pytest.mark.parametrize("dims", [(32, 2, 2, 96, 512), (64, 3, 4, 160, 1000), (96, 4, 6, 256, 2048)])
def test_formula_equals_built_transformers_model(arch, dims):
    d, layers, heads, mlp, vocab = dims
    shape = ModelShape("t", d, layers, heads, mlp, vocab, 64, arch)
    model = build_model(shape)
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight.numel()
    head = model.get_output_embeddings().weight.numel()
    assert total == shape.total_params
    assert total - embed - head == shape.non_embedding_params
    assert total - head == shape.params("olmo")


@pytest.mark.parametrize("target,vocab,convention", [
    (3e5, 2048, "non_embedding"), (5e7, 100352, "olmo"), (1.9e8, 100352, "olmo"),
    (1.5e9, 50432, "total"), (7e9, 100352, "olmo"),
])
def test_shape_rule_lands_near_any_target(target, vocab, convention):
    shape = shape_for_params(target, arch="olmo2", vocab_size=vocab, seq_len=4096, convention=convention)
    assert abs(shape.params(convention) / target - 1) < 0.15
    assert shape.d_model % shape.n_heads == 0


def test_shape_rule_refuses_unreachable_targets():
    with pytest.raises(ValueError, match="no olmo2 shape with vocab 100352 has N near 300K"):
        shape_for_params(3e5, arch="olmo2", vocab_size=100352, seq_len=4096, convention="olmo")


def test_invalid_shapes_are_rejected_with_the_model_name():
    with pytest.raises(ValueError, match="'bad'.*not divisible"):
        ModelShape("bad", 100, 2, 3, 64, 100, 64)
    with pytest.raises(ValueError, match="n_layers must be positive"):
        ModelShape("bad", 64, 0, 4, 64, 100, 64)


def test_parse_count():
    assert parse_count("190M") == 1.9e8 and parse_count("1.3B") == 1.3e9 and parse_count("5e7") == 5e7
    with pytest.raises(ValueError, match="not a count"):
        parse_count("lots")
