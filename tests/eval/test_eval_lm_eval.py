"""Our RC scores are the field's: lm-evaluation-harness, given the OLMES formats as its own task configs,
gives the same per-choice log-likelihoods (1e-4 nats) and accuracies on a tiny checkpoint.

lm-eval's task configs below restate each format independently (Jinja templates; HellaSwag's and
Winogrande's document processing are lm-eval's own functions), read local files in the HF schemas
and take demonstrations with lm-eval's `first_n` sampler from the few-shot split. No network.
"""
import json

import pytest

from eval.fewshot import with_fewshot
from eval.metrics import example_metrics
from eval.run import scored_example
from eval_helpers import score_groups
from eval.tasks import load_task

lm_eval = pytest.importorskip("lm_eval", reason="lm_eval comes with the test extras")

pytestmark = pytest.mark.slow

ARC = [
    {"id": "a1", "question": "Which gas do plants take in from the air?", "answerKey": "B",
     "choices": {"text": ["oxygen", "carbon dioxide", "helium", "steam"], "label": ["A", "B", "C", "D"]}},
    {"id": "a2", "question": "What gives the Earth heat and light?", "answerKey": "3",
     "choices": {"text": ["the Moon", "a river", "the Sun"], "label": ["1", "2", "3"]}},
    {"id": "a3", "question": "What do you need to bake bread?", "answerKey": "A",
     "choices": {"text": ["flour, water and yeast", "a boat", "a vote", "the window"], "label": ["A", "B", "C", "D"]}},
    {"id": "a4", "question": "Where does a cool breeze come from?", "answerKey": "D",
     "choices": {"text": ["the budget", "the mill", "a recipe", "the garden"], "label": ["A", "B", "C", "D"]}},
]
HELLASWAG = [
    {"ind": i, "activity_label": label, "ctx_a": a, "ctx_b": b, "ctx": f"{a} {b}", "split": "val",
     "split_type": "indomain", "source_id": "x", "label": str(gold), "endings": endings}
    for i, (label, a, b, endings, gold) in enumerate([
        ("Roof shingle removal", "A man is sitting on a roof.", "he",
         ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.",
          "starts pulling up roofing on a roof."], 3),
        ("Baking bread", "[header] How to bake bread [title] Mix the flour.", "then",
         ["knead the dough [step] and let it rise.", "vote on the budget.", "open the window.", "sail a boat."], 0),
        ("Gardening", "A woman walks into the garden.", "she",
         ["waters the plants in the morning light.", "reads the budget.", "bakes a star.", "runs past the mill."], 0),
        ("Sailing", "Children watch the boats on the river.", "the boats",
         ["go by in the morning.", "bake bread.", "vote on Tuesday.", "knead the dough."], 0),
    ])]
PIQA = [
    {"goal": "To open a jar,", "sol1": "twist the lid.", "sol2": "paint the lid.", "label": 0},
    {"goal": "To keep bread fresh,", "sol1": "leave it in the rain.", "sol2": "wrap it in a bag.", "label": 1},
    {"goal": "To cool a warm room,", "sol1": "open the window.", "sol2": "bake more bread.", "label": 0},
]
MMLU = [
    {"question": q, "subject": "virology", "choices": c, "answer": a} for q, c, a in [
        ("What is a virus made of?", ["protein and nucleic acid", "bread", "water only", "light"], 0),
        ("Which cells does HIV infect?", ["red blood cells", "T cells", "bone", "skin"], 1),
        ("What is a vaccine?", ["a recipe", "a river", "a weakened or inactive pathogen", "a boat"], 2),
        ("What do viruses need to copy themselves?", ["the Sun", "a vote", "wind", "a host cell"], 3),
    ]]
WINOGRANDE = [
    {"sentence": s, "option1": o1, "option2": o2, "answer": a} for s, o1, o2, a in [
        ("The trophy did not fit in the suitcase because _ was too big.", "the trophy", "the suitcase", "1"),
        ("The dough did not rise because _ was too cold.", "the kitchen", "the flour", "1"),
        ("Anna gave Maria the boat because _ no longer needed it.", "Anna", "Maria", "1"),
        ("The room was warm, so _ opened the window for the breeze.", "she", "the window", "1"),
    ]]
