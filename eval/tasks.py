"""Downstream tasks: the loaders that turn each HF schema into examples, and the registry `TASKS`, one
`TaskSpec` per task: where its examples come from, its size for the cost estimate, its chance level
and how its metrics combine. Adding a task is a converter here and one registry line (docs/eval.md).

Prompts are OLMES's ranked-classification (RC, "cloze") formats, the ones the OLMo ladder's numbers
come from: OLMES v0.1 (Gu et al. 2024, arXiv 2406.08446), whose task definitions are
allenai/OLMo-Eval olmo_eval/tasks/olmes_v0_1/<task>_std.py (cited per loader below as "OLMES <file>").
Each choice is a continuation carrying its leading space (lm-eval's target delimiter " "). COPA is
not in OLMES; it follows lm-evaluation-harness's super_glue/copa. A task loads by hub name through
`datasets` where a network exists, or from a local file (json/jsonl/parquet/csv) in the same schema;
its few-shot demonstrations come from the split OLMES takes them from (`Hub.fewshot_split`). The
derived task is built from held-out training documents instead (eval/derived.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, NamedTuple, Optional, Union

from ladder.core import mmlu as mmlu_groups

from eval.config import EvalConfig
from eval.derived import derived_task
from eval.examples import Example, TaskError, read_hub, read_local


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


def mmlu_group(subject: str) -> str:
    group = mmlu_groups.group_of(subject)
    if group is None:
        raise TaskError(f"unknown MMLU subject {subject!r}")
    return group


class TaskSize(NamedTuple):
    """What scoring a task costs (eval/cost.py): its split's size and typical token lengths under a ~50K BPE
    (measured roughly on the OLMo suite; a 2x error here moves the estimate, not the plan)."""
    examples: int  # in the split it is read from
    choices: int
    context_tokens: int  # a solved example is context + one choice
    choice_tokens: int
    pmi: bool = True  # scores each choice after "Answer:" too (all but partial scoring)


@dataclass(frozen=True)
class Hub:
    """Examples read from a hub dataset's split, or from a local file in its schema (eval.task_paths), one per
    row: `convert` makes a row (with every one of `fields`) an example."""
    path: str
    config: Optional[str]
    split: str
    fields: tuple[str, ...]  # required columns of the schema
    convert: Callable[[dict], Example]
    subset: Optional[Callable[[Example], bool]] = None  # e.g. one MMLU subject group
    # Where few-shot demonstrations come from: OLMES's curated examples are drawn from the train split
    # (OLMES std_fewshot.py), MMLU's are the first of its dev split (OLMES mmlu_std.py).
    fewshot_split: str = "train"
    needs_documents = False  # a class constant, not a field: read, not built from held-out documents

    def examples(self, name: str, cfg: EvalConfig, docs) -> tuple[list[Example], list[Example]]:
        """(examples, few-shot pool) from eval.task_paths / eval.fewshot_paths, else from the hub."""
        examples = self.load(name, cfg.task_paths.get(name))
        return examples, self.load(name, cfg.fewshot_paths.get(name), fewshot=True) if cfg.num_fewshot else []

    def load(self, name: str, path: Optional[str] = None, fewshot: bool = False) -> list[Example]:
        what = f"task {name}" + (" few-shot examples" if fewshot else "")
        if path is not None:
            rows, source = read_local(path, what), str(Path(path).expanduser())
        else:
            split = self.fewshot_split if fewshot else self.split
            key = "fewshot_paths" if fewshot else "task_paths"
            rows = read_hub(self.path, self.config, split, what,
                            f"set eval.{key}.{name} to a local file of its {split} split in its schema")
            source = f"{self.path} ({split})"
        missing = [f for f in self.fields if f not in rows.columns]
        if missing:
            raise TaskError(f"task {name}: {source} lacks field(s) {', '.join(missing)} of the schema")
        examples = []
        for i, row in enumerate(rows.rows):
            absent = [f for f in self.fields if row[f] is None]  # the reader fills a field a row lacks with null
            if absent:
                raise TaskError(f"task {name}: {source} row {i}: no value for field(s) {', '.join(absent)}")
            try:
                example = self.convert(row)
            except (TaskError, KeyError, TypeError, AttributeError) as exc:
                raise TaskError(f"task {name}: {source} row {i}: {exc}") from None
            if self.subset is None or self.subset(example):
                examples.append(example)
        if not examples:
            raise TaskError(f"task {name}: {source} has no examples")
        return examples


@dataclass(frozen=True)
class HeldOut:
    """Examples built from held-out documents of the training data (eval.derived.docs), not read from a file;
    with no train split, its demonstrations are other examples of the task."""
    build: Callable[[list[str], EvalConfig], list[Example]]
    needs_documents = True

    def examples(self, name: str, cfg: EvalConfig, docs: Optional[list[str]]) -> tuple[list[Example], list[Example]]:
        if docs is None:
            raise TaskError(f"task {name!r} needs held-out documents (eval.derived.docs)")
        examples = self.build(docs, cfg)
        return examples, examples


@dataclass(frozen=True)
class GroupMean:
    """A task reported as the weighted mean of its groups' metrics over the groups present, each group also
    as `<task>_<group>:*`."""
    weights: Mapping[str, float]
    group_of: Callable[[Example], str]

    def names(self, task: str) -> dict[str, str]:
        """group -> the task name its own metrics carry."""
        return {group: f"{task}_{group}" for group in self.weights}


@dataclass(frozen=True)
class TaskSpec:
    """Everything eval knows of a task besides its prompt format (its converter): where its examples come
    from, its size (or how the eval config sets it), its chance level, how its metrics combine. Scoring
    is the same for every task (RC, eval/run.py); partial scoring is the converter's (`Example.suffix`)."""
    loader: Union[Hub, HeldOut]
    size: Union[TaskSize, Callable[[EvalConfig], TaskSize]]
    groups: Optional[GroupMean] = None
    # Bumped whenever what its examples are (converter, prompt format, split, derived.py's construction)
    # changes: records carry it in their evaluation key (eval/keys.py), so a checkpoint evaluated by the
    # older version is evaluated again and the fit never mixes the two.
    version: int = 1

    def size_for(self, cfg: EvalConfig) -> TaskSize:
        return self.size(cfg) if callable(self.size) else self.size

    def chance(self, cfg: EvalConfig) -> float:
        """Its accuracies' chance level: a uniform guess among its choices (RC tasks)."""
        return 1 / self.size_for(cfg).choices


