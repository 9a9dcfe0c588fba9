"""Bad input reaches the user as one line naming the key, file or row, with exit code 2, from every
command that can meet it: never a library traceback, never a silently wrong result (issue 15)."""
import gzip
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from ladder.orchestration.cli import main
from ladder.orchestration.compose import load
from train.data.sources import DataError, Stats, documents


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every command gets its own cache, so nothing here builds the default corpus."""
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def error(capsys, *argv) -> str:
    """The one line a failing command prints; it must exit with 2."""
    rc = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.count("\n") == 0 and err.startswith(f"ladder {argv[0]}: error: "), err
    return err


def jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def local_data(path):
    """Overrides that read a ladder's data from `path` (its own tokenizer trained there too)."""
    return ["ladder.datasets=[c4]", "data=c4", f"data.path={path}", f"ladder.tokenizer.train_path={path}",
            "ladder.tokenizer.train_vocab_size=300"]


# Silent wrong behaviour

def test_an_unknown_launcher_is_refused_not_run_locally(capsys):
    assert "launcher.name=nope: unknown launcher; known: local, slurm" in error(capsys, "plan", "launcher.name=nope")


def test_plan_names_an_unknown_task_in_its_evaluation_cost(capsys):
    assert "eval.tasks: unknown task 'piqq'" in error(capsys, "plan", "eval.tasks=[piqq]")


def test_every_task_has_a_cost_in_the_plan():
    from eval.config import EvalConfig
    from eval.cost import task_tokens
    from eval.tasks import TASKS

    assert all(task_tokens(name, EvalConfig(), 2048) > 0 for name in TASKS)


def test_a_bad_line_after_a_null_text_is_named_not_a_json_traceback(tmp_path):
    """A null text makes the reader search the whole file for a record without the field; a bad line
    past the `datasets` reader's first 10 MB block is met by that search first."""
    good = json.dumps({"text": "document of the river " * 20}) + "\n"
    n = (12 << 20) // len(good)
    shard = tmp_path / "c4" / "a.jsonl"
    jsonl(shard, [{"text": None}])
    with shard.open("a") as f:
        f.write(good * n + "{not json\n")
    with pytest.raises(DataError, match=rf"a\.jsonl: line {n + 2}: invalid JSON"):
        list(documents({"name": "c4", "path": str(shard)}))


def test_plan_refuses_an_unknown_dataset_like_run(capsys):
    assert "ladder.datasets: unknown data 'nope'" in error(capsys, "plan", "ladder.datasets=[nope]")


def test_a_record_without_the_text_field_is_named_even_after_good_ones(tmp_path, capsys):
    shard = jsonl(tmp_path / "c4" / "a.jsonl", [{"text": f"document {i} of the river"} for i in range(30)]
                  + [{"body": "no text here"}])
    with pytest.raises(DataError, match=r"a\.jsonl: record 31 has no field 'text' \(fields: body\)"):
        list(documents({"name": "c4", "path": str(shard)}))
    assert "record 31 has no field 'text'" in error(capsys, "prepare", *local_data(shard.parent))


def test_null_text_is_still_skipped_and_counted(tmp_path):
    shard = jsonl(tmp_path / "a.jsonl", [{"text": "first"}, {"text": None}, {"text": "last"}])
    stats = Stats()
    assert list(documents({"name": "c4", "path": str(shard)}, stats)) == ["first", "last"]
    assert stats.skipped_empty == 1


@pytest.fixture
def points(tmp_path):
    """A CSV of eight runs of a known law (tests/fit/test_run.py)."""
    rows = [{"run": f"r{n:.0f}-{m}", "params": n, "tokens": n * m, "c4:loss": 1.8 + 400 / n ** 0.34 + 410 / (n * m) ** 0.28}
            for n in (190e6, 370e6, 760e6, 1.3e9) for m in (20, 40)]
    path = tmp_path / "points.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def fit_args(points, tmp_path, *more):
    return ["fit", f"results={points}", "method=chinchilla", "bootstrap=0", f"out={tmp_path}/report", *more]


