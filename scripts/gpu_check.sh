#!/usr/bin/env bash
# The one prepared GPU check (scripts/gpu_check.py; docs/train.md, "GPU check"): on one H100/H200, no
# network, under 8 minutes, writes gpu_check.json (or the path given as $1).
#
# It needs PyTorch (CUDA build), transformers and accelerate; whatever else the harness imports
# (omegaconf, hydra-core, deepspeed, datasets, ...) is installed from scripts/wheels/ when missing.
# Fill that folder beforehand on a machine with a network, for the GPU machine's Python:
#   pip download -d scripts/wheels --only-binary=:all: --python-version 3.11 \
#       omegaconf hydra-core deepspeed datasets filelock psutil
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check.json}"
python=${PYTHON:-python}
missing=()
for module in omegaconf hydra deepspeed datasets filelock psutil; do
    "$python" -c "import $module" 2>/dev/null || missing+=("$module")
done
if ((${#missing[@]})); then
    declare -A package=([hydra]=hydra-core)
    wanted=()
    for module in "${missing[@]}"; do wanted+=("${package[$module]:-$module}"); done
    if [[ -d scripts/wheels ]]; then
        "$python" -m pip install --quiet --no-index --find-links scripts/wheels "${wanted[@]}"
    else
        echo "gpu_check: missing ${wanted[*]} and no scripts/wheels/ to install them from; the sections needing them will fail" >&2
    fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
exec timeout 470 "$python" scripts/gpu_check.py --device cuda --out "$out" "${@:2}"
