"""The OLMo ladder's W&B exports (Bhagia et al. 2024; ../shared/data/olmo-ladder): one CSV per run, a row per
evaluation, and the paper's conventions for them."""
import re
from pathlib import Path

import numpy as np
import pandas as pd

from fit.errors import FitInputError
from fit.points import SourceProfile, frame
from ladder.core import mmlu
from ladder.core.targets import NAMED

# Bhagia et al. 2024 (arXiv 2412.04403), the N of each rung used in the paper's fits.
OLMO_PARAMS = {"190M": 190354176, "370M": 371262464, "760M": 758220288, "1B": 1279395840,
               "7B": 6887575552, "13B": 13202396160}
OLMO_TARGET_RUNS = {"peteish13": ("13B", 13202396160, 5000088518656)}
OLMO_TASKS = ["mmlu", "hellaswag", "arc_challenge", "arc_easy", "piqa", "csqa", "socialiqa", "openbookqa"]
# The paper's splits per task (OLMo-ladder scaling/utils.py, "v2_main").
_OLMO_SPLITS = {"hellaswag": ["hellaswag_val"], "arc_challenge": ["arc_challenge_test"],
                "arc_easy": ["arc_easy_test"], "piqa": ["piqa_val"], "csqa": ["csqa_val"],
                "socialiqa": ["socialiqa_val"], "openbookqa": ["openbookqa_test"],
                "mmlu": ["mmlu_stem_test", "mmlu_humanities_test", "mmlu_social_sciences_test",
                         "mmlu_other_test"]}
_MMLU_WEIGHTS = {f"mmlu_{group}_test": weight for group, weight in mmlu.WEIGHTS.items()}
# The paper's accuracy floors for its 8 tasks (OLMo-ladder scaling/utils.py minimums_rc).
OLMO_CHANCE = {"mmlu": 0.25, "hellaswag": 0.25, "arc_challenge": 0.25, "arc_easy": 0.25, "piqa": 0.5, "csqa": 0.2,
               "socialiqa": 1 / 3, "openbookqa": 0.25}
_OLMO_KINDS = {"bpb": "eval/downstream_bpb/{s}_rc_5shot_bpb", "acc": "eval/downstream/{s}_rc_5shot_len_norm",
               "gold_prob": "eval/downstream_soft/{s}_rc_5shot_soft",
               "gold_logprob": "eval/downstream_soft_log/{s}_rc_5shot_soft_log"}



def _excluded(runs: pd.DataFrame) -> pd.Series:
    """The paper's 16 fit runs leave out the reruns and the 0.5xC runs."""
    return runs["run"].str.endswith("-rerun") | (runs["multiplier"] <= 10 + 1e-9)


PROFILE = SourceProfile(
    "olmo", final_window=5,  # the paper's convention: they evaluate every ~1 % of a run
    paper_starts=True, targets=tuple(NAMED.values()), excluded=_excluded,
    losses=lambda metric: metric.split(":")[0] in OLMO_TASKS or metric == "c4_en:loss",
    task_order=tuple(OLMO_TASKS))


def read(path: Path, dataset):
    frames, notes = [], []
    for f in sorted(path.glob("*.csv")):
        m = re.fullmatch(r"(\d+[MB])-([\d.]+)xC(-rerun)?", f.stem)
        df = pd.read_csv(f)
        if m:
            size, xc = m.group(1), float(m.group(2))
            run, params = f.stem, OLMO_PARAMS.get(size)
            if params is None:
                raise FitInputError(f"{f}: size {size} is not in the paper's size table")
            tokens = df["throughput/total_tokens"].astype(float)
            flops = df["throughput/total_training_Gflops"].astype(float) * 1e9
            run_tokens = float(tokens.iloc[-1])
        else:
            stem = next((k for k in OLMO_TARGET_RUNS if f.stem.startswith(k)), None)
            if stem is None:
                notes.append(f"{f.name}: not a ladder run file name, skipped")
                continue
            size, params, run_tokens = OLMO_TARGET_RUNS[stem]
            run = f"{size}-{run_tokens / 1e12:.0f}T"
            tokens = df["_step"].astype(float) * df["batch_size_in_tokens"].astype(float)
            flops = pd.Series(np.nan, index=df.index)
            xc = run_tokens / params / 20
        wide = {}
        for col in df.columns:
            cm = re.fullmatch(r"eval/(.+)-validation/CrossEntropyLoss", col)
            if cm:
                wide[f"{cm.group(1)}:loss"] = df[col].astype(float)
        for task, splits in _OLMO_SPLITS.items():
            for kind, pattern in _OLMO_KINDS.items():
                cols = [pattern.format(s=s) for s in splits]
                if all(c in df.columns for c in cols):
                    w = np.array([_MMLU_WEIGHTS.get(s, 1.0) for s in splits])
                    wide[f"{task}:{kind}"] = df[cols].astype(float).to_numpy() @ w / w.sum()
            if f"{task}:gold_logprob" in wide:
                # a loss (positive, falls with scale) so that step 1's power law can take it as intermediate
                wide[f"{task}:gold_nll"] = -wide[f"{task}:gold_logprob"]
        final_step = df["_step"].max()
        for metric, values in wide.items():
            frames.append(frame({
                "run": run, "size": size, "multiplier": 20 * xc, "params": float(params), "tokens": tokens,
                "run_tokens": run_tokens, "flops": flops, "step": df["_step"].astype(float),
                "final": df["_step"] == final_step, "metric": metric, "value": np.asarray(values, float),
                "dataset": "olmo"}))
    return frames, notes, {f"{task}:acc": c for task, c in OLMO_CHANCE.items()}