@pytest.mark.parametrize("target,message", [
    ("{params:-7e9,tokens:1e11}", "params=-7000000000.0 .* must be a positive number"),
    ("{params:7e9,tokens:0}", "tokens=0 .* must be a positive number"),
    ("{params:abc,tokens:1e11}", "params='abc' .* must be a positive number"),
    ("{size:190M,multiplier:-2}", "multiplier=-2 .* must be a positive number"),
    ("190M-0", "targets: multiplier='0' of target '190M-0' must be a positive number"),  # was a prediction of inf
])
def test_fit_refuses_a_target_that_is_not_positive(points, tmp_path, capsys, target, message):
    assert re.search(message, error(capsys, *fit_args(points, tmp_path, f"targets=[{target}]")))
    assert not (tmp_path / "report").exists()


def test_fit_refuses_a_negative_bootstrap_like_plan_and_run(points, tmp_path, capsys):
    assert "fit.bootstrap=-1: must be 0" in error(capsys, *fit_args(points, tmp_path, "bootstrap=-1"))
    assert "fit.bootstrap=-1" in error(capsys, "plan", "fit.bootstrap=-1")
    assert "fit.interval=1.5" in error(capsys, "run", "fit.interval=1.5")


def test_the_documented_task_path_override_needs_no_plus():
    cfg = load(["eval=olmo", "eval.task_paths.piqa=/data/piqa.jsonl", "eval.task_paths.piqa=/data/piqa2.jsonl",
                "eval.lm_sets.c4=/data/c4-val", "eval.task_paths={hellaswag:/data/hs.jsonl}"])
    assert dict(cfg.eval.task_paths) == {"piqa": "/data/piqa2.jsonl", "hellaswag": "/data/hs.jsonl"}
    assert dict(cfg.eval.lm_sets) == {"c4": "/data/c4-val"}
    assert load(["+eval.task_paths.piqa=/x"]).eval.task_paths.piqa == "/x"  # the old spelling still works


def test_a_task_path_for_an_unknown_task_is_refused(capsys):
    assert "eval.task_paths.piqq: unknown task" in error(capsys, "eval", "task_paths.piqq=/data/piqa.jsonl")


# Tracebacks instead of messages

