"""What the GPU path does, checked where a CPU can show it: the compiled graph, the loss kernels' contracts,
the default process count, the precision policy's outputs, what checkpoints keep.

The device simulation (scripts/device_sim.py) runs this file again under the GPU image's package versions
(transformers 5.17), where compiling the whole model put an explicit causal mask into the graph."""
import math
import sys
import types

import pytest
import torch

import train.backends
from ladder.core.layout import STATE_DIR, TRAINER_STATE, checkpoints
from train.backends import make_backend, process_count
from train.config import TrainConfig, WandbConfig
from train.loop import train_run
from train.loss import LossOutput, _chunk_loss_and_grad, _compiled_chunk_loss_and_grad, attach_loss, linear_cross_entropy
import train.model
from train.model import build_model, compile_blocks
from train.optim import make_optimizer, make_scheduler
from train_fakes import SHAPE, sequences_for, tiny_run


def config(**overrides) -> TrainConfig:
    base = dict(micro_batch_size=4, checkpoint_fractions=[0.25, 0.5, 1.0], progress=False,
                wandb=WandbConfig(mode="disabled"), device="cpu")
    return TrainConfig(**{**base, **overrides})


class Recorder:
    """A torch.compile backend that keeps every graph it is handed and runs it uncompiled."""

    def __init__(self):
        self.graphs = []

    def __call__(self, gm, example_inputs):
        self.graphs.append(gm)
        return gm.forward

    def sdpa_calls(self):
        return [node for gm in self.graphs for node in gm.graph.nodes
                if "scaled_dot_product_attention" in str(node.target)]


def test_blocks_compile_to_one_graph_whose_attention_is_causal_without_a_mask():
    shape = SHAPE.__class__(**{**SHAPE.__dict__, "n_layers": 4})
    model = attach_loss(build_model(shape), 1e-4)
    recorder = Recorder()
    compile_blocks(model, backend=recorder)
    ids = sequences_for(tiny_run(shape=shape)).ids[:2]
    out = model(input_ids=ids, labels=ids)
    out.total.backward()
    # Every block runs the one graph: no per-layer recompiles (a KV cache's layer index would force them).
    assert len(recorder.graphs) == 1
    (sdpa,) = recorder.sdpa_calls()
    assert sdpa.kwargs.get("attn_mask") is None and sdpa.kwargs.get("is_causal") is True


def test_each_shape_compiles_once_per_process_with_static_shapes(monkeypatch):
    """A process that trains several sizes, each at its own micro-batch: each compiles its blocks once, static,
    and the same size again compiles nothing (without the reset the second size's graph would take its batch
    dimension as a symbol, and the tenth size would run eagerly)."""
    wide = SHAPE.__class__(**{**SHAPE.__dict__, "d_model": 2 * SHAPE.d_model, "mlp_hidden": 2 * SHAPE.mlp_hidden})
    torch.compiler.reset()
    monkeypatch.setattr(train.model, "_COMPILED_FOR", [None])  # a fresh process
    dynamic = []

    def backend(gm, example_inputs):
        dynamic.append(any(isinstance(x, (int, torch.SymInt)) for x in example_inputs))
        return gm.forward

    for shape, micro in ((SHAPE, 2), (wide, 4), (wide, 4)):
        model = attach_loss(build_model(shape), 1e-4)
        compile_blocks(model, key=(shape, micro), backend=backend)
        ids = sequences_for(tiny_run(shape=shape)).ids[:micro]
        model(input_ids=ids, labels=ids).total.backward()
    assert dynamic == [False, False]


def test_compiled_chunk_of_the_loss_equals_the_eager_one():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(37, 300, generator=g) * 3, torch.randint(0, 300, (37,), generator=g)
    eager = _chunk_loss_and_grad(logits.clone(), targets, 1e-2, 1 / 37, True)
    compiled = _compiled_chunk_loss_and_grad()(logits.clone(), targets, 1e-2, 1 / 37, True)
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    hidden, weight = torch.randn(2, 20, 16, generator=g), torch.randn(300, 16, generator=g) * 0.3
    ids = torch.randint(0, 300, (2, 20), generator=g)
    plain, fused = (linear_cross_entropy(hidden, weight, ids, 1e-2, 7, compiled=c) for c in (False, True))
    torch.testing.assert_close(fused.total, plain.total)


