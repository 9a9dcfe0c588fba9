#!/usr/bin/env bash
# The one prepared GPU check (scripts/gpu_check.py; docs/train.md, "GPU check") as the lent GPU machine runs
# it, in one command, with no network:
#
#   scripts/gpu_check.sh [OUT_JSON] [gpu_check.py options]     # OUT_JSON: default $OUT/gpu_check.json
#
# The image has torch, transformers, accelerate, ...; what the harness needs beyond it travels as wheels in
# .whl/ (carried: it is git-ignored), built here beforehand by `.venv/bin/python scripts/device_wheels.py`,
# and is installed exactly as the device's notes say: --no-index --no-deps --target, then on PYTHONPATH.
# scripts/device_sim.py runs this same script on a CPU in a venv holding only the image's packages, with
# PYTHON, GPU_CHECK_WHEELS, GPU_CHECK_SITE and GPU_CHECK_TIMEOUT pointing it at its own.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:+$OUT/gpu_check.json}}"
out="${out:-gpu_check.json}"
python="${PYTHON:-python3}"
wheels="${GPU_CHECK_WHEELS:-.whl}"
site="${GPU_CHECK_SITE:-/tmp/site}"
if ! compgen -G "$wheels/*.whl" >/dev/null; then
    echo "gpu_check: no wheels in $wheels/; build them first, where pip reaches PyPI:" \
         ".venv/bin/python scripts/device_wheels.py --python 3.12 $wheels" >&2
    exit 2
fi
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$wheels"/*.whl \
    || { echo "gpu_check: installing $wheels/*.whl into $site failed" >&2; exit 2; }
export PYTHONPATH="$PWD:$site"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false HF_DATASETS_DISABLE_PROGRESS_BARS=1
# The check stops starting sections at its --budget-s (400 s); this bounds the one running then.
exec timeout "${GPU_CHECK_TIMEOUT:-450}" "$python" scripts/gpu_check.py --device cuda --out "$out" "${@:2}"
