"""Every record carries the evaluation key of its task or eval set: a checkpoint evaluated under other settings
is evaluated again, its old records kept but superseded, and the fit never mixes two keys (issue 33, item 1)."""
import json
import shutil
from dataclasses import replace

import pytest

import eval.tasks
from eval.cli import main, make_eval_hook, unevaluated
from eval.keys import evaluation_keys
from eval.run import SUPERSEDED, is_done, read_results, write_results
from eval_helpers import RUNG, config
from fit.errors import FitInputError
from fit.sources import load_points
from ladder.core.layout import RESULTS

STEPS = {10, 20}


def lines(out_dir):
    return [json.loads(line) for line in (out_dir / "rungs" / RUNG / RESULTS).read_text().splitlines()]


def fit_values(out_dir):
    """(step, metric) -> value of the points the fit reads from the ladder."""
    points = load_points(str(out_dir)).points
    return {(int(s), m): v for s, m, v in zip(points["step"], points["metric"], points["value"])}


def test_a_rerun_with_other_shots_evaluates_every_checkpoint_again_and_the_fit_reads_only_it(ladder_dir,
                                                                                             tmp_path_factory):
    """The issue's "done when": eval.num_fewshot=1 after 0 re-evaluates both checkpoints; the fit reads the
    1-shot numbers alone, the same as a ladder only ever evaluated 1-shot."""
    fresh = tmp_path_factory.mktemp("fresh")
    shutil.copytree(ladder_dir, fresh, dirs_exist_ok=True)
    assert main(config(ladder_dir)) == 0
    zero_shot = fit_values(ladder_dir)
    assert main(config(ladder_dir, "eval.num_fewshot=1")) == 0
    records = lines(ladder_dir)
    old = [r for r in records if r.get(SUPERSEDED)]
    assert {r["step"] for r in old} == STEPS and {r["eval_key"]["eval.num_fewshot"] for r in old} == {0}
    assert len(old) == len(records) / 2  # every record of both checkpoints kept, and replaced
    current = read_results(ladder_dir / "rungs" / RUNG)
    assert {r["step"] for r in current} == STEPS and {r["eval_key"]["eval.num_fewshot"] for r in current} == {1}
    assert main(config(fresh, "eval.num_fewshot=1")) == 0
    one_shot = fit_values(fresh)
    assert fit_values(ladder_dir) == one_shot != zero_shot
    assert main(config(ladder_dir, "eval.num_fewshot=1")) == 0  # the same key again: nothing to do
    assert lines(ladder_dir) == records


def test_a_rung_evaluated_under_two_keys_is_refused_by_the_fit_naming_the_setting(ladder_dir):
    checkpoint = ladder_dir / "rungs" / RUNG / "checkpoints" / "step-00000010"
    assert main(config(ladder_dir)) == 0
    assert main(config(ladder_dir, f"eval.checkpoint={checkpoint}", "eval.max_examples=3")) == 0
    # step 20's records (read first: step 10's first ones are superseded) were evaluated on eval=default's 200
    with pytest.raises(FitInputError, match=rf"run {RUNG} was evaluated with other settings .*: "
                                            r"eval.max_examples 3 \(not 200\); one fit never mixes"):
        load_points(str(ladder_dir))


def test_records_of_an_older_harness_are_evaluated_again(ladder_dir):
    cfg = config(ladder_dir)
    (ladder_dir / "rungs" / RUNG / "checkpoints" / "step-00000030").rmdir()  # its empty checkpoint, never done
    assert main(cfg) == 0
    path = ladder_dir / "rungs" / RUNG / RESULTS
    older = [{k: v for k, v in r.items() if k != "eval_key"} for r in lines(ladder_dir)]
    path.write_text("".join(json.dumps(r) + "\n" for r in older))
    assert [p.name for p in unevaluated(cfg, ladder_dir / "rungs" / RUNG)] == ["step-00000010", "step-00000020"]
    assert main(cfg) == 0
    assert unevaluated(cfg, ladder_dir / "rungs" / RUNG) == []
    assert all("eval_key" in r for r in read_results(ladder_dir / "rungs" / RUNG))
    load_points(str(ladder_dir))  # one key: the superseded older records are not read


def test_the_training_hook_evaluates_a_checkpoint_again_under_another_key(ladder_dir, model):
    checkpoint = ladder_dir / "rungs" / RUNG / "checkpoints" / "step-00000010"
    for n in (4, 4, 5):
        hook = make_eval_hook(config(ladder_dir, f"eval.derived.n_examples={n}"), ladder_dir / "rungs" / RUNG)
        hook(checkpoint, 10, model)
    old, new = ([r["eval_key"]["eval.derived.n_examples"] for r in lines(ladder_dir) if bool(r.get(SUPERSEDED)) == s]
                for s in (True, False))
    assert set(old) == {4} and set(new) == {5} and len(old) == len(new)


