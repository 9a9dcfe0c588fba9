"""The fast paths compute what the plain ones do: chunked loss, fused AdamW, attention choice, micro-batch."""
import logging

import pytest
import torch
from omegaconf import OmegaConf

from ladder.core.configs import load_model
from ladder.core.sizes import ModelShape
from train.loss import attach_loss, linear_cross_entropy
from train.model import attention, build_model
from scripts.bench_train import training_loss
from train.optim import make_optimizer, param_groups
from train.sizing import activation_bytes_per_sequence, derive_micro_batch
from train_fakes import SHAPE, sequences_for, tiny_run

GPU_CONFIGS = ["gpu", "fsdp", "deepspeed_zero1", "deepspeed_zero2", "deepspeed_zero3"]


def plain_and_chunked(hidden, weight, ids, z_loss, chunk_rows):
    """(total, ce, grad hidden, grad weight) of the full-logits loss and of the chunked one."""
    results = []
    for chunked in (False, True):
        h, w = hidden.detach().requires_grad_(), weight.detach().requires_grad_()
        if chunked:
            total, ce = linear_cross_entropy(h, w, ids, z_loss, chunk_rows)
        else:
            total, ce = training_loss(h @ w.T, ids, z_loss)
        total.backward()
        results.append((total.detach(), ce.detach(), h.grad, w.grad))
    return results


@pytest.mark.parametrize("chunk_rows", [7, 64, 10_000])  # not dividing the rows, several chunks, one chunk
def test_chunked_loss_equals_full_logits_loss_and_gradients(chunk_rows):
    g = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(3, 33, 40, generator=g), torch.randn(300, 40, generator=g) * 0.3
    ids = torch.randint(0, 300, (3, 33), generator=g)
    (t0, c0, gh0, gw0), (t1, c1, gh1, gw1) = plain_and_chunked(hidden, weight, ids, 1e-2, chunk_rows)
    # fp32 sums in another order: agreement to ~1e-6 relative.
    assert float(t1) == pytest.approx(float(t0), rel=1e-6) and float(c1) == pytest.approx(float(c0), rel=1e-6)
    torch.testing.assert_close(gh1, gh0, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gw1, gw0, rtol=1e-5, atol=1e-7)


def test_chunked_loss_under_bf16_autocast_matches_to_bf16_rounding():
    g = torch.Generator().manual_seed(1)
    hidden, weight = torch.randn(2, 17, 32, generator=g), torch.randn(128, 32, generator=g) * 0.3
    ids = torch.randint(0, 128, (2, 17), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (t0, c0, gh0, gw0), (t1, c1, gh1, gw1) = plain_and_chunked(hidden, weight, ids, 1e-2, 5)
    assert float(t1) == pytest.approx(float(t0), rel=1e-2) and float(c1) == pytest.approx(float(c0), rel=1e-2)
    assert gh1.dtype == hidden.dtype and gw1.dtype == weight.dtype  # fp32 master weights get fp32 gradients
    torch.testing.assert_close(gw1, gw0, rtol=2e-2, atol=2e-3)
    torch.testing.assert_close(gh1, gh0, rtol=2e-2, atol=2e-3)


def test_model_training_path_equals_logits_then_loss():
    rung = tiny_run()
    ids = sequences_for(rung).ids[:4]
    plain, fast = build_model(SHAPE, seed=3), attach_loss(build_model(SHAPE, seed=3), rung.hp.z_loss)
    total0, ce0 = training_loss(plain(input_ids=ids).logits, ids, rung.hp.z_loss)
    total0.backward()
    out = fast(input_ids=ids, labels=ids)
    out.total.backward()
    assert float(out.total) == pytest.approx(float(total0), rel=1e-6) and float(out.ce) == pytest.approx(float(ce0))
    grads0 = dict(plain.named_parameters())
    for name, p in fast.named_parameters():
        torch.testing.assert_close(p.grad, grads0[name].grad, rtol=1e-4, atol=1e-7)
    # Without labels it is the plain model: logits, as evaluation and generation expect.
    torch.testing.assert_close(fast(input_ids=ids).logits, plain(input_ids=ids).logits)
    assert type(fast) is type(plain) and fast.config.to_dict() == plain.config.to_dict()


def test_fused_adamw_steps_as_the_multi_tensor_one():
    rung = tiny_run()
    ids = sequences_for(rung).ids[:4]
    models = [build_model(SHAPE, seed=0) for _ in range(2)]
    fused = make_optimizer(models[0], rung.hp)
    assert fused.defaults["fused"]
    foreach = torch.optim.AdamW(param_groups(models[1], rung.hp.weight_decay), lr=rung.hp.lr,
                                betas=(rung.hp.beta1, rung.hp.beta2), eps=1e-8, foreach=True)
    for model, opt in zip(models, (fused, foreach)):
        for _ in range(3):
            training_loss(model(input_ids=ids).logits, ids, 0.0)[0].backward()
            opt.step()
            opt.zero_grad()
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_attention_is_chosen_explicitly_with_one_line_on_fallback(caplog):
    with caplog.at_level(logging.WARNING):
        assert attention("flash_attention_2", cuda=False) == "sdpa"
    assert [r.getMessage() for r in caplog.records] == [
        "train.attention=flash_attention_2: it needs a CUDA device; using sdpa"]
    assert attention("eager", cuda=False) == "eager"
    assert build_model(SHAPE, attn_implementation="eager").config._attn_implementation == "eager"


def test_micro_batch_is_the_largest_power_of_two_that_fits():
    shape = ModelShape(**load_model("olmo-1B"))
    h200 = 139 * 2**30
    micro = derive_micro_batch(shape, "bf16", h200)
    assert micro & (micro - 1) == 0 and micro >= 1
    state = 16 * shape.total_params
    per_seq = activation_bytes_per_sequence(shape, "bf16")
    assert state + micro * per_seq <= 0.8 * h200 < state + 2 * micro * per_seq + 2 * 2**30
    assert derive_micro_batch(shape, "bf16", h200 // 2) < micro  # less memory, fewer sequences
    assert derive_micro_batch(shape, "fp32", h200) < micro  # fp32 activations take twice the room
    # Sharded moments free room: at 100 GiB (an H100 has 80) twice the sequences fit.
    assert derive_micro_batch(shape, "bf16", 100 * 2**30, optimizer_shards=8) > derive_micro_batch(
        shape, "bf16", 100 * 2**30)
    assert derive_micro_batch(shape, "bf16", 2**30) == 1  # never below one sequence


def test_unset_micro_batch_is_derived_and_recorded(tmp_path):
    from train.config import TrainConfig, WandbConfig
    from train.loop import train_run

    rung = tiny_run(steps=3)
    cfg = TrainConfig(micro_batch_size=None, checkpoint_fractions=[1.0], progress=False,
                      wandb=WandbConfig(mode="disabled"))
    assert train_run(rung, sequences_for(rung), tmp_path, cfg).state == "done"
    # A tiny model in gigabytes of RAM: the whole per-process batch in one pass.
    assert OmegaConf.load(tmp_path / "config.yaml").micro_batch_size == rung.hp.batch_size


@pytest.mark.parametrize("name", GPU_CONFIGS)
def test_gpu_configs_compile_derive_the_micro_batch_and_check_sparsely(name):
    from pathlib import Path

    node = OmegaConf.load(Path(__file__).resolve().parents[2] / f"configs/train/{name}.yaml")
    # ZeRO-3's parameter hooks break a compiled graph at every parameter (train.config.check refuses it).
    assert node.compile is (name != "deepspeed_zero3") and node.precision == "bf16"
    assert "micro_batch_size" not in node and node.log_every >= 10
