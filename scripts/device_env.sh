# Sourced, from the repository's root, by scripts/gpu_check.sh, and by scripts/device_sim.py for the tests
# it runs in the simulated image: the lent GPU machine's environment for the harness. It installs the
# wheels carried in .whl/ (git-ignored, built beforehand by scripts/device_wheels.py) exactly as the
# device's notes say (--no-index --no-deps --target, then on PYTHONPATH), and turns the network off.
# PYTHON, GPU_CHECK_WHEELS and GPU_CHECK_SITE point it at another interpreter, wheels and folder.
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