@pytest.mark.parametrize("returns", ["tuple", "CrossEntropyOutput"])  # liger-kernel before / from 0.6.4
def test_liger_loss_is_read_from_either_return_type(monkeypatch, returns):
    """liger-kernel needs CUDA; its function is stood in for by the chunked loss returning liger's types."""

    class CrossEntropyOutput:  # liger_kernel.transformers.functional.CrossEntropyOutput's fields
        def __init__(self, loss, z_loss):
            self.loss, self.z_loss, self.token_accuracy, self.predicted_tokens = loss, z_loss, None, None

    def fused(h, weight, targets, lse_square_scale, return_z_loss):
        # (rows, d) and their targets as one sequence: hidden positions 0..n-1 predict tokens 1..n.
        total, ce = linear_cross_entropy(torch.cat([h, h[-1:]])[None], weight, torch.cat([targets[:1], targets])[None],
                                         lse_square_scale)
        return (total, total - ce) if returns == "tuple" else CrossEntropyOutput(total, total - ce)

    module = types.ModuleType("liger_kernel.transformers.functional")
    module.liger_fused_linear_cross_entropy = fused
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers.functional", module)
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    g = torch.Generator().manual_seed(0)
    hidden, weight, ids = torch.randn(2, 9, 16, generator=g), torch.randn(64, 16, generator=g), torch.randint(0, 64, (2, 9))
    out = linear_cross_entropy(hidden, weight, ids, 1e-2, liger=True)
    monkeypatch.undo()
    want = linear_cross_entropy(hidden, weight, ids, 1e-2)
    assert isinstance(out, LossOutput)
    torch.testing.assert_close(out.total, want.total)
    torch.testing.assert_close(out.ce, want.ce)


def test_default_process_count_is_the_visible_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    assert process_count(TrainConfig(device="auto")) == 8
    assert process_count(TrainConfig(device="cuda", num_processes=2)) == 2
    assert process_count(TrainConfig(device="cpu")) == 1


def test_shipped_gpu_configs_leave_the_process_count_to_the_node():
    from ladder.orchestration.compose import load

    for name in ("gpu", "fsdp", "deepspeed_zero1", "deepspeed_zero2", "deepspeed_zero3"):
        assert load([f"train={name}"]).train.num_processes is None, name


def test_zero3_with_compile_is_refused_naming_the_keys():
    from ladder.core.configs import ConfigError

    with pytest.raises(ConfigError, match="train.compile=true with DeepSpeed ZeRO-3"):
        make_backend(TrainConfig(backend="deepspeed", zero_stage=3, compile=True))


def test_the_model_evaluation_gets_returns_bf16_logits_under_bf16_training():
    """No fp32 output wrapper stays on the live model (accelerate's mixed precision left one): held-out loss
    over a 100k vocabulary would hold the whole batch's logits in fp32."""
    rung = tiny_run()
    cfg = config(precision="bf16")
    backend = make_backend(cfg)
    model = attach_loss(build_model(rung.shape), rung.hp.z_loss)
    backend.prepare(model, lambda m: make_optimizer(m, rung.hp),
                    lambda opt: make_scheduler(opt, rung.curve), 1, rung.hp)
    ids = sequences_for(rung).ids[:2]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert backend.unwrapped()(input_ids=ids).logits.dtype == torch.bfloat16


def test_only_the_newest_checkpoint_keeps_the_optimizer_state(tmp_path):
    rung = tiny_run()
    assert train_run(rung, sequences_for(rung), tmp_path, config()).state == "done"
    found = checkpoints(tmp_path)
    assert [step for step, _ in found] == [3, 6, 12]
    assert [(path / STATE_DIR).is_dir() for _, path in found] == [False, False, True]
    assert all((path / "model.safetensors").is_file() and (path / TRAINER_STATE).is_file() for _, path in found)


def test_a_fork_step_keeps_its_state_for_the_branches(tmp_path):
    from dataclasses import replace

    rung = replace(tiny_run(), name="trunk", save_steps=(3,), keep_steps=(3,))
    assert train_run(rung, sequences_for(rung), tmp_path, config()).state == "done"
    assert [(step, (path / STATE_DIR).is_dir()) for step, path in checkpoints(tmp_path)] == [
        (3, True), (6, False), (12, True)]


def test_fsdp_in_one_process_trains_as_plain_training_does(tmp_path):
    """train.distributed=fsdp started without a launcher shards over a world of one (torch's FSDP2, gloo)."""
    rung = tiny_run()
    plain = train_run(rung, sequences_for(rung), tmp_path / "plain", config())
    sharded = train_run(rung, sequences_for(rung), tmp_path / "fsdp", config(distributed="fsdp"))
    assert sharded.state == "done" and math.isclose(sharded.loss, plain.loss, rel_tol=1e-5)
    assert isinstance(train.backends.make_backend(config(distributed="fsdp")), train.backends.FSDPBackend)


def test_datasheet_peak_tells_the_sxm_parts_from_pcie_and_nvl():
    from train.metrics import datasheet_peak

    assert datasheet_peak("NVIDIA H100 80GB HBM3") == datasheet_peak("NVIDIA H200") == 989e12
    assert datasheet_peak("NVIDIA H100 PCIe") == 756e12 and datasheet_peak("NVIDIA H100 NVL") == 835e12
    assert datasheet_peak("NVIDIA H200 NVL") == 835e12 and datasheet_peak("NVIDIA T4") is None
