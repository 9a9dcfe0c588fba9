"""Each HF schema loads from a local file in that schema; bad input fails loudly; few-shot prompts."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.fewshot import with_fewshot
from eval.run import evaluate_task
from eval_helpers import score_groups
from eval.config import DerivedConfig, EvalConfig
from eval.tasks import TASKS, Example, TaskError, chance_levels, load_task

ROWS = {
    "hellaswag": {"ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "ctx": "A man is sitting on a roof. he",
                  "activity_label": "Roof shingle removal",
                  "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                              "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "label": "3"},
    "arc_easy": {"question": "Which gas do plants take in?", "answerKey": "B",
                 "choices": {"text": ["oxygen", "carbon dioxide", "helium"], "label": ["A", "B", "C"]}},
    "arc_challenge": {"question": "Which is a mineral?", "answerKey": "2",
                      "choices": {"text": ["wood", "quartz", "glass", "paper"], "label": ["1", "2", "3", "4"]}},
    "piqa": {"goal": "To open a jar,", "sol1": "twist the lid.", "sol2": "paint the lid.", "label": 0},
    "csqa": {"question": "Where do you keep milk?", "answerKey": "A",
             "choices": {"label": ["A", "B", "C", "D", "E"], "text": ["fridge", "roof", "car", "shoe", "pond"]}},
    "socialiqa": {"context": "Tracy gave a gift.", "question": "How would Tracy feel?", "answerA": "happy",
                  "answerB": "angry", "answerC": "bored", "label": "1"},
    "openbookqa": {"question_stem": "The sun is a", "answerKey": "D",
                   "choices": {"text": ["planet", "moon", "comet", "star"], "label": ["A", "B", "C", "D"]}},
    "mmlu": {"question": "What is 2 + 2?", "subject": "elementary_mathematics", "choices": ["3", "4", "5", "6"],
             "answer": 1},
    "winogrande": {"sentence": "The trophy did not fit in the suitcase because _ was too big.",
                   "option1": "the trophy", "option2": "the suitcase", "answer": "1"},
    "boolq": {"question": "is the sun a star", "passage": "The Sun is the star at the center of the Solar System.",
              "answer": True},
    "copa": {"premise": "The man broke his toe.", "choice1": "He dropped a hammer on his foot.",
             "choice2": "He got a hole in his sock.", "question": "cause", "label": 0},
}
EXPECTED = {  # (context, gold continuation)
    "hellaswag": ("Roof shingle removal: A man is sitting on a roof. He", " starts pulling up roofing on a roof."),
    "arc_easy": ("Question: Which gas do plants take in?\nAnswer:", " carbon dioxide"),
    "arc_challenge": ("Question: Which is a mineral?\nAnswer:", " quartz"),
    "piqa": ("Goal: To open a jar,\nAnswer:", " twist the lid."),
    "csqa": ("Question: Where do you keep milk?\nAnswer:", " fridge"),
    "socialiqa": ("Question: Tracy gave a gift. How would Tracy feel?\nAnswer:", " happy"),
    "openbookqa": ("Question: The sun is a\nAnswer:", " star"),
    "mmlu": ("The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
             "Question: What is 2 + 2?\nAnswer:", " 4"),
    "winogrande": ("The trophy did not fit in the suitcase because the trophy", " was too big."),
    "boolq": ("The Sun is the star at the center of the Solar System.\nQuestion: is the sun a star?\nAnswer:", " yes"),
    "copa": ("The man broke his toe because", " he dropped a hammer on his foot."),
}


def write(tmp_path, rows, name="task.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("task", sorted(ROWS))
def test_each_schema_loads_from_a_local_file(tmp_path, task):
    [ex] = load_task(task, write(tmp_path, [ROWS[task]]))
    context, continuation = ex.requests()[ex.gold]
    assert (context, continuation) == EXPECTED[task]


def test_parquet_files_and_mmlu_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [dict(ROWS["mmlu"], subject=s) for s in ("college_physics", "philosophy", "sociology", "virology")]
    path = tmp_path / "mmlu.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert len(load_task("mmlu", str(path))) == 4
    assert [ex.group for ex in load_task("mmlu_humanities", str(path))] == ["philosophy"]
    assert {"mmlu_stem", "mmlu_humanities", "mmlu_social_sciences", "mmlu_other"} <= set(TASKS)


def test_mmlu_is_the_olmo_weighted_mean_of_its_groups(tmp_path, tokenizer, model):
    rows = [dict(ROWS["mmlu"], subject=s, answer=a) for s in ("college_physics", "philosophy", "sociology", "virology")
            for a in (0, 1)]
    examples = load_task("mmlu", write(tmp_path, rows))
    result = evaluate_task(model, tokenizer, "mmlu", examples, batch_size=4)
    m = result.metrics
    expected = (.215 * m["mmlu_stem:acc"] + .335 * m["mmlu_humanities:acc"] + .219 * m["mmlu_social_sciences:acc"]
                + .231 * m["mmlu_other:acc"])
    assert m["mmlu:acc"] == pytest.approx(expected)


def test_winogrande_scores_the_shared_suffix_after_each_filled_blank(tmp_path, tokenizer, model):
    [ex] = load_task("winogrande", write(tmp_path, [ROWS["winogrande"]]))
    assert ex.requests() == [("The trophy did not fit in the suitcase because the trophy", " was too big."),
                             ("The trophy did not fit in the suitcase because the suitcase", " was too big.")]
    [scores] = score_groups(model, tokenizer, [ex.requests()])
    suffix_tokens = len(tokenizer.encode(" was too big.", add_special_tokens=False))
    assert scores.n_tokens == [suffix_tokens, suffix_tokens]  # only the suffix is scored
    m = evaluate_task(model, tokenizer, "winogrande", [ex], batch_size=2).metrics
    assert m["winogrande:acc"] == m["winogrande:acc_raw"] == m["winogrande:acc_pmi"]


@pytest.mark.parametrize("task,row,message", [
    ("piqa", {"goal": "x", "sol1": "a", "label": 0}, "lacks field.*sol2"),
    ("piqa", {"goal": "x", "sol1": "a", "sol2": "b", "label": 2}, "row 0.*gold index 2 is out of range"),
    ("piqa", {"goal": "x", "sol1": "a", "sol2": " ", "label": 0}, "row 0.*choice 1 is empty"),
    ("arc_easy", dict(ROWS["arc_easy"], answerKey="E"), "answer key 'E'"),
    ("hellaswag", dict(ROWS["hellaswag"], label=""), "gold label '' is not an integer"),
    ("mmlu", dict(ROWS["mmlu"], subject="astrology"), "unknown MMLU subject"),
    ("winogrande", dict(ROWS["winogrande"], sentence="no blank here"), "exactly one blank"),
    ("copa", dict(ROWS["copa"], question="why"), "'cause' or 'effect'"),
])
def test_bad_task_files_name_the_problem(tmp_path, task, row, message):
    with pytest.raises(TaskError, match=message):
        load_task(task, write(tmp_path, [row]))


def test_unknown_task_and_missing_file(tmp_path):
    with pytest.raises(TaskError, match="unknown task 'nope'"):
        load_task("nope")
    with pytest.raises(TaskError, match="no file"):
        load_task("piqa", str(tmp_path / "absent.jsonl"))


def test_unreadable_task_files_and_an_unreachable_hub_name_the_task_and_source(tmp_path, monkeypatch):
    bad = tmp_path / "piqa.jsonl"
    bad.write_text('{"goal": "x", "sol1": "a"\n')
    with pytest.raises(TaskError, match=f"task piqa: could not read {bad}"):
        load_task("piqa", str(bad))

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'ybisk/piqa' on the Hub")
    monkeypatch.setattr("eval.examples.hub_dataset", offline)
    with pytest.raises(TaskError, match=r"ybisk/piqa \(validation\).*set eval.task_paths.piqa to a local file"):
        load_task("piqa")
    with pytest.raises(TaskError, match=r"few-shot examples.*ybisk/piqa \(train\).*set eval.fewshot_paths.piqa"):
        load_task("piqa", fewshot=True)


def test_local_task_files_need_no_datasets_package(tmp_path):
    """The GPU image has no `datasets`: the eval stage imports and reads local files without it, and a
    task loaded by hub name says what it lacks."""
    path = write(tmp_path, [ROWS["piqa"]], "piqa.jsonl")
    script = (
        "import sys\n"
        "class NoDatasets:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'datasets':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoDatasets())\n"
        "import eval.cli\n"
        "from eval.tasks import load_task\n"
        f"print(len(load_task('piqa', {path!r})))\n"
        "load_task('piqa')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert proc.stdout == "1\n", proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "eval.examples.TaskError: task piqa: loading ybisk/piqa (validation) from the hub needs the `datasets` "
        "package; or set eval.task_paths.piqa to a local file of its validation split in its schema")


@pytest.mark.parametrize("name,text", [
    ("copa.json", json.dumps([ROWS["copa"], ROWS["copa"]])),  # one JSON array of rows, as `datasets` reads it too
    ("copa.csv", "premise,choice1,choice2,question,label\nThe man broke his toe.,He dropped a hammer on his foot.,"
                 "He got a hole in his sock.,cause,0\n"),
])
def test_json_arrays_and_csv_files_load(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    examples = load_task("copa", str(tmp_path / name))
    assert examples[0].requests()[0] == EXPECTED["copa"]


def test_each_task_s_chance_level_is_its_spec_s():
    cfg = EvalConfig(tasks=["piqa", "winogrande", "boolq", "copa", "socialiqa", "csqa", "hellaswag", "mmlu",
                            "derived"], derived=DerivedConfig(n_choices=5))
    assert chance_levels(cfg) == {"piqa": 0.5, "winogrande": 0.5, "boolq": 0.5, "copa": 0.5, "socialiqa": 1 / 3,
                                  "csqa": 0.2, "hellaswag": 0.25, "mmlu": 0.25, "mmlu_stem": 0.25,
                                  "mmlu_humanities": 0.25, "mmlu_social_sciences": 0.25, "mmlu_other": 0.25,
                                  "derived": 0.2}


def test_hellaswag_strips_wikihow_markup_as_olmes_does(tmp_path):
    row = dict(ROWS["hellaswag"], activity_label="Health", ctx_a="[header] How to cope. [title] Put off plans.",
               ctx_b="[step] promise yourself", label=0,
               endings=["Wait a day. [substeps] Rest.", "Run.", "Sing.", "Eat."])
    [ex] = load_task("hellaswag", write(tmp_path, [row]))
    # ctx_b is capitalised before the markup goes, so "[step] promise" keeps its lower case, as in OLMES
    assert ex.context == "Health: How to cope. Put off plans. promise yourself"
    assert ex.choices[0] == " Wait a day. Rest."


def test_fewshot_prompts_are_the_first_k_of_the_pool_and_never_the_example():
    examples = [Example(f"Q{i}:", (f" a{i}", f" b{i}"), i % 2) for i in range(8)]
    shot = with_fewshot(examples, examples, 3)
    assert shot[5].context == "Q0: a0\n\nQ1: b1\n\nQ2: a2\n\nQ5:"
    assert shot[1].context == "Q0: a0\n\nQ2: a2\n\nQ3: b3\n\nQ1:"  # itself skipped
    for ex, orig in zip(shot, examples):
        assert ex.choices == orig.choices and ex.gold == orig.gold
    assert with_fewshot(examples, examples, 0) == examples
    copies = [examples[0]] * 3 + examples[1:]  # a pool holding the example more than once
    assert with_fewshot(copies[:1], copies, 2)[0].context == "Q1: b1\n\nQ2: a2\n\nQ0:"
    with pytest.raises(TaskError, match="needs 8 few-shot examples"):
        with_fewshot(examples, examples, 8)


def test_mmlu_fewshot_keeps_one_subject_header_and_uses_the_same_subject(tmp_path):
    subjects = ("virology", "philosophy")
    dev = load_task("mmlu", write(tmp_path, [dict(ROWS["mmlu"], subject=s, question=f"{s} {i}?")
                                             for i in range(3) for s in subjects], "dev.jsonl"))
    [ex] = load_task("mmlu", write(tmp_path, [dict(ROWS["mmlu"], subject="virology")]))
    [shot] = with_fewshot([ex], dev, 2)
    assert shot.context == ("The following are multiple choice questions (with answers) about virology.\n\n"
                            "Question: virology 0?\nAnswer: 4\n\nQuestion: virology 1?\nAnswer: 4\n\n"
                            "Question: What is 2 + 2?\nAnswer:")


def test_without_a_path_tasks_load_from_the_hub(monkeypatch):
    from datasets import Dataset

    import eval.examples

    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return Dataset.from_list([ROWS["arc_challenge"]])

    monkeypatch.setattr(eval.examples, "hub_dataset", fake_load_dataset)
    assert len(load_task("arc_challenge")) == 1
    assert len(load_task("arc_challenge", fewshot=True)) == 1
    assert calls == [("allenai/ai2_arc", "ARC-Challenge", "test"), ("allenai/ai2_arc", "ARC-Challenge", "train")]
    assert TASKS["mmlu_stem"].loader.fewshot_split == "dev"


def test_pmi_scores_each_distinct_choice_once_and_matches_scoring_per_example(tokenizer, model, monkeypatch):
    import eval.run
    from eval.metrics import ScoredExample, example_metrics

    examples = [Example(f"Question: is {w} a river?\nAnswer:", (" yes", " no", " maybe"), i % 3)
                for i, w in enumerate(["the Rhine", "bread", "a star", "the Nile"])]
    requests = []
    real = eval.run.encode_groups
    monkeypatch.setattr(eval.run, "encode_groups", lambda t, groups, max_len: (
        requests.extend(p for g in groups for p in g), real(t, groups, max_len))[1])
    m = evaluate_task(model, tokenizer, "t", examples, batch_size=2).metrics
    assert len(requests) == 4 * 3 + 3  # conditional, then " yes", " no", " maybe" once each
    uncond = [lp for lp in score_groups(model, tokenizer, [[("Answer:", c) for c in examples[0].choices]])[0].logprobs]
    per_example = []
    for ex, s in zip(examples, score_groups(model, tokenizer, [ex.requests() for ex in examples])):
        n = [len(c) - 1 for c in ex.choices]
        per_example.append(example_metrics(ScoredExample(s.logprobs, s.n_tokens, n, n, ex.gold, uncond))["acc_pmi"])
    assert m["t:acc_pmi"] == pytest.approx(sum(per_example) / len(per_example))
