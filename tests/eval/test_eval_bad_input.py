"""Bad task files, examples a model cannot score and bad eval settings: one line naming the task, row,
key or file, exit code 2 from `ladder eval` (issue 15)."""
import gzip
import json

import pytest
import torch
from omegaconf import OmegaConf

from eval.cli import main
from eval.run import LMSet, evaluate_model
from eval.tasks import TaskError, load_task
from ladder.core.layout import CONFIG
from ladder.core.plan import build_plan
from ladder.orchestration.compose import load

PIQA = {"goal": "How do I dry a wet phone?", "sol1": "Put it in rice.", "sol2": "Put it in water.", "label": 0}


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_a_row_missing_a_field_names_the_row_and_field(tmp_path):
    rows = [PIQA, {k: v for k, v in PIQA.items() if k != "sol2"}]
    with pytest.raises(TaskError, match=r"task piqa: .*piqa\.jsonl row 1: no value for field\(s\) sol2$"):
        load_task("piqa", write(tmp_path / "piqa.jsonl", rows))


@pytest.mark.parametrize("name", ["piqa.jsonl", "piqa.json"])
def test_a_task_file_that_is_not_json_says_where_it_fails_to_parse(tmp_path, name):
    (tmp_path / name).write_text("goal,sol1,sol2,label\nx,a,b,0\n")
    with pytest.raises(TaskError, match=rf"task piqa: could not read .*{name} \(ArrowInvalid: JSON parse error") as exc:
        load_task("piqa", str(tmp_path / name))
    assert "DatasetGenerationError" not in str(exc.value)


@pytest.mark.parametrize("name,write_empty", [
    ("piqa.jsonl", lambda p: p.write_text("")),
    ("piqa.json.gz", lambda p: gzip.open(p, "wt").close()),
])
def test_an_empty_task_file_is_named(tmp_path, name, write_empty):
    write_empty(tmp_path / name)
    with pytest.raises(TaskError, match=rf"task piqa: .*{name} is empty$"):
        load_task("piqa", str(tmp_path / name))


RUNG = "smoke-24-smoke-M5"


@pytest.fixture
def short_window(tmp_path, tokenizer, make_model):
    """out_dir with one rung whose checkpoint is a model with a 16-token window."""
    rung = next(r for r in build_plan(load()).rungs if r.rung_id == RUNG)
    directory = tmp_path / "rungs" / RUNG
    directory.mkdir(parents=True)
    (directory / CONFIG).write_text(OmegaConf.to_yaml({"rung": rung.as_dict()}))
    checkpoint = directory / "checkpoints" / "step-00000010"
    make_model(seq_len=16).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    return tmp_path


def ladder_eval(capsys, out_dir, *overrides) -> str:
    """The error line `ladder eval` prints (after any progress bar of `datasets`); it must exit with 2."""
    assert main(load([f"out_dir={out_dir}", *overrides])) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().split("\r")[-1].splitlines()[-1]


def test_a_continuation_longer_than_the_window_is_a_message_not_a_traceback(short_window, capsys):
    long = dict(PIQA, sol1="Put it in a bowl of dry uncooked rice for two whole days, then try it " * 3)
    path = write(short_window / "piqa.jsonl", [long, PIQA])
    err = ladder_eval(capsys, short_window, "eval.tasks=[piqa]", f"eval.task_paths.piqa={path}")
    assert err.startswith("ladder eval: error: task piqa: a continuation of ")
    assert "' Put it in a bowl" in err and "leaves no room for context in the model's 16-token window" in err


@pytest.mark.slow  # a torchrun launch
def test_an_example_only_one_rank_holds_stops_every_rank_with_its_message(short_window, launch_eval):
    """Rank 0 takes the unscorable example, rank 1 the other: both print the line and stop, none is
    left in a collective waiting for the other (a hang under NCCL, a gloo traceback here)."""
    long = dict(PIQA, sol1="Put it in a bowl of dry uncooked rice for two whole days, then try it " * 3)
    path = write(short_window / "piqa.jsonl", [long, PIQA])
    proc = launch_eval(load([f"out_dir={short_window}", "eval.tasks=[piqa]", f"eval.task_paths.piqa={path}"]),
                  "ladder-eval")
    # `ladder eval`'s code for bad input; torchrun may stop the second worker once the first has exited.
    assert proc.returncode != 0 and "exitcode  : 2 " in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.count("ladder eval: error: task piqa: a continuation of ") == 2, proc.stderr[-3000:]


def test_held_out_sequences_longer_than_the_window_name_the_set(tokenizer, make_model):
    with pytest.raises(TaskError, match=r"eval.lm_sets.c4: sequence 0 has 40 tokens, more than the model's 16"):
        evaluate_model(make_model(seq_len=16), tokenizer, lm_sets={"c4": LMSet([list(range(1, 41))])}, tasks={},
                       batch_size=2)


@pytest.mark.parametrize("override,message", [
    ("eval.batch_size=0", "eval.batch_size=0: must be at least 1"),
    ("eval.max_examples=-1", "eval.max_examples=-1: must be at least 1"),
    ("eval.max_sequences=0", "eval.max_sequences=0: must be at least 1"),
    ("eval.derived.n_choices=1", "eval.derived.n_choices=1: must be at least 2"),
    ("eval.task_paths.piqq=/x.jsonl", "eval.task_paths.piqq: unknown task; known: arc_challenge"),
    ("eval.fewshot_paths.piqq=/x.jsonl", "eval.fewshot_paths.piqq: unknown task; known: arc_challenge"),
    ("eval.task_paths.derived=/x.jsonl", "eval.task_paths.derived: task derived is built from held-out documents"),
    ("eval.tasks=[piqq]", "eval.tasks: unknown task 'piqq'; known: arc_challenge"),
    ("eval.device=mps", "eval.device=mps: expected auto, cpu, cuda or cuda:N"),
    ("eval.precision=fp16", "eval.precision: expected one of ('auto', 'fp32', 'bf16'), got 'fp16'"),
    ("eval.device=nope", "eval.device=nope: "),
    ("eval.tasks=[] eval.lm_sets.c4=/", "eval.lm_sets.c4: /: no manifest.json"),
])
def test_bad_eval_settings_are_named_before_any_work(short_window, capsys, override, message):
    assert ladder_eval(capsys, short_window, *override.split()).startswith(f"ladder eval: error: {message}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_cuda_device_without_cuda_is_named(short_window, capsys, device):
    assert f"eval.device={device} but no CUDA device is visible" in ladder_eval(capsys, short_window,
                                                                                f"eval.device={device}")
