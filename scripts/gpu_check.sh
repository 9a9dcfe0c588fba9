#!/usr/bin/env bash
# The one prepared GPU check (scripts/gpu_check.py; docs/train.md, "GPU check") as the lent GPU machine runs
# it, in one command, with no network:
#
#   scripts/gpu_check.sh [OUT_JSON] [gpu_check.py options]     # OUT_JSON: default $OUT/gpu_check.json
#
# The image has torch, transformers, accelerate, ...; what the harness needs beyond it travels as wheels in
# .whl/, which scripts/device_env.sh installs (and says how to build when it is missing) before the check.
# scripts/device_sim.py runs this same script on a CPU in a venv holding only the image's packages, with
# PYTHON, GPU_CHECK_WHEELS, GPU_CHECK_SITE and GPU_CHECK_TIMEOUT pointing it at its own.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:+$OUT/gpu_check.json}}"
out="${out:-gpu_check.json}"
source scripts/device_env.sh
# The check starts a section only where its estimate fits in what is left of its --budget-s (420 s: 7 minutes on
# an H100 by its own estimates, the olmo-1B figure in the first 3); this bounds one that overruns its estimate.
exec timeout "${GPU_CHECK_TIMEOUT:-450}" "$python" scripts/gpu_check.py --device cuda --out "$out" "${@:2}"