def test_fit_names_an_empty_csv(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    assert f"{tmp_path}/empty.csv: empty file" in error(capsys, "fit", f"results={tmp_path}/empty.csv")


@pytest.mark.parametrize("column,line", [("params", 4), ("c4:loss", 7)])
def test_fit_names_the_cell_that_is_not_a_number(points, tmp_path, capsys, column, line):
    df = pd.read_csv(points).astype(object)
    df.loc[line - 2, column] = "n/a?"
    df.to_csv(points, index=False)
    assert f"{points}: line {line}, column '{column}': 'n/a?' is not a number" in error(
        capsys, *fit_args(points, tmp_path))


def test_fit_as_gadre_data_of_a_file_that_is_not_says_so(points, tmp_path, capsys):
    assert "not a Gadre et al. exp_data folder" in error(capsys, *fit_args(points, tmp_path, "format=gadre"))


@pytest.mark.parametrize("command", ["run", "train"])
def test_out_dir_that_is_a_file_or_under_one(tmp_path, capsys, command):
    (tmp_path / "file").write_text("mine")
    assert f"out_dir={tmp_path}/file: is a file, not a directory" in error(capsys, command, f"out_dir={tmp_path}/file")
    assert f"out_dir={tmp_path}/file/run: {tmp_path}/file is a file" in error(
        capsys, command, f"out_dir={tmp_path}/file/run")
    assert (tmp_path / "file").read_text() == "mine"


def test_status_and_fit_outputs_that_are_files(points, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert "is a file" in error(capsys, "status", f"out_dir={tmp_path}/file")
    assert f"out={tmp_path}/file: is a file" in error(capsys, *fit_args(points, tmp_path, f"out={tmp_path}/file"))


def _unwritable_dir(tmp_path):
    """A directory this process cannot write into: permission bits for a user; root ignores them, so a
    read-only mount (/sys in most containers) for root, else the test is skipped."""
    if os.geteuid() != 0:
        path = tmp_path / "locked"
        path.mkdir(mode=0o500)
        return path
    for path in ("/sys", "/proc/sys"):
        try:
            tempfile.TemporaryFile(dir=path).close()
        except OSError:
            return path
    pytest.skip("no directory here that root cannot write into")


def test_out_dir_and_cache_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    locked = _unwritable_dir(tmp_path)
    assert f"out_dir={locked}: cannot write there" in error(capsys, "train", f"out_dir={locked}")
    monkeypatch.setenv("LADDER_CACHE", str(locked))
    assert f"LADDER_CACHE={locked}: cannot write there" in error(capsys, "prepare")


@pytest.mark.parametrize("command", ["prepare", "run", "train", "eval"])
def test_a_cache_that_is_a_file(tmp_path, capsys, monkeypatch, command):
    (tmp_path / "file").write_text("mine")
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "file"))
    assert f"LADDER_CACHE={tmp_path}/file: is a file" in error(capsys, command, f"out_dir={tmp_path}/run")
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.parametrize("name,write", [
    ("a.jsonl", lambda p: p.write_text("")),
    ("a.jsonl", lambda p: p.write_text("\n  \n")),
    ("a.json.gz", lambda p: gzip.open(p, "wt").close()),
])
def test_an_empty_shard_is_named(tmp_path, capsys, name, write):
    good = jsonl(tmp_path / "c4" / "0.jsonl", [{"text": f"document {i} of the river"} for i in range(30)])
    write(good.parent / name)
    with pytest.raises(DataError, match=rf"{name}: empty file \(no records\)") as exc:
        list(documents({"name": "c4", "path": str(good.parent)}))
    assert "StopIteration" not in str(exc.value)
    assert f"{name}: empty file" in error(capsys, "prepare", *local_data(good.parent))


# Found while hunting past the list

@pytest.mark.parametrize("override,message", [
    ("ladder.targets=[{name:x,size:nope,multiplier:20}]", "ladder.targets[x]: unknown model 'nope'"),
    ("ladder.extra_rungs=[{size:nope,multiplier:20}]", "ladder.extra_rungs: unknown model 'nope'"),
    ("ladder.extra_rungs=[{size:smoke-24,multiplier:0}]", "ladder.extra_rungs: token multiplier must be positive"),
])
def test_plan_names_the_key_of_a_bad_target_or_extra_rung(capsys, override, message):
    assert message in error(capsys, "plan", override)


@pytest.mark.parametrize("override,message", [
    ("data.val_tokens=-5", "data.val_tokens=-5: must be at least 1"),
    ("data.num_proc=0", "data.num_proc=0: must be at least 1"),
    ("data.token_dtype=uint8", "data.token_dtype must be auto, uint16 or uint32, not 'uint8'"),
    ("ladder.tokenizer.name_or_path={tmp}/file", "ladder.tokenizer.name_or_path={tmp}/file: could not load a tokenizer"),
    ("ladder.tokenizer.name_or_path={tmp}", "{tmp}: not a tokenizer directory"),
])
def test_prepare_names_a_bad_data_or_tokenizer_setting(tmp_path, capsys, override, message):
    shard = jsonl(tmp_path / "c4" / "a.jsonl", [{"text": f"document {i} of the river"} for i in range(30)])
    (tmp_path / "file").write_text("mine")
    override, message = override.format(tmp=tmp_path), message.format(tmp=tmp_path)
    assert message in error(capsys, "prepare", *local_data(shard.parent), override)


