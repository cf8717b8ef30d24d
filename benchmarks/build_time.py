"""Build time of the sample plugin: the backend's build_wheel hook against
`uwsgi --build-plugin` on the same binary, alternating in one session.

usage: python benchmarks/build_time.py [--uwsgi PATH] [--runs N]
Prints a table of medians and the ratio backend / uwsgi --build-plugin.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "sample_plugin"
HOOK = "import sys, uwsgi_plugin_backend as b; b.build_wheel(sys.argv[1], {'uwsgi': sys.argv[2]})"


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uwsgi", default=shutil.which("uwsgi"), help="the uwsgi binary (default: uwsgi on PATH)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not args.uwsgi:
        parser.error("no uwsgi on PATH; pass --uwsgi PATH")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        project = work / "sample"
        shutil.copytree(SAMPLE, project)
        backend, builder = [], []
        for run in range(args.runs):
            out = work / f"out-{run}"
            backend.append(timed([sys.executable, "-c", HOOK, str(out), args.uwsgi], cwd=project))
            plugin_build = work / f"build-plugin-{run}"
            plugin_build.mkdir()
            builder.append(timed([args.uwsgi, "--build-plugin", str(project)], cwd=plugin_build))
    b, u = statistics.median(backend), statistics.median(builder)
    print(f"uwsgi: {args.uwsgi}, {args.runs} alternating runs, medians")
    print(f"{'what':<40} {'seconds':>8}")
    print(f"{'uwsgi --build-plugin sample_plugin':<40} {u:>8.3f}")
    print(f"{'build_wheel hook (fresh interpreter)':<40} {b:>8.3f}")
    print(f"{'ratio backend / uwsgi --build-plugin':<40} {b / u:>8.2f}")


if __name__ == "__main__":
    main()
