"""Downstream tasks: examples, the loaders that turn each HF schema into them, and the task registry.

Prompts are OLMES's ranked-classification (RC, "cloze") formats, the ones the OLMo ladder's numbers
come from: OLMES v0.1 (Gu et al. 2024, arXiv 2406.08446), whose task definitions are
allenai/OLMo-Eval olmo_eval/tasks/olmes_v0_1/<task>_std.py (cited per loader below as "OLMES <file>").
Each choice is a continuation carrying its leading space (lm-eval's target delimiter " "). COPA is
not in OLMES; it follows lm-evaluation-harness's super_glue/copa. A task loads by hub name through
`datasets` where a network exists, or from a local file (json/jsonl/parquet/csv) in the same schema;
its few-shot demonstrations come from the split OLMES takes them from (`TaskSpec.fewshot_split`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from datasets import load_dataset


class TaskError(ValueError):
    """A task that cannot be loaded or an example that cannot be scored as given."""


@dataclass(frozen=True)
class Example:
    context: str
    choices: tuple[str, ...]  # continuations, each with its leading space
    gold: int
    # Partial scoring (Winogrande): each choice completes the context and this shared suffix is scored.
    suffix: Optional[str] = None
    group: str = ""  # e.g. the MMLU subject; few-shot examples come from the same group
    header: str = ""  # the start of `context` that precedes any few-shot demonstrations (MMLU's subject line)

    def __post_init__(self):
        if not isinstance(self.context, str):
            raise TaskError(f"context must be text, got {type(self.context).__name__}")
        if len(self.choices) < 2:
            raise TaskError(f"needs at least 2 choices, got {len(self.choices)}")
        for i, choice in enumerate(self.choices):
            if not isinstance(choice, str) or not choice.strip():
                raise TaskError(f"choice {i} is empty")
        if isinstance(self.gold, bool) or not isinstance(self.gold, int) or not 0 <= self.gold < len(self.choices):
            raise TaskError(f"gold index {self.gold!r} is out of range for {len(self.choices)} choices")
        if self.suffix is not None and not self.suffix.strip():
            raise TaskError("partial-scoring suffix is empty")
        if not self.context.startswith(self.header):
            raise TaskError("the header must be the start of the context")

    def requests(self) -> list[tuple[str, str]]:
        """The (context, continuation) pairs that score the choices."""
        if self.suffix is None:
            return [(self.context, choice) for choice in self.choices]
        return [(self.context + choice, self.suffix) for choice in self.choices]

    def scored_texts(self) -> list[str]:
        """The text each request scores (for character and byte normalisation)."""
        return [cont for _, cont in self.requests()]

    def with_gold(self) -> str:
        """The example answered correctly, as a few-shot demonstration (without its header)."""
        context, continuation = self.requests()[self.gold]
        return context[len(self.header):] + continuation


def _qa(question: str, prefix: str = "Question: ") -> str:
    # OLMES utils.py make_cloze_prompt
    return f"{prefix}{question}\nAnswer:"


def _letter_index(labels, key) -> int:
    labels = list(labels)
    if key not in labels:
        raise TaskError(f"answer key {key!r} is not one of the choice labels {labels}")
    return labels.index(key)


def _hellaswag_clean(text: str) -> str:
    # OLMES hellaswag_std.py preprocess: WikiHow's bracketed markup out ("[title]" ends a sentence, without
    # doubling a full stop before it, where lm-eval's replace(" [title]", ". ") would), double spaces collapsed.
    text = re.sub(r"\.? \[title\]", ". ", text.strip())
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag(row) -> Example:
    # OLMES hellaswag_std.py: "<activity>: <ctx_a> <Ctx_b>" (ctx_b capitalised; the stored `ctx` is not used)
    context = _hellaswag_clean(f"{row['activity_label']}: {row['ctx_a']} {row['ctx_b'].capitalize()}")
    return Example(context, tuple(" " + _hellaswag_clean(e) for e in row["endings"]), _int(row["label"]))


def arc(row) -> Example:
    # OLMES arc_std.py (a numeric answerKey "1".."5" is found among numeric labels)
    choices = row["choices"]
    return Example(_qa(row["question"]), tuple(" " + t for t in choices["text"]),
                   _letter_index(choices["label"], row["answerKey"]))


def piqa(row) -> Example:
    # OLMES piqa_std.py: "Goal: …\nAnswer:" (lm-eval's piqa says "Question:")
    return Example(_qa(row["goal"], "Goal: "), (" " + row["sol1"], " " + row["sol2"]), _int(row["label"]))


def csqa(row) -> Example:
    # OLMES csqa_std.py
    choices = row["choices"]
    return Example(_qa(row["question"]), tuple(" " + t for t in choices["text"]),
                   _letter_index(choices["label"], row["answerKey"]))


def socialiqa(row) -> Example:
    # OLMES siqa_std.py: context and question in one "Question:" line
    answers = (row["answerA"], row["answerB"], row["answerC"])
    return Example(_qa(f"{row['context']} {row['question']}"), tuple(" " + a for a in answers), _int(row["label"]) - 1)


def openbookqa(row) -> Example:
    # OLMES openbookqa_std.py
    choices = row["choices"]
    return Example(_qa(row["question_stem"]), tuple(" " + t for t in choices["text"]),
                   _letter_index(choices["label"], row["answerKey"].strip()))


def mmlu(row) -> Example:
    # OLMES mmlu_std.py, RC variant ("mmlu-rc"): the subject line (Hendrycks et al.'s description, "\n\n"
    # after it) heads the prompt once, before any demonstrations; the question is stripped.
    subject = row["subject"]
    mmlu_group(subject)  # an unknown subject is an error, not an example left out of every group
    header = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
    return Example(header + _qa(row["question"].strip()), tuple(" " + str(c) for c in row["choices"]),
                   _int(row["answer"]), group=subject, header=header)


def winogrande(row) -> Example:
    # OLMES winogrande_std.py, partial scoring (Trinh & Le 2018): the context runs to the blank and the
    # option fills it; the rest of the sentence, with one leading space, is what is scored.
    sentence = row["sentence"]
    if sentence.count("_") != 1:
        raise TaskError(f"sentence must have exactly one blank '_': {sentence!r}")
    before, after = sentence.split("_")
    return Example(before, (row["option1"], row["option2"]), _int(row["answer"]) - 1, suffix=" " + after.strip())


def boolq(row) -> Example:
    # OLMES boolq_std.py: "<passage>\nQuestion: <question>?\nAnswer:" with " yes" / " no"
    question = row["question"].strip().rstrip("?")
    answer = row["answer"]
    if not isinstance(answer, bool):
        raise TaskError(f"answer must be true or false, got {answer!r}")
    return Example(f"{row['passage']}\nQuestion: {question}?\nAnswer:", (" yes", " no"), 0 if answer else 1)


def copa(row) -> Example:
    # lm-evaluation-harness super_glue/copa (not in OLMES): the premise loses its last character (the full
    # stop) and the choice continues its sentence: "The man broke his toe because he dropped a hammer …"
    connector = {"cause": " because", "effect": " therefore"}.get(row["question"])
    if connector is None:
        raise TaskError(f"question must be 'cause' or 'effect', got {row['question']!r}")
    choices = tuple(" " + c[:1].lower() + c[1:] for c in (row["choice1"], row["choice2"]))
    return Example(row["premise"].strip()[:-1] + connector, choices, _int(row["label"]))


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TaskError(f"gold label {value!r} is not an integer") from None


@dataclass(frozen=True)
class TaskSpec:
    hub: tuple[str, Optional[str], str]  # path, config name, split
    fields: tuple[str, ...]  # required columns of the schema
    convert: Callable[[dict], Example]
    subset: Optional[Callable[[Example], bool]] = None  # e.g. one MMLU subject group
    # Where few-shot demonstrations come from: OLMES's curated examples are drawn from the train split
    # (OLMES std_fewshot.py), MMLU's are the first of its dev split (OLMES mmlu_std.py).
    fewshot_split: str = "train"


# MMLU subject groups (Hendrycks et al. 2021, categories.py) and the OLMo ladder's weights for them.
MMLU_GROUPS = {
    "stem": "abstract_algebra astronomy college_biology college_chemistry college_computer_science "
            "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
            "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
            "high_school_mathematics high_school_physics high_school_statistics machine_learning".split(),
    "humanities": "formal_logic high_school_european_history high_school_us_history high_school_world_history "
                  "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy "
                  "prehistory professional_law world_religions".split(),
    "social_sciences": "econometrics high_school_geography high_school_government_and_politics "
                       "high_school_macroeconomics high_school_microeconomics high_school_psychology human_sexuality "
                       "professional_psychology public_relations security_studies sociology us_foreign_policy".split(),
    "other": "anatomy business_ethics clinical_knowledge college_medicine global_facts human_aging management "
             "marketing medical_genetics miscellaneous nutrition professional_accounting professional_medicine "
             "virology".split(),
}
MMLU_WEIGHTS = {"stem": 0.215, "humanities": 0.335, "social_sciences": 0.219, "other": 0.231}
_MMLU_GROUP_OF = {subject: group for group, subjects in MMLU_GROUPS.items() for subject in subjects}


def mmlu_group(subject: str) -> str:
    if subject not in _MMLU_GROUP_OF:
        raise TaskError(f"unknown MMLU subject {subject!r}")
    return _MMLU_GROUP_OF[subject]


_MMLU = dict(hub=("cais/mmlu", "all", "test"), fields=("question", "subject", "choices", "answer"), convert=mmlu,
             fewshot_split="dev")
TASKS: dict[str, TaskSpec] = {
    "hellaswag": TaskSpec(("Rowan/hellaswag", None, "validation"),
                          ("ctx_a", "ctx_b", "endings", "label", "activity_label"), hellaswag),
    "arc_easy": TaskSpec(("allenai/ai2_arc", "ARC-Easy", "test"), ("question", "choices", "answerKey"), arc),
    "arc_challenge": TaskSpec(("allenai/ai2_arc", "ARC-Challenge", "test"), ("question", "choices", "answerKey"), arc),
    "piqa": TaskSpec(("ybisk/piqa", None, "validation"), ("goal", "sol1", "sol2", "label"), piqa),
    "csqa": TaskSpec(("tau/commonsense_qa", None, "validation"), ("question", "choices", "answerKey"), csqa),
    "socialiqa": TaskSpec(("allenai/social_i_qa", None, "validation"),
                          ("context", "question", "answerA", "answerB", "answerC", "label"), socialiqa),
    "openbookqa": TaskSpec(("allenai/openbookqa", "main", "test"), ("question_stem", "choices", "answerKey"), openbookqa),
    "mmlu": TaskSpec(**_MMLU),
    **{f"mmlu_{g}": TaskSpec(**_MMLU, subset=lambda ex, g=g: mmlu_group(ex.group) == g) for g in MMLU_GROUPS},
    "winogrande": TaskSpec(("allenai/winogrande", "winogrande_xl", "validation"),
                           ("sentence", "option1", "option2", "answer"), winogrande),
    "boolq": TaskSpec(("google/boolq", None, "validation"), ("question", "passage", "answer"), boolq),
    "copa": TaskSpec(("aps/super_glue", "copa", "validation"), ("premise", "choice1", "choice2", "question", "label"), copa),
}
LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".gz": "json", ".parquet": "parquet", ".csv": "csv"}


def _load(what: str, source: str, advice: str, *args, **kwargs):
    try:
        return load_dataset(*args, **kwargs)
    except Exception as exc:  # no network, a malformed file, ...: many types, all of them this input's fault
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TaskError(f"{what}: could not read {source} ({type(exc).__name__}: {first}){advice}") from exc


def read_local(path: str, what: str):
    """A local json/jsonl/json.gz/parquet/csv file as a `datasets.Dataset`; TaskError naming `what` and the file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise TaskError(f"{what}: no file {file}")
    fmt = LOCAL_FORMATS.get(file.suffix)
    if fmt is None:
        raise TaskError(f"{what}: cannot read {file.name} (use one of {', '.join(LOCAL_FORMATS)})")
    return _load(what, str(file), "", fmt, data_files=str(file), split="train")