# task -> (rows, lm-eval's config for its format)
TASKS = {
    "arc_easy": (ARC, """output_type: multiple_choice
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_choice: "{{choices.text}}"
doc_to_target: "{{choices.label.index(answerKey)}}"
"""),
    "hellaswag": (HELLASWAG, """output_type: multiple_choice
process_docs: !function utils.hellaswag_docs
doc_to_text: "{{query}}"
doc_to_choice: "choices"
doc_to_target: "{{label}}"
"""),
    "piqa": (PIQA, """output_type: multiple_choice
doc_to_text: "Goal: {{goal}}\\nAnswer:"
doc_to_choice: "{{[sol1, sol2]}}"
doc_to_target: label
"""),
    "mmlu": (MMLU, """output_type: multiple_choice
description: "The following are multiple choice questions (with answers) about virology.\\n\\n"
doc_to_text: "Question: {{question.strip()}}\\nAnswer:"
doc_to_choice: "{{choices}}"
doc_to_target: answer
"""),
    "winogrande": (WINOGRANDE, """output_type: multiple_choice
doc_to_text: !function utils.wino_text
doc_to_target: !function utils.wino_target
doc_to_choice: !function utils.wino_choice
"""),
}
UTILS = """from lm_eval.tasks.hellaswag.utils import preprocess, process_docs as hellaswag_docs
from lm_eval.tasks.winogrande.preprocess_winogrande import (doc_to_choice as wino_choice,
                                                            doc_to_target as wino_target, doc_to_text as wino_text)
"""


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer, make_model):
    root = tmp_path_factory.mktemp("lm_eval_check")
    model = make_model(seq_len=512, seed=7)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    return root, model


def write_tasks(root, shots):
    """Data files and lm-eval configs; with shots, the first two rows (reversed) form the few-shot split
    and the others are evaluated, so no example is its own demonstration (OLMES's splits never overlap)."""
    tasks = root / f"tasks{shots}"
    tasks.mkdir(exist_ok=True)
    (tasks / "utils.py").write_text(UTILS)
    files = {}
    for name, (rows, config) in TASKS.items():
        evaluated = write_jsonl(tasks / f"{name}_eval.jsonl", rows[2:] if shots else rows)
        fewshot = write_jsonl(tasks / f"{name}_shots.jsonl", rows[:2][::-1])
        files[name] = (evaluated, fewshot)
        (tasks / f"x_{name}.yaml").write_text(
            f"task: x_{name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {evaluated}\n"
            f"    train: {fewshot}\ntest_split: test\nfewshot_split: train\nfewshot_config:\n  sampler: first_n\n"
            f"{config}metric_list:\n  - metric: acc\n  - metric: acc_norm\nmetadata:\n  version: 1.0\n")
    return tasks, files


def run_lm_eval(model_dir, tasks, shots, monkeypatch):
    import datasets
    import huggingface_hub
    from lm_eval.tasks import TaskManager

    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    out = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=[f"x_{n}" for n in TASKS],
        num_fewshot=shots, batch_size=4, device="cpu", log_samples=True,
        task_manager=TaskManager(include_path=str(tasks)))
    return out["results"], out["samples"]


@pytest.mark.parametrize("shots", [0, 2])
def test_loglikelihoods_and_accuracies_equal_lm_evaluation_harness(setup, tokenizer, shots, monkeypatch):
    root, model = setup
    tasks, files = write_tasks(root, shots)
    results, samples = run_lm_eval(root / "model", tasks, shots, monkeypatch)
    for name, (evaluated, shot_file) in files.items():
        examples = with_fewshot(load_task(name, evaluated), load_task(name, shot_file, fewshot=True), shots)
        scores = score_groups(model, tokenizer, [ex.requests() for ex in examples], batch_size=3)
        theirs = sorted(samples[f"x_{name}"], key=lambda s: s["doc_id"])
        assert len(theirs) == len(examples)
        ours_metrics = []
        for ex, s, t in zip(examples, scores, theirs):
            their_lls = [ll for ll, _ in t["filtered_resps"]]
            assert s.logprobs == pytest.approx(their_lls, abs=1e-4), (name, t["arguments"])
            ours_metrics.append(example_metrics(scored_example(ex, s)))
        mean = lambda k: sum(m[k] for m in ours_metrics) / len(ours_metrics)  # noqa: E731
        assert mean("acc_raw") == pytest.approx(results[f"x_{name}"]["acc,none"])
        if name != "winogrande":  # lm-eval's acc_norm there divides by the contexts' lengths, not the suffix's
            assert mean("acc") == pytest.approx(results[f"x_{name}"]["acc_norm,none"])