@pytest.mark.parametrize("override,message", [
    ("train.backend=nope", "train.backend: expected one of ('accelerate', 'deepspeed'), got 'nope'"),
    ("train.device=nope", "train.device: expected one of ('auto', 'cpu', 'cuda'), got 'nope'"),
    ("train.loss=nope", "train.loss: expected one of ('chunked', 'liger'), got 'nope'"),
    ("train.collective_timeout_min=0", "train.collective_timeout_min=0: must be positive"),
    ("ladder.lr_schedule=nope", "ladder.lr_schedule: expected one of ('cosine', 'wsd', 'wsds', 'branch'), got 'nope'"),
    ("train.attention=flash", "train.attention: expected one of ('sdpa', 'flash_attention_2', 'eager'), got 'flash'"),
    ("train.micro_batch_size=0", "train.micro_batch_size=0: must be at least 1"),
    ("train.num_processes=0", "train.num_processes=0: must be at least 1"),
    ("train.log_every=0", "train.log_every=0: must be at least 1"),
    ("train.checkpoint_fractions=[0.5,2.0]", "train.checkpoint_fractions must lie in (0, 1], got [2.0]"),
])
@pytest.mark.parametrize("command", ["plan", "train"])
def test_bad_train_settings_fail_the_command_once_before_any_rung(tmp_path, capsys, command, override, message):
    assert message in error(capsys, command, f"out_dir={tmp_path}/run", override)
    assert not (tmp_path / "run").exists()


# Messages found trying the project as a new user (issue 29)

def test_a_value_holding_an_equals_sign_is_read_whole(capsys):
    from ladder.orchestration.cli import scoped

    assert load(["out_dir=/tmp/a=b"]).out_dir == "/tmp/a=b"
    assert load(scoped(["out=/tmp/x=y=z"], "fit")).fit.out == "/tmp/x=y=z"
    message = error(capsys, "plan", "ladder.sizes=[a=b")
    assert "cannot read 'ladder.sizes=[a=b'" in message and not message.endswith("None")


