"""The wheels the lent GPU machine's image lacks, for its Python, in one folder carried with the GPU check.

    .venv/bin/python scripts/device_wheels.py                     # Python 3.12 (the device's), into .whl/
    .venv/bin/python scripts/device_wheels.py --python 3.11 DIR   # the device simulation's (scripts/device_sim.py)

The image (scripts/device_image.txt) has torch, transformers, accelerate, numpy, pyarrow, ...; `WHEELS` is
what the train, eval and gpu_check path and the `ladder` CLI import beyond it (the device simulation's
`imports` section finds any other), at the versions `make install` gives here. They are fetched for the
target Python with `pip download --no-deps --only-binary=:all:`; the two that PyPI has as sdists only are
built here with `pip wheel --no-deps --no-build-isolation` and must come out pure py3 wheels. The device
installs the folder with `--no-deps` (scripts/gpu_check.sh), so the set is exactly what is listed: one
version of each, no resolver. Prints each wheel's size and the total, and fails over `--limit-mib`, since
everything carried to the device shares 64 MiB.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = {
    # OmegaConf configs everywhere (train.loop, train.worker, eval.cli, ladder.core.configs); Hydra in the CLI
    "omegaconf": "2.3.1", "antlr4-python3-runtime": "4.9.3", "hydra-core": "1.3.8",
    # train=deepspeed_*, and what deepspeed imports that the image lacks
    "deepspeed": "0.19.8", "hjson": "3.1.0", "pydantic": "2.14.4", "pydantic-core": "2.50.5",  # pydantic's pin
    "annotated-types": "0.8.0", "typing-inspection": "0.4.5",
    "typing-extensions": "4.16.0",  # pydantic 2.14 needs >= 4.16; the image's version is not known
    "liger-kernel": "0.8.5",  # the fused linear cross-entropy on CUDA (train/loss.py): Python and Triton only
    "submitit": "1.5.4",  # ladder.orchestration.slurm, imported by the pipeline (`ladder run`), subclasses its job
    # Not datasets (with dill and multiprocess, 0.8 MiB): eval reads local task files with pyarrow, and only
    # data preparation (train.data.sources) and hub task loads import it, lazily; the check does neither.
}
BUILT = ("antlr4-python3-runtime", "deepspeed")  # sdists only on PyPI
# The device is x86-64 Linux; pip matches manylinux tags exactly, so the usual ones are all named.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
LIMIT_MIB = 32


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_set(directory: Path) -> dict[str, tuple[str, str]]:
    """canonical name -> (version, file name) of every wheel in `directory`."""
    found = {}
    for path in sorted(Path(directory).glob("*.whl")):
        name, version = path.name.split("-")[:2]
        if canonical(name) in found:
            raise SystemExit(f"device_wheels: {directory} holds two wheels of {name}: pip would refuse both")
        found[canonical(name)] = (version, path.name)
    return found


def _fits(file_name: str, python: str) -> bool:
    """Whether a wheel's Python tag (py3, py312, cp312) runs on `python` ("3.12")."""
    tags = file_name[:-len(".whl")].split("-")[-3].split(".")
    return any(t in ("py3", f"py{python.replace('.', '')}", f"cp{python.replace('.', '')}") for t in tags)


def _check_pure(path: Path) -> None:
    with zipfile.ZipFile(path) as wheel:
        compiled = [n for n in wheel.namelist() if n.endswith((".so", ".pyd", ".dll"))]
    if not path.name.endswith("-py3-none-any.whl") or compiled:
        raise SystemExit(f"device_wheels: {path.name} is not a pure py3 wheel ({', '.join(compiled[:3]) or 'its tag'}); "
                         f"the device could not use a build made here")


def _pip(*args: str, env: dict | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env={**os.environ, **(env or {})})


