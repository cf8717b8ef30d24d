"""What the loader costs at uwsgi start (issue 21): every plugin ships as a small
loader, <NAME>_plugin.so, that computes the loading uWSGI's ABI hash and only
then opens <NAME>_plugin.real.so.

usage: python benchmarks/loader_start.py [--uwsgi PATH] [--runs N]

Builds the sample plugin for the uwsgi with the backend (python -m build),
then times, alternating run by run, a new uwsgi process that loads the plugin
and exits (`uwsgi --plugins-dir DIR --need-plugin hello --version`):
  - through the loader, as the wheel ships it;
  - the real plugin alone, as <NAME>_plugin.so (what uWSGI would load without
    the loader: the cost of the check and of the second dlopen() is the difference);
  - no plugin at all (uwsgi --version), the floor.
It prints medians and the loader's cost in milliseconds and as a ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uwsgi", default=shutil.which("uwsgi"), help="the uwsgi to build for and start (default: PATH)")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if not args.uwsgi:
        sys.exit("no uwsgi: pass --uwsgi PATH")
    with tempfile.TemporaryDirectory(prefix="loader-bench-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check", "-o",
                        str(work / "out"), f"-Cuwsgi={args.uwsgi}", str(REPO / "sample_plugin")],
                       check=True, stdout=subprocess.DEVNULL)
        [wheel] = (work / "out").glob("*.whl")
        zipfile.ZipFile(wheel).extractall(work / "site")
        [loader_dir] = (work / "site").glob("uwsgi_plugin_hello/uwsgi_builds/*")
        direct_dir = work / "direct"
        direct_dir.mkdir()
        shutil.copyfile(loader_dir / "hello_plugin.real.so", direct_dir / "hello_plugin.so")
        commands = {
            "loader": [args.uwsgi, "--plugins-dir", str(loader_dir), "--need-plugin", "hello", "--version"],
            "real plugin alone": [args.uwsgi, "--plugins-dir", str(direct_dir), "--need-plugin", "hello", "--version"],
            "no plugin": [args.uwsgi, "--version"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(timed(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:18} {value * 1000:7.2f} ms (median of {args.runs})")
    cost = medians["loader"] - medians["real plugin alone"]
    print(f"the loader costs {cost * 1000:.2f} ms at start ({medians['loader'] / medians['real plugin alone']:.2f}x "
          f"of loading the real plugin alone)")


if __name__ == "__main__":
    main()