def test_the_prepare_example_of_the_help_prepares_that_dataset_from_that_path(tmp_path, capsys, cache):
    """`ladder prepare ladder=smoke data=c4 data.path=DIR` (its --help example) prepares c4 from DIR, and
    refuses a DIR that does not exist before it builds a tokenizer; a ladder that lists its datasets refuses
    settings of one it does not train on."""
    missing = tmp_path / "c4-en"
    assert f"c4: data.path={missing}: no such file or directory" in error(
        capsys, "prepare", "ladder=smoke", "data=c4", f"data.path={missing}")
    assert not (cache / "tokenizers").exists() and not (cache / "corpus").exists()
    shard = jsonl(missing / "a.jsonl", [{"text": f"document {i} of the river"} for i in range(300)])
    assert main(["prepare", "ladder=smoke", "data=c4", f"data.path={shard.parent}", "data.val_tokens=200",
                 f"ladder.tokenizer.train_path={shard.parent}", "ladder.tokenizer.train_vocab_size=300"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("c4 (seq_len 128): train ") and "smoke (seq_len" not in out
    assert "ladder smoke trains on c4, redpajama (ladder.datasets), not smoke" in error(
        capsys, "plan", "ladder.datasets=[c4,redpajama]", "data.path=/x")


def test_choosing_a_model_says_that_sizes_go_in_the_ladder(capsys):
    assert "name sizes in the ladder instead: ladder.sizes=[olmo-1B]" in error(capsys, "plan", "model=olmo-1B")


def test_fit_names_an_unknown_target_size(points, tmp_path, capsys):
    message = error(capsys, *fit_args(points, tmp_path, "targets=[99B-5T]"))
    assert "unknown target '99B-5T'" in message and "size '99B' is not in the data" in message


def test_status_of_a_directory_that_does_not_exist_says_so(tmp_path, capsys):
    assert f"out_dir={tmp_path}/nope: no such directory" in error(capsys, "status", f"out_dir={tmp_path}/nope")


# Issue 27: launcher keys, saved files, a read-only rung, a full disk

@pytest.mark.parametrize("override,message", [
    ("launcher.gpus=0", "launcher.gpus=0: must be at least 1"),
    ("launcher.gpus=-1", "launcher.gpus=-1: must be at least 1"),
    ("launcher.max_time_min=0", "launcher.max_time_min=0: must be at least launcher.min_time_min="),
    ("launcher.expected_mfu=0", "launcher.expected_mfu=0.0: must be positive"),
    ("launcher.expected_mfu=1.5", "launcher.expected_mfu=1.5: a share of the peak, at most 1"),
    ("launcher.cpu_flops=0", "launcher.cpu_flops=0.0: must be positive"),
    ("launcher.time_min=-5", "launcher.time_min=-5: must be at least 1"),
    ("launcher.nodes=0", "launcher.nodes=0: must be at least 1"),
    ("launcher.mem_gb=-4", "launcher.mem_gb=-4: must be at least 1"),
    ("launcher.max_parallel=0", "launcher.max_parallel=0: must be at least 1"),
    ("launcher.gpus_per_node=-1", "launcher.gpus_per_node=-1: must be at least 0"),
])
@pytest.mark.parametrize("launcher", ["slurm", "slurm_cpu"])
def test_bad_launcher_settings_are_refused_at_composition(tmp_path, capsys, launcher, override, message):
    assert message in error(capsys, "plan", f"launcher={launcher}", override)
    assert message in error(capsys, "run", f"launcher={launcher}", f"out_dir={tmp_path}/run", override)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override,message", [
    ("launcher.devices=0", "launcher.devices=0: must be at least 1 (null: the visible GPUs)"),
    ("launcher.job_start_s=-5", "launcher.job_start_s=-5.0: must be at least 0"),
])
def test_bad_local_launcher_settings_are_refused_by_the_plan(tmp_path, capsys, override, message):
    """The packing of jobs onto a node's devices: no device, or a job that starts before it is launched, plans
    nonsense (issue 40 item 4)."""
    assert message in error(capsys, "plan", "ladder=node", override)
    assert message in error(capsys, "run", f"out_dir={tmp_path}/run", override)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("launcher", ["slurm", "slurm_cpu"])
@pytest.mark.parametrize("command", ["run", "train", "prepare"])
def test_slurm_without_a_cluster_is_one_line_before_any_work(tmp_path, capsys, cache, command, launcher, monkeypatch):
    which = shutil.which  # a machine without Slurm, whether or not this one has it
    monkeypatch.setattr(shutil, "which", lambda c, *a, **k: None if c in ("sbatch", "srun", "scontrol")
                        else which(c, *a, **k))
    message = error(capsys, command, f"launcher={launcher}", f"out_dir={tmp_path}/run")
    assert "launcher.name=slurm: no Slurm here (sbatch, srun and scontrol not on PATH)" in message
    assert not (cache / "tokens").exists() and not (cache / "corpus").exists()  # before the data is prepared
    assert not (tmp_path / "run").exists()  # nor an empty slurm/ folder left behind