def missing_build_tools() -> str | None:
    """Why this interpreter cannot build the sdist-only wheels, or None: `pip wheel --no-build-isolation` builds
    with its own setuptools, which makes wheels itself from 70.1 on and needs the `wheel` package before."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return "setuptools is not installed"
    if tuple(int(x) for x in re.findall(r"\d+", version)[:2]) >= (70, 1) or importlib.util.find_spec("wheel"):
        return None
    return f"its setuptools {version} is older than 70.1 and the wheel package is not installed"


def build(directory: Path, python: str) -> dict[str, tuple[str, str]]:
    """Fill `directory` with WHEELS for `python`; the wheels already there are kept, foreign ones refused."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, (version, file) in wheel_set(directory).items():
        if WHEELS.get(name) != version or not _fits(file, python):
            raise SystemExit(f"device_wheels: {directory / file} is not one of the pinned wheels for Python {python}; "
                             f"remove it or give another folder")
    have = wheel_set(directory)
    fetch = [f"{n}=={v}" for n, v in WHEELS.items() if n not in BUILT and n not in have]
    if fetch:
        _pip("download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
             *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(directory), *fetch)
    to_build = [n for n in BUILT if n not in have]
    if to_build and (why := missing_build_tools()):
        raise SystemExit(f"device_wheels: cannot build {', '.join(to_build)} from their sdists with {sys.executable}: "
                         f"{why}; run `{sys.executable} -m pip install 'setuptools>=70.1'` first")
    for name in to_build:
        with tempfile.TemporaryDirectory() as tmp:
            # DS_BUILD_OPS=0: no compiled ops (the harness's ZeRO steps torch's own AdamW); no isolation, so
            # deepspeed's setup sees this venv's torch rather than downloading another.
            _pip("wheel", "-q", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-w", tmp,
                 f"{name}=={WHEELS[name]}", env={"DS_BUILD_OPS": "0"})
            (wheel,) = Path(tmp).glob("*.whl")
            _check_pure(wheel)
            shutil.move(str(wheel), directory / wheel.name)
    found = wheel_set(directory)
    wrong = {n: v for n, (v, _) in found.items() if WHEELS.get(n) != v} | {n: None for n in WHEELS if n not in found}
    if wrong:
        raise SystemExit(f"device_wheels: {directory} does not hold exactly the pinned set: {wrong}")
    _check_requirements(directory, found, python)
    return found


def _check_requirements(directory: Path, found: dict[str, tuple[str, str]], python: str) -> None:
    """Whatever one wheel of the set requires of another (pydantic: pydantic-core==X) the pins must satisfy:
    with --no-deps nothing else checks it before the device imports them."""
    from packaging.requirements import Requirement

    for _, file in found.values():
        with zipfile.ZipFile(directory / file) as wheel:
            meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            lines = wheel.read(meta).decode().splitlines()
        for line in (x[len("Requires-Dist: "):] for x in lines if x.startswith("Requires-Dist: ")):
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"python_version": python, "extra": ""}):
                continue
            pinned = found.get(canonical(req.name))
            if pinned and not req.specifier.contains(pinned[0], prereleases=True):
                raise SystemExit(f"device_wheels: {file} requires {line}; the pin is {pinned[0]}")


def _drift() -> list[str]:
    """Pins that differ from this environment's installed versions (what `make install` gave here)."""
    out = []
    for name, version in WHEELS.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if installed != version:
            out.append(f"{name} {version} (installed here: {installed})")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=ROOT / ".whl")
    parser.add_argument("--python", default="3.12", help="the Python the wheels are for (the device's: 3.12)")
    parser.add_argument("--limit-mib", type=float, default=LIMIT_MIB, help="fail when the set is larger")
    args = parser.parse_args(argv)
    found = build(args.directory, args.python)
    total = 0
    for _, file in sorted(found.values(), key=lambda vf: vf[1].lower()):
        size = (args.directory / file).stat().st_size
        total += size
        print(f"{size / 2**20:8.2f} MiB  {file}")
    print(f"{total / 2**20:8.2f} MiB  in all, {len(found)} wheels for Python {args.python} in {args.directory} "
          f"(limit {args.limit_mib:g} MiB)")
    for line in _drift():
        print(f"note: pinned {line}")
    if total > args.limit_mib * 2**20:
        print(f"device_wheels: {total / 2**20:.1f} MiB is over the {args.limit_mib:g} MiB limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
