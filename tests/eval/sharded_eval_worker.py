"""A torchrun worker for tests/eval/test_eval_sharded.py.

    python -m torch.distributed.run --nproc-per-node 2 sharded_eval_worker.py CONFIG ladder-eval
        what `ladder eval` does after composing its config: eval.cli.main (it joins the process group)
    ... sharded_eval_worker.py CONFIG lockstep OUT_DIR
        evaluate_model on eval.checkpoint with lockstep shards; each rank writes OUT_DIR/rank<r>.json
        with the results and how many forwards its model ran
"""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import OmegaConf

from eval.checkpoints import load_checkpoint
from eval.cli import main, open_lm_sets, prepare_tasks
from eval.run import evaluate_model
from eval.sharding import Shards

torch.set_num_threads(1)
cfg = OmegaConf.load(sys.argv[1])
if sys.argv[2] == "ladder-eval":
    sys.exit(main(cfg))
dist.init_process_group("gloo")
model, tokenizer = load_checkpoint(Path(cfg.eval.checkpoint), Path(cfg.eval.tokenizer))
forwards = []
model.register_forward_pre_hook(lambda module, args: forwards.append(1))
results = evaluate_model(model, tokenizer, lm_sets=open_lm_sets(cfg), tasks=prepare_tasks(cfg),
                         batch_size=cfg.eval.batch_size, shards=Shards.of_process_group(lockstep=True))
out = Path(sys.argv[3]) / f"rank{dist.get_rank()}.json"
out.write_text(json.dumps({"results": results, "forwards": len(forwards)}))
dist.destroy_process_group()
