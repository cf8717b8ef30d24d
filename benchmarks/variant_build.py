"""Build time with ABI variants against one build, on the same binary.

usage: python benchmarks/variant_build.py [--uwsgi PATH] [--runs N] [--variants all]

The sample plugin's build_wheel hook in a new interpreter per build (as
frontends run it), the backend installed into a new virtual environment,
alternating run by run:
  - one build (abi-variants unset) and the build with ``--variants``, both with
    the backend cache warm (kit and layouts known: a maintainer's later builds);
  - the same two with an empty backend cache (a fresh CI runner: every
    variant's layouts are learned).
It prints medians, the ratio with variants to one build, and how many builds
the wheel holds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_speed import SAMPLE, build_environment, build_hook, empty_cache  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uwsgi", default=shutil.which("uwsgi"), help="the uwsgi binary (default: uwsgi on PATH)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variants", default="all", help="the abi-variants value (default: all)")
    args = parser.parse_args()
    if not args.uwsgi:
        parser.error("no uwsgi on PATH; pass --uwsgi PATH")
    uwsgi = str(Path(args.uwsgi).absolute())
    one = {"uwsgi": uwsgi}
    varied = {"uwsgi": uwsgi, "abi-variants": args.variants}
    times: dict[str, list[float]] = {key: [] for key in ("one", "variants", "one-cold", "variants-cold")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        python = build_environment(work / "build-env")
        sample = shutil.copytree(SAMPLE, work / "sample")
        with empty_cache(work / "cache"):
            build_hook(python, sample, work / "warm", varied)  # every variant learned once
            for run in range(args.runs):
                times["one"].append(build_hook(python, sample, work / f"o{run}", one))
                times["variants"].append(build_hook(python, sample, work / f"v{run}", varied))
        for run in range(args.runs):
            with empty_cache(work / f"cold-one{run}"):
                times["one-cold"].append(build_hook(python, sample, work / f"oc{run}", one))
            with empty_cache(work / f"cold-variants{run}"):
                times["variants-cold"].append(build_hook(python, sample, work / f"vc{run}", varied))
        names = zipfile.ZipFile(next((work / "v0").glob("*.whl"))).namelist()
        builds = len({name.split("/")[2] for name in names if "/uwsgi_builds/abi_" in name})
    m = {key: statistics.median(value) for key, value in times.items()}
    print(f"uwsgi: {uwsgi}; abi-variants={args.variants}: the wheel holds {builds} builds; medians of {args.runs}")
    print(f"{'warm cache: one build':48} {m['one']:7.2f} s")
    print(f"{'warm cache: with variants':48} {m['variants']:7.2f} s  {m['variants'] / m['one']:5.1f}x")
    print(f"{'empty cache: one build':48} {m['one-cold']:7.2f} s")
    print(f"{'empty cache: with variants':48} {m['variants-cold']:7.2f} s  {m['variants-cold'] / m['one-cold']:5.1f}x")


if __name__ == "__main__":
    main()