def _fake_slurm(tmp_path, monkeypatch, controller: str) -> None:
    """sbatch, srun and an `scontrol ping` that says `controller` first on PATH: a machine with Slurm's commands,
    whether or not this one has them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("sbatch", "exit 1"), ("srun", "exit 1"),
                       ("scontrol", f"echo 'Slurmctld(primary) at localhost is {controller}'; "
                                    f"[ {controller} = UP ]")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


@pytest.mark.parametrize("command", ["run", "prepare"])
def test_slurm_whose_controller_does_not_answer_is_one_line_before_any_work(tmp_path, capsys, cache, command,
                                                                            monkeypatch):
    """sbatch on PATH but no slurmctld: `scontrol ping` says DOWN, and nothing is prepared or submitted."""
    _fake_slurm(tmp_path, monkeypatch, "DOWN")
    message = error(capsys, command, "launcher=slurm", f"out_dir={tmp_path}/run", f"launcher.folder={tmp_path}/jobs")
    assert "Slurm's controller does not answer (`scontrol ping`: Slurmctld(primary) at localhost is DOWN)" in message
    assert not (cache / "tokens").exists() and not (cache / "corpus").exists() and not (tmp_path / "jobs").exists()


def test_an_unwritable_slurm_folder_is_refused(tmp_path, capsys, read_only, monkeypatch):
    _fake_slurm(tmp_path, monkeypatch, "UP")
    (tmp_path / "locked").mkdir()
    with read_only(tmp_path / "locked"):
        assert f"launcher.folder={tmp_path}/locked/jobs: cannot write there" in error(
            capsys, "run", "launcher=slurm", f"out_dir={tmp_path}/run", f"launcher.folder={tmp_path}/locked/jobs")
    (tmp_path / "file").write_text("mine")
    assert f"launcher.folder={tmp_path}/file: is a file" in error(
        capsys, "train", "launcher=slurm", f"out_dir={tmp_path}/run", f"launcher.folder={tmp_path}/file")


def _fit_settings_file(tmp_path):
    from ladder.orchestration.pipeline import _fit_config
    from ladder.core.plan import build_plan
    from omegaconf import OmegaConf

    cfg = load(["ladder=smoke", f"out_dir={tmp_path}/run"])
    return OmegaConf.to_yaml(_fit_config(cfg, build_plan(cfg)))


@pytest.mark.parametrize("damage,message", [
    (lambda text: text[:len(text) // 2].rstrip(), "fit.yaml: cut short (its last line has no end)"),
    (lambda text: "method: [chinchilla\n", "fit.yaml: not the fit settings `ladder run` writes"),
    (lambda text: text.replace("bootstrap: 200", "bootstrap: many"), "fit.yaml: not the fit settings"),
])
def test_a_damaged_fit_settings_file_is_named(tmp_path, capsys, damage, message):
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "fit.yaml").write_text(damage(_fit_settings_file(tmp_path)))
    assert f"{tmp_path}/run/{message}" in error(capsys, "fit", f"results={tmp_path}/run")


def test_half_a_plan_is_named(tmp_path, capsys):
    from ladder.orchestration.plan_format import as_json
    from ladder.core.plan import build_plan

    text = as_json(build_plan(load(["ladder=smoke"])))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "plan.json").write_text(text[:len(text) // 2])
    assert f"{tmp_path}/run/plan.json: unreadable" in error(capsys, "fit", f"results={tmp_path}/run")


def _results_of(overrides, multiplier=1):
    out_dir = next(o.split("=", 1)[1] for o in overrides if o.startswith("out_dir="))
    return Path(out_dir) / "rungs" / f"smoke-24-c4-M{multiplier}" / "results.jsonl"


@pytest.mark.parametrize("command", ["run", "eval"])
def test_a_bad_line_in_a_rungs_results_is_named(finished, capsys, command):
    results = _results_of(finished)
    lines = results.read_text().splitlines(keepends=True)
    results.write_text(lines[0] + "{not json\n" + "".join(lines[1:]))
    message = error(capsys, command, *finished)
    assert f"{results}: line 2: " in message and "fix or delete that line" in message


def test_a_torn_last_line_is_dropped_and_its_checkpoint_evaluated_again(finished, capsys, caplog):
    results = _results_of(finished)
    whole = results.read_text()
    results.write_text(whole[:-20])  # a writer killed mid-line
    assert main(["eval", *finished]) == 0
    assert "is cut short (a writer stopped mid-line): dropped" in caplog.text
    records = [json.loads(line) for line in results.read_text().splitlines()]  # every line whole again
    assert sorted((r["step"], r["metric"]) for r in records) == sorted(
        (r["step"], r["metric"]) for r in map(json.loads, whole.splitlines()))


def test_eval_of_a_read_only_rung_is_refused_before_evaluating(finished, capsys, caplog, read_only):
    results = _results_of(finished)
    results.unlink()  # something to evaluate
    with read_only(results.parent):
        message = error(capsys, "eval", *finished, "rung=smoke-24-c4-M1")
    assert f"{results.parent}: cannot write there" in message and "results.jsonl is written there" in message
    assert "evaluated in" not in caplog.text


def test_a_full_disk_while_building_the_corpus_is_one_line(tmp_path, capsys, monkeypatch, cache):
    import errno

    import train.data.corpus as corpus

    class FullDisk:  # gzip.open's file on a full disk: every write fails, without naming the file
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    # Each source one line: the disk, not the text, is under test.
    tiny = (lambda: iter([("u", "in the beginning")]), "2024-06-05T00:00:00Z")
    monkeypatch.setattr(corpus, "SOURCES", dict.fromkeys(corpus.SOURCES, tiny))
    monkeypatch.setattr(corpus.gzip, "open", FullDisk)
    message = error(capsys, "prepare")
    assert f"{cache}/corpus/smoke: cannot write the built-in corpus there (No space left on device)" in message
    assert not list((cache / "corpus").glob("*.partial-*"))  # its half-written copy is gone


def test_a_full_disk_names_the_file_an_atomic_write_was_writing(tmp_path, monkeypatch):
    import errno

    from ladder.core.files import atomic_write_text

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=re.escape(f"No space left on device: '{tmp_path}/record.json'")):
        atomic_write_text(tmp_path / "record.json", "{}")
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


def test_a_truncated_shard_is_named_when_the_plan_sizes_the_source(tmp_path):
    from train.data import source_tokens
    (tmp_path / "c4-train.00000-of-00001.json.gz").write_bytes(b"ab")  # cut short: no gzip trailer
    tokens, how = source_tokens({"name": "c4", "path": str(tmp_path)}, 2048)
    assert tokens is None and how.startswith(f"{tmp_path}/c4-train.00000-of-00001.json.gz: not a readable gzip file")


@pytest.mark.parametrize("command", ["run", "train"])
def test_cuda_asked_for_without_cuda_is_one_line_before_anything_is_written(capsys, tmp_path, command):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    said = error(capsys, command, "ladder=smoke", "train.device=cuda", f"out_dir={tmp_path / 'run'}")
    assert "train.device=cuda: this machine has no CUDA device" in said
    assert not (tmp_path / "run").exists()  # nothing planned or written


@pytest.mark.parametrize("command", ["fit", "compare"])
def test_a_path_given_without_results_is_told_how_to_give_it(capsys, tmp_path, command):
    said = error(capsys, command, str(tmp_path))
    assert said.endswith(f"not KEY=VALUE; give it as results={tmp_path}")


def test_fit_of_an_empty_directory_says_it_is_empty(capsys, tmp_path):
    assert f"results={tmp_path}: an empty directory, nothing to fit" in error(capsys, "fit", f"results={tmp_path}")


def test_fit_of_a_dataset_the_results_lack_names_it_and_the_ones_they_have(capsys, tmp_path):
    rung = tmp_path / "rungs" / "smoke-24-smoke-M5"
    jsonl(rung / "results.jsonl", [{"run": rung.name, "dataset": "smoke", "params": 1e5, "run_tokens": 5e5,
                                    "tokens": 5e5, "step": 10, "final": True, "metric": "smoke_val:loss", "value": 5.0}])
    said = error(capsys, "fit", f"results={tmp_path}", "dataset=c4")
    assert f"dataset=c4: not in results={tmp_path} (its datasets: smoke)" in said


def test_plan_with_a_missing_data_path_says_so_plainly(capsys, tmp_path):
    said = error(capsys, "plan", "ladder=node", f"data.path={tmp_path / 'nope'}")
    assert f"c4: data.path={tmp_path / 'nope'}: no such file or directory" in said


@pytest.mark.parametrize("command", ["run", "train", "prepare"])
def test_a_missing_data_path_is_refused_before_anything_is_written(capsys, tmp_path, command):
    said = error(capsys, command, "ladder=node", "train.device=auto", f"data.path={tmp_path / 'nope'}",
                 f"out_dir={tmp_path / 'run'}")
    assert f"c4: data.path={tmp_path / 'nope'}: no such file or directory" in said
    assert not (tmp_path / "run").exists()  # no plan.json, no fit.yaml


@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    """An empty HuggingFace cache and a hub that refuses at once (a local port nothing listens on): a machine
    without hub access, whatever this one has."""
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}")
    return constants


@pytest.mark.parametrize("offline", [False, True])
def test_a_tokenizer_that_cannot_be_read_is_refused_before_anything_is_written(capsys, tmp_path, cache, no_hub,
                                                                             monkeypatch, offline):
    """`ladder run ladder=olmo ...` without hub access printed ~40 s of the hub client's retries, then one line,
    and left plan.json and fit.yaml (on Slurm also slurm/) in out_dir. Now one line naming the key, at once, and
    nothing written: with HF_HUB_OFFLINE without a request, else after one request, not retried."""
    import time
    monkeypatch.setattr(no_hub, "HF_HUB_OFFLINE", offline)
    started = time.perf_counter()
    said = error(capsys, "run", "ladder.tokenizer.name_or_path=ladder-tests/no-such-tokenizer", f"out_dir={tmp_path / 'run'}")
    assert time.perf_counter() - started < 15  # the retries alone took 23 s against this refusing port
    assert said.startswith("ladder run: error: ladder.tokenizer.name_or_path=ladder-tests/no-such-tokenizer: not in the "
                           "HuggingFace cache")
    assert ("HF_HUB_OFFLINE" in said) == offline
    assert not (tmp_path / "run").exists() and not (cache / "tokenizers").exists()
    assert "no such directory" in error(capsys, "run", f"ladder.tokenizer.name_or_path={tmp_path / 'tok'}",
                                        f"out_dir={tmp_path / 'run'}")
    # a name that is no directory and that the hub client refuses as a repository id (HFValidationError)
    assert "not a valid hub name" in error(capsys, "run", "ladder.tokenizer.name_or_path=my tok",
                                           f"out_dir={tmp_path / 'run'}")
    assert not (tmp_path / "run").exists()


def test_a_tokenizer_in_the_huggingface_cache_passes_the_check_and_loads_without_the_hub(tmp_path, cache, no_hub):
    """The check refuses only what cannot be read: a hub tokenizer in the HuggingFace cache passes it and is
    loaded from there without a request (the hub here refuses every one), as one in the harness's cache is."""
    import time
    from train.data.tokenizer import bpe_tokenizer, check_tokenizer, ensure_tokenizer, load as load_tokenizer
    snapshot = tmp_path / "hf" / "models--ladder-tests--cached" / "snapshots" / "abc"
    bpe_tokenizer(["some text to train on"] * 20, 300).save_pretrained(str(snapshot))
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc")
    (snapshot.parents[1] / ".no_exist" / "abc").mkdir(parents=True)  # as a fetch records a repo without a model
    (snapshot.parents[1] / ".no_exist" / "abc" / "config.json").touch()  # config.json
    check_tokenizer({"name_or_path": "ladder-tests/cached"}, cache)
    started = time.perf_counter()
    made = ensure_tokenizer({"name_or_path": "ladder-tests/cached"}, cache)
    assert time.perf_counter() - started < 10 and len(load_tokenizer(made)) == len(load_tokenizer(snapshot))
    check_tokenizer({"name_or_path": "ladder-tests/cached"}, cache)  # now in the harness's cache too
    check_tokenizer({"name_or_path": str(snapshot)}, cache)  # a local directory
