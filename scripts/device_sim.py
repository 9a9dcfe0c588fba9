"""The GPU check on this CPU as the lent GPU machine runs it: whatever fails here would fail there.

    .venv/bin/python scripts/device_sim.py                          # venv and wheels cached under .cache/device-sim
    .venv/bin/python scripts/device_sim.py --fresh                  # all of it built anew, in a temporary folder
    .venv/bin/python scripts/device_sim.py --out check.json -- --sections imports resume   # gpu_check.py options

1. image: a Python 3.11 venv (torch's CPU wheel on this machine's disk is 3.11's) holding the pinned
   packages of scripts/device_image.txt, the device image's versions where PyPI has them for 3.11, and
   nothing the image lacks (their dependencies resolved by pip must be image packages too);
2. wheels: scripts/device_wheels.py's set for Python 3.12 (the device's) and for 3.11 (this venv's), which
   must hold the same packages at the same versions;
3. check: scripts/gpu_check.sh with that venv's python and the 3.11 wheels, installed into a new folder as
   the device installs them (--no-index --no-deps --target), running gpu_check.py --device cpu --tiny with
   the network turned off: every section must run, and none fail;
4. tests: `python -m pytest -q tests/train/test_train_gpu_path.py` in the same environment
   (scripts/device_env.sh, the wheels installed afresh): the compiled graph's attention without a mask and
   the GPU path's other contracts under the image's transformers, where they once broke.
The venv and the wheel sets are kept under --cache, keyed by their pins, so a rerun spends its time in
steps 3 and 4; the wheels are installed afresh every time.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import device_wheels  # noqa: E402

IMAGE = ROOT / "scripts" / "device_image.txt"
TESTS = "tests/train/test_train_gpu_path.py"


def image_packages() -> tuple[dict[str, str], set[str]]:
    """(the pinned packages: name -> version, every package name of the image)."""
    pins, names = {}, set()
    for line in IMAGE.read_text().splitlines():
        entry = line.split("#")[0].strip()
        if entry:
            name, _, version = entry.partition("==")
            names.add(device_wheels.canonical(name))
            if version:
                pins[name] = version
    return pins, names


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(map(str, command)), flush=True)
    return subprocess.run(list(map(str, command)), check=True, **kwargs)


def make_venv(directory: Path, python: str, pins: dict[str, str], names: set[str]) -> Path:
    """The simulated image in `directory` (kept once complete); its python."""
    bin_python = directory / "bin" / "python"
    stamp = directory / ".complete"
    if stamp.exists():
        return bin_python
    shutil.rmtree(directory, ignore_errors=True)  # an attempt that stopped half-way
    # The venv's own packages only: a PYTHONPATH (the tests set the worktree's) would add its own to pip's list
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    run([python, "-m", "venv", directory], env=env)
    run([bin_python, "-m", "pip", "install", "-q", *[f"{n}=={v}" for n, v in pins.items()]], env=env)
    listed = json.loads(run([bin_python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                            env=env).stdout)
    foreign = sorted(p["name"] for p in listed if device_wheels.canonical(p["name"]) not in names)
    if foreign:
        raise SystemExit(f"device_sim: the simulated image holds {', '.join(foreign)}, which the device's lacks "
                         f"({IMAGE.name}); pin versions whose dependencies it has")
    (directory / "pip-freeze.txt").write_text(run([bin_python, "-m", "pip", "freeze"], capture_output=True,
                                                  text=True, env=env).stdout)
    stamp.touch()
    return bin_python


def wheel_sets(cache: Path, key: str, python_version: str) -> Path:
    """The device's (3.12) and this venv's wheel sets, by the documented command; the venv's folder."""
    sets = {}
    for version in ("3.12", python_version):
        directory = cache / f"wheels-{version}-{key}"
        run([sys.executable, ROOT / "scripts" / "device_wheels.py", "--python", version, directory])
        sets[version] = {name: v for name, (v, _) in device_wheels.wheel_set(directory).items()}
    if sets["3.12"] != sets[python_version]:
        raise SystemExit(f"device_sim: the Python 3.12 and {python_version} wheel sets differ: "
                         f"{sets['3.12']} vs {sets[python_version]}")
    return cache / f"wheels-{python_version}-{key}"


def device_env(bin_python: Path, wheels: Path, site: str) -> dict:
    """The variables that point scripts/device_env.sh at the simulated image, its wheels and a new folder."""
    return {"PATH": f"{bin_python.parent}{os.pathsep}/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
            "PYTHON": str(bin_python), "GPU_CHECK_WHEELS": str(wheels), "GPU_CHECK_SITE": site,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def check(bin_python: Path, wheels: Path, out: Path, options: list[str], timeout: int) -> dict:
    """scripts/gpu_check.sh in the simulated image; its report, which must have every section done."""
    with tempfile.TemporaryDirectory(prefix="device-site-") as site:
        env = {**device_env(bin_python, wheels, site), "GPU_CHECK_TIMEOUT": str(timeout)}
        # --budget-s: the check's default is the H200's; this CPU, shared, takes longer, and every section must run
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(out), "--device", "cpu", "--tiny",
                               "--budget-s", str(timeout), *options], env=env)
    report = json.loads(out.read_text()) if out.exists() else {}
    bad = [s["section"] for s in report.get("sections", []) if "error" in s or "skipped" in s or s.get("returncode")]
    if proc.returncode or bad or not report.get("finished"):
        raise SystemExit(f"device_sim: gpu_check.sh exited {proc.returncode}; failed or skipped: {bad or 'none'}; "
                         f"finished: {report.get('finished')} ({out})")
    return report


def gpu_path_tests(bin_python: Path, wheels: Path) -> None:
    """TESTS by the image's pytest, in the environment gpu_check.sh gives the check."""
    with tempfile.TemporaryDirectory(prefix="device-site-") as site:
        command = f'source scripts/device_env.sh && exec "$python" -m pytest -q -p no:cacheprovider {TESTS}'
        proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=device_env(bin_python, wheels, site))
    if proc.returncode:
        raise SystemExit(f"device_sim: {TESTS} failed in the simulated image (pytest exited {proc.returncode})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="python3.11", help="the venv's interpreter (torch's CPU wheel here: 3.11)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "device-sim")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache: build everything in a temporary folder")
    parser.add_argument("--out", type=Path, default=None, help="gpu_check's JSON (default: in the cache)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds for gpu_check.sh on this CPU")
    parser.add_argument("options", nargs="*", help="after --: gpu_check.py options")
    args = parser.parse_args(argv)
    python_version = run([args.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True).stdout.strip()
    pins, names = image_packages()
    venv_key, wheels_key = (hashlib.sha256(json.dumps([python_version, x]).encode()).hexdigest()[:12]
                            for x in (pins, device_wheels.WHEELS))
    seconds = {}

    def timed(key: str, fn, *fn_args):
        start = time.perf_counter()
        result = fn(*fn_args)
        seconds[key] = time.perf_counter() - start
        return result

    out = args.out or args.cache / "gpu_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="device-sim-") as scratch:
        cache = Path(scratch) if args.fresh else args.cache
        cache.mkdir(parents=True, exist_ok=True)
        bin_python = timed("image", make_venv, cache / f"venv-{venv_key}", args.python, pins, names)
        wheels = timed("wheels", wheel_sets, cache, wheels_key, python_version)
        report = timed("check", check, bin_python, wheels, out, args.options, args.timeout)
        timed("tests", gpu_path_tests, bin_python, wheels)
    print(f"device_sim: {len(report['sections'])} sections and {TESTS} passed (image venv: Python {python_version}, "
          f"{len(pins)} pinned packages; {out}); seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
