"""Gadre et al. 2024's exp_data folder (../shared/data/gadre-scaling): a JSON per model with its losses, a JSON
per model with its 46 downstream accuracies, and the paper's fit sets."""
import json
from pathlib import Path

import numpy as np

from fit.errors import FitInputError
from fit.points import SourceProfile, frame
from fit.runs import gadre_runs

# Gadre et al. 2024 (arXiv 2403.08540, mlfoundations/scaling constants.py): the 17-task subset.
GADRE_SUBSET = ["bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy", "coqa",
                "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts", "winograd",
                "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata", "hellaswag", "copa",
                "squad", "piqa"]
GADRE_SIZES = {"d=96_l=8_h=4": "0.011B", "d=512_l=8_h=4": "0.079B", "d=576_l=24_h=8": "0.154B",
               "d=1024_l=24_h=8": "0.411B", "open_lm_1b": "1.4B", "open_lm_7b": "6.9B"}

PROFILE = SourceProfile("gadre", fit_sets=gadre_runs, accuracies=("avg46:err", "avg17:err"))


def _by_dataset(path: Path):
    by_ds = {}
    for f in sorted((path / "models").glob("*.json")):
        by_ds.setdefault(json.loads(f.read_text())["dataset_name"], []).append(f)
    if not by_ds:
        raise FitInputError(f"results={path}: no {path / 'models'}/*.json, not a Gadre et al. exp_data folder")
    return by_ds


def datasets(path: Path):
    """The datasets the folder's ladders were trained on (c4_original, rpj, ...)."""
    return sorted(_by_dataset(path))


def read(path: Path, dataset):
    by_ds = _by_dataset(path)
    if dataset is None:
        if len(by_ds) > 1:
            raise FitInputError(f"{path}/models: holds datasets {', '.join(sorted(by_ds))}; choose one with dataset=NAME")
        dataset = next(iter(by_ds))
    if dataset not in by_ds:
        raise FitInputError(f"dataset={dataset}: not in {path}/models (has {', '.join(sorted(by_ds))})")
    rows, notes = [], []
    for f in by_ds[dataset]:
        model = json.loads(f.read_text())
        hp = model["hyperparameters"]
        n, d, shape = float(hp["params"]), float(hp["tokens"]), hp["model"]
        base = dict(run=model["name"], size=GADRE_SIZES.get(shape, shape), multiplier=20 * hp["chinchilla_multiplier"],
                    params=n, tokens=d, run_tokens=d, flops=6 * n * d, step=np.nan, final=True, dataset=dataset)
        for res in model["results"]:
            rows.append({**base, "metric": f"{Path(res['val_data'][0]).parent.name}:loss", "value": res["loss"]})
        ev = path / "evals" / f"evaluation_{f.stem}_heavy.json"
        if not ev.exists():
            notes.append(f"{ev.name}: missing, run {model['name']} has no downstream errors")
            continue
        icl = json.loads(ev.read_text())["eval_metrics"]["icl"]
        for task, acc in icl.items():
            rows.append({**base, "metric": f"{task}:err", "value": 1 - acc})
        if len(icl) == 46:
            rows.append({**base, "metric": "avg46:err", "value": 1 - np.mean(list(icl.values()))})
        else:
            notes.append(f"{ev.name}: has {len(icl)} tasks, not 46; no avg46:err for this run")
        if all(t in icl for t in GADRE_SUBSET):
            rows.append({**base, "metric": "avg17:err", "value": 1 - np.mean([icl[t] for t in GADRE_SUBSET])})
    # The mean error over tasks of mixed chance has no floor, as in the paper's code.
    return [frame(rows)], notes, {"avg46:err": 0.0, "avg17:err": 0.0}