def _read_rows(name: str, path: Optional[str], fewshot: bool):
    what = f"task {name}" + (" few-shot examples" if fewshot else "")
    if path is not None:
        return read_local(path, what), str(Path(path).expanduser())
    hub_path, config, split = TASKS[name].hub
    split = TASKS[name].fewshot_split if fewshot else split
    source = f"{hub_path} ({split})"
    key = "fewshot_paths" if fewshot else "task_paths"
    return _load(what, source, f"; without a network set eval.{key}.{name} to a local file of its {split} split in "
                 f"its schema", hub_path, config, split=split), source


def load_task(name: str, path: Optional[str] = None, *, fewshot: bool = False) -> list[Example]:
    """Examples of a registered task from `path` (a local file in the HF schema) or from the hub.

    `fewshot`: the split demonstrations come from (`TaskSpec.fewshot_split`) when `path` is None.
    """
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}, derived")
    spec = TASKS[name]
    rows, source = _read_rows(name, path, fewshot)
    missing = [f for f in spec.fields if f not in rows.column_names]
    if missing:
        raise TaskError(f"task {name}: {source} lacks field(s) {', '.join(missing)} of the schema")
    examples = []
    for i, row in enumerate(rows):
        try:
            example = spec.convert(row)
        except (TaskError, KeyError, TypeError, AttributeError) as exc:
            raise TaskError(f"task {name}: {source} row {i}: {exc}") from None
        if spec.subset is None or spec.subset(example):
            examples.append(example)
    if not examples:
        raise TaskError(f"task {name}: {source} has no examples")
    return examples
