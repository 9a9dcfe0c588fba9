"""`ladder run` / `ladder eval` point evaluation at the ladder's held-out splits (rung.with_heldout)."""
from ladder.core.plan import build_plan
from ladder.orchestration.rung import with_heldout

ONE_RUNG = ("ladder.sizes=[smoke-24]", "ladder.multipliers=[1]")


def test_held_out_documents_are_given_only_to_a_task_built_from_them(tiny_ladder):
    def heldout(*overrides):
        cfg = tiny_ladder(*ONE_RUNG, *overrides)
        plan = build_plan(cfg)
        return with_heldout(cfg, plan, plan.rungs[0].shape.seq_len).eval

    built = heldout("eval.tasks=[derived]")
    assert built.derived.docs.endswith("documents.jsonl") and set(built.lm_sets) == {"c4"}
    read = heldout("eval.tasks=[piqa]", "eval.task_paths.piqa=/data/piqa.jsonl")
    assert read.derived.docs is None and set(read.lm_sets) == {"c4"}