TOKENS_PER_WORD = 1.3


def _derived(docs: list[str], cfg: EvalConfig) -> list[Example]:
    d = cfg.derived
    return derived_task(docs, n_examples=d.n_examples, n_choices=d.n_choices, context_words=d.context_words,
                        continuation_words=d.continuation_words, seed=cfg.seed)


def _derived_size(cfg: EvalConfig) -> TaskSize:
    d = cfg.derived
    return TaskSize(d.n_examples, d.n_choices, round(d.context_words * TOKENS_PER_WORD),
                    round(d.continuation_words * TOKENS_PER_WORD))


def _mmlu(subset: Optional[Callable[[Example], bool]] = None) -> Hub:
    return Hub("cais/mmlu", "all", "test", ("question", "subject", "choices", "answer"), mmlu, subset,
               fewshot_split="dev")


_MMLU_MEAN = GroupMean(mmlu_groups.WEIGHTS, lambda ex: mmlu_group(ex.group))
_MMLU_GROUP_SIZES = {"stem": TaskSize(3018, 4, 70, 12), "humanities": TaskSize(4705, 4, 90, 12),
                     "social_sciences": TaskSize(3077, 4, 50, 10), "other": TaskSize(3242, 4, 55, 12)}
_QUESTION_CHOICES = ("question", "choices", "answerKey")
TASKS: dict[str, TaskSpec] = {
    "hellaswag": TaskSpec(Hub("Rowan/hellaswag", None, "validation",
                              ("ctx_a", "ctx_b", "endings", "label", "activity_label"), hellaswag),
                          TaskSize(10042, 4, 45, 25)),
    "arc_easy": TaskSpec(Hub("allenai/ai2_arc", "ARC-Easy", "test", _QUESTION_CHOICES, arc),
                         TaskSize(2376, 4, 30, 6)),
    "arc_challenge": TaskSpec(Hub("allenai/ai2_arc", "ARC-Challenge", "test", _QUESTION_CHOICES, arc),
                              TaskSize(1172, 4, 35, 8)),
    "piqa": TaskSpec(Hub("ybisk/piqa", None, "validation", ("goal", "sol1", "sol2", "label"), piqa),
                     TaskSize(1838, 2, 15, 25)),
    "csqa": TaskSpec(Hub("tau/commonsense_qa", None, "validation", _QUESTION_CHOICES, csqa), TaskSize(1221, 5, 20, 3)),
    "socialiqa": TaskSpec(Hub("allenai/social_i_qa", None, "validation",
                              ("context", "question", "answerA", "answerB", "answerC", "label"), socialiqa),
                          TaskSize(1954, 3, 35, 5)),
    "openbookqa": TaskSpec(Hub("allenai/openbookqa", "main", "test", ("question_stem", "choices", "answerKey"),
                               openbookqa), TaskSize(500, 4, 18, 5)),
    "mmlu": TaskSpec(_mmlu(), TaskSize(14042, 4, 70, 12), groups=_MMLU_MEAN),
    **{name: TaskSpec(_mmlu(lambda ex, g=g: mmlu_group(ex.group) == g), _MMLU_GROUP_SIZES[g])
       for g, name in _MMLU_MEAN.names("mmlu").items()},
    "winogrande": TaskSpec(Hub("allenai/winogrande", "winogrande_xl", "validation",
                               ("sentence", "option1", "option2", "answer"), winogrande),
                           TaskSize(1267, 2, 20, 8, pmi=False)),
    "boolq": TaskSpec(Hub("google/boolq", None, "validation", ("question", "passage", "answer"), boolq),
                      TaskSize(3270, 2, 150, 2)),
    "copa": TaskSpec(Hub("aps/super_glue", "copa", "validation", ("premise", "choice1", "choice2", "question", "label"),
                         copa), TaskSize(100, 2, 12, 8)),
    "derived": TaskSpec(HeldOut(_derived), _derived_size),
}