def test_write_results_supersedes_only_a_record_under_another_key(tmp_path):
    a, b = {"eval.num_fewshot": 0}, {"eval.num_fewshot": 5}
    first = [{"step": 1, "metric": m, "value": 1.0, "eval_key": a} for m in ("x:acc", "y:acc")]
    assert write_results(tmp_path, first) == 2
    assert write_results(tmp_path, [{**first[0], "value": 2.0, "eval_key": b}, first[1]]) == 1
    assert [(r["metric"], r["value"], r.get(SUPERSEDED, False)) for r in lines_of(tmp_path)] == [
        ("x:acc", 1.0, True), ("y:acc", 1.0, False), ("x:acc", 2.0, False)]
    assert [r["value"] for r in read_results(tmp_path)] == [1.0, 2.0]
    assert is_done(tmp_path, 1, {"x": b, "y": a}) and not is_done(tmp_path, 1, {"x": a, "y": a})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl", "results.jsonl.lock"]


def lines_of(directory):
    return [json.loads(line) for line in (directory / RESULTS).read_text().splitlines()]


def test_each_setting_that_changes_a_number_changes_the_key(ladder_dir, tmp_path, monkeypatch):
    checkpoint = ladder_dir / "rungs" / RUNG / "checkpoints" / "step-00000010"
    piqa = tmp_path / "piqa.jsonl"
    piqa.write_text(json.dumps({"goal": "g", "sol1": "a", "sol2": "b", "label": 0}) + "\n")
    base = ["eval.tasks=[derived,piqa]", f"eval.task_paths.piqa={piqa}", "eval.max_examples=null"]

    def keys(*overrides, tokenizer=checkpoint):
        return evaluation_keys(config(ladder_dir, *base, *overrides), tokenizer)

    same = keys()
    assert same["piqa"]["eval.seed"] is None and same["derived"]["eval.seed"] == 0  # nothing drawn: no seed
    assert keys("eval.seed=1")["piqa"] == same["piqa"] != keys("eval.seed=1", "eval.max_examples=5")["piqa"]
    for override in ("eval.num_fewshot=5", "eval.max_examples=5", "eval.seed=1", "eval.derived.n_choices=4",
                     "data.text_field=body"):
        assert keys(override)["derived"] != same["derived"], override
    moved = tmp_path / "moved" / "piqa.jsonl"  # the same file elsewhere: the same key
    moved.parent.mkdir()
    shutil.copy(piqa, moved)
    assert keys(f"eval.task_paths.piqa={moved}") == same
    moved.write_text(json.dumps({"goal": "h", "sol1": "a", "sol2": "b", "label": 0}) + "\n")
    assert keys(f"eval.task_paths.piqa={moved}")["piqa"]["source"] != same["piqa"]["source"]
    other_tokenizer = tmp_path / "tokenizer"
    shutil.copytree(checkpoint, other_tokenizer)
    assert keys(tokenizer=other_tokenizer) == same
    (other_tokenizer / "tokenizer_config.json").write_text("{}")
    assert keys(tokenizer=other_tokenizer)["piqa"]["tokenizer"] != same["piqa"]["tokenizer"]
    monkeypatch.setitem(eval.tasks.TASKS, "piqa", replace(eval.tasks.TASKS["piqa"], version=2))
    assert keys()["piqa"]["task_version"] == 2 and keys()["derived"] == same["derived"]


@pytest.mark.slow  # ~1 min: a tiny ladder trained, evaluated and fitted, then evaluated again
def test_ladder_run_with_other_shots_evaluates_every_checkpoint_again_and_trains_none(tiny_ladder, tmp_path):
    from ladder.orchestration.pipeline import run_ladder

    assert run_ladder(tiny_ladder()) == 0
    checkpoints = sorted((tmp_path / "run").glob("rungs/*/checkpoints/step-*"))
    trained = [c.stat().st_mtime_ns for c in checkpoints]
    assert run_ladder(tiny_ladder("eval.num_fewshot=1")) == 0
    assert [c.stat().st_mtime_ns for c in checkpoints] == trained
    for results in (tmp_path / "run").glob("rungs/*/results.jsonl"):
        records = [json.loads(line) for line in results.read_text().splitlines()]
        current = {(r["step"], r["metric"]) for r in records if not r.get(SUPERSEDED)}
        assert {r["eval_key"]["eval.num_fewshot"] for r in records if not r.get(SUPERSEDED)
                and r["metric"].startswith("derived:")} == {1}
        assert {(r["step"], r["metric"]) for r in records if r.get(SUPERSEDED)} == {
            (s, m) for s, m in current if m.startswith("derived:")}  # the held-out loss's key did not change
    load_points(str(tmp_path / "run"))  # the fit reads one key
