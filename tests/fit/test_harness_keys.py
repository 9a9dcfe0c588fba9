"""The harness reader reads current records only and refuses a metric whose records carry two evaluation keys
(issue 33, item 1); results.jsonl files written before keys existed read as one key."""
import json

import pytest

from fit.errors import FitInputError
from fit.sources import load_points

ZERO, FIVE = {"eval.num_fewshot": 0, "task_version": 1}, {"eval.num_fewshot": 5, "task_version": 1}


def rewrite(path, change):
    """Each record of a results file through `change(record)`, which may return a list of records."""
    out = []
    for line in path.read_text().splitlines():
        changed = change(json.loads(line))
        out += changed if isinstance(changed, list) else [changed]
    path.write_text("".join(json.dumps(r) + "\n" for r in out))


def keyed(tmp_path, write_ladder):
    """The 4 x 3 ladder of test_holdout with every record evaluated 0-shot; its files."""
    files = sorted(write_ladder(tmp_path).glob("rungs/*/results.jsonl"))
    for f in files:
        rewrite(f, lambda r: {**r, "eval_key": ZERO})
    return files


def test_a_superseded_record_is_not_read(tmp_path, write_ladder):
    files = keyed(tmp_path, write_ladder)
    before = load_points(str(tmp_path)).points
    # a 5-shot evaluation that was itself replaced by the 0-shot one: kept in the file, never a point
    rewrite(files[0], lambda r: [{**r, "value": 0.0, "eval_key": FIVE, "superseded": True}, r])
    after = load_points(str(tmp_path))
    assert after.points.equals(before) and after.dropped.empty


def test_a_rung_whose_records_mix_keys_is_refused_naming_the_setting(tmp_path, write_ladder):
    files = keyed(tmp_path, write_ladder)
    rewrite(files[1], lambda r: {**r, "eval_key": FIVE} if r["step"] == 1000 else r)
    run = files[1].parent.name
    with pytest.raises(FitInputError, match=rf"results.jsonl:\d+: smoke_val:loss of run {run} was evaluated with "
                                            rf"other settings than at .*results.jsonl:1 \(run {run}\): "
                                            r"eval.num_fewshot 5 \(not 0\); one fit never mixes two evaluations"):
        load_points(str(tmp_path))


def test_rungs_evaluated_under_two_keys_are_refused_too(tmp_path, write_ladder):
    files = keyed(tmp_path, write_ladder)
    rewrite(files[-1], lambda r: {**r, "eval_key": FIVE})
    with pytest.raises(FitInputError, match=rf"of run {files[-1].parent.name} .* \(run {files[0].parent.name}\): "
                                            r"eval.num_fewshot 5 \(not 0\)"):
        load_points(str(tmp_path))


def test_records_without_a_key_read_as_one_key_and_never_mix_with_keyed_ones(tmp_path, write_ladder):
    write_ladder(tmp_path)  # an older harness's files: no keys anywhere
    assert not load_points(str(tmp_path)).points.empty
    first = sorted(tmp_path.glob("rungs/*/results.jsonl"))[0]
    rewrite(first, lambda r: {**r, "eval_key": ZERO} if r["step"] == 1000 else r)
    with pytest.raises(FitInputError, match=r"was evaluated with other settings .*: an evaluation key \(not none\)"):
        load_points(str(tmp_path))