def task_spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def load_task(name: str, path: Optional[str] = None, *, fewshot: bool = False) -> list[Example]:
    """Examples of a task read from `path` (a local file in its HF schema) or from the hub.

    `fewshot`: the split demonstrations come from (`Hub.fewshot_split`) when `path` is None.
    """
    loader = task_spec(name).loader
    if loader.needs_documents:
        raise TaskError(f"task {name!r} is built from held-out documents, not read from a file")
    return loader.load(name, path, fewshot)


def file_tasks() -> list[str]:
    """The tasks read from a file or the hub, which eval.task_paths and eval.fewshot_paths may name."""
    return sorted(name for name, spec in TASKS.items() if not spec.loader.needs_documents)


def needs_documents(names) -> bool:
    """Whether any of these tasks is built from held-out documents (unknown names are the config check's)."""
    return any(TASKS[n].loader.needs_documents for n in names if n in TASKS)


def with_groups(per_task: Mapping[str, object]) -> dict[str, object]:
    """`per_task` (task -> value) with each group a task reports (`<task>_<group>`) given its task's value; a
    group evaluated as a task of its own (mmlu_stem) keeps its own."""
    out = {}
    for name, value in per_task.items():
        spec = TASKS.get(name)
        if spec is not None and spec.groups is not None:
            out.update({group: value for group in spec.groups.names(name).values()})
    return {**out, **per_task}


def chance_levels(cfg: EvalConfig) -> dict[str, float]:
    """Task -> the chance level of its accuracies, for each task `cfg` evaluates and each group one reports."""
    return with_groups({name: task_spec(name).chance(cfg) for name in cfg.tasks})
