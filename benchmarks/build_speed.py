"""Build speed of the backend against `uwsgi --build-plugin` on the same binary.

usage: python benchmarks/build_speed.py [--uwsgi PATH] [--runs N]

Every build_wheel runs in a new interpreter, as frontends run the hook
(pyproject_hooks starts one per hook call), so imports are counted; the
backend is installed (not editable) into a new virtual environment first, as
a frontend's build environment holds it, byte-code compiled.
In one session, alternating run by run, it times:
  - the sample plugin and a generated 16-file plugin: the backend's
    build_wheel hook (a clean build each time) against
    `uwsgi --build-plugin` (which always builds everything, on one core);
  - in a persistent build directory (-C build-dir): the no-change rebuild and
    the one-file-changed rebuild, against a clean build of the same plugin;
  - plugin_dir() of an installed wheel: cold (asks the binary) and cached;
  - the sample's first build for a new binary (an empty backend cache: the
    kit read and the layouts of uwsgi.h learned with the compiler), and the
    layout learning alone;
  - `pip install --no-cache-dir` of the sample as a user meets it (pip's
    isolated build environment made each time, the backend from a wheel of
    this checkout), with an empty backend cache and with a warm one, against
    `uwsgi --build-plugin`.
It prints medians, the ratios the targets are stated in, and peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from uwsgi_plugin_backend.settings import load_machine_settings
from uwsgi_plugin_backend.target_uwsgi.abi import target_abi
from uwsgi_plugin_backend.target_uwsgi.kit import extract_kit

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_plugin"
FILES = 16


def generated_plugin(target: Path) -> Path:
    """A plugin of 16 C files of realistic size: each includes uwsgi.h and
    holds some 40 functions of request-handling code."""
    target.mkdir()
    names = [f"part{i:02d}" for i in range(FILES)]
    (target / "uwsgiplugin.py").write_text(f"NAME = 'bench'\nGCC_LIST = {names!r}\n")
    (target / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["uwsgi-plugin-backend"]\nbuild-backend = "uwsgi_plugin_backend"\n\n'
        '[project]\nname = "uwsgi-plugin-bench"\nversion = "1.0"\n\n'
        '[project.entry-points."uwsgi.plugins"]\nbench = "uwsgi_plugin_bench:plugin_dir"\n'
    )
    for index, name in enumerate(names):
        functions = []
        for f in range(40):
            functions.append(f"""
static int {name}_handler{f}(struct wsgi_request *wsgi_req, const char *key, uint16_t keylen) {{
	char buf[256];
	uint16_t i;
	int total = 0;
	if (!key || keylen == 0) return -1;
	for (i = 0; i < keylen && i < sizeof(buf) - 1; i++) {{
		buf[i] = (key[i] >= 'a' && key[i] <= 'z') ? key[i] - 32 : key[i];
		total += buf[i] * {f + 1};
	}}
	buf[i] = 0;
	if (total % {f + 3} == 0) {{
		uwsgi_log("{name}:{f} %s %d\\n", buf, total);
	}}
	if (wsgi_req && wsgi_req->uri_len > {f}) {{
		total += uwsgi_str_num(wsgi_req->uri, wsgi_req->uri_len > 8 ? 8 : wsgi_req->uri_len);
	}}
	return total ^ {index * 100 + f};
}}""")
        calls = " + ".join(f"{name}_handler{f}(wsgi_req, key, keylen)" for f in range(40))
        main = "" if index else """
static int bench_request(struct wsgi_request *wsgi_req) {
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, "bench", 5);
	return UWSGI_OK;
}

struct uwsgi_plugin bench_plugin = { .name = "bench", .modifier1 = 248, .request = bench_request };
"""
        (target / f"{name}.c").write_text(
            "#include <uwsgi.h>\n" + "".join(functions)
            + f"\nint {name}_all(struct wsgi_request *wsgi_req, const char *key, uint16_t keylen) {{\n\treturn {calls};\n}}\n"
            + main
        )
    return target


HOOK = "import json, sys, uwsgi_plugin_backend as b; b.build_wheel(sys.argv[1], json.loads(sys.argv[2]))"


def build_environment(target: Path) -> Path:
    """A virtual environment with the backend installed from this checkout, as in
    a frontend's build environment; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    python = target / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)], check=True)
    return python


def build_hook(python: Path, project: Path, out: Path, settings: dict) -> float:
    """The backend's build_wheel hook in a new interpreter, as a frontend runs it; seconds."""
    start = time.perf_counter()
    subprocess.run([str(python), "-c", HOOK, str(out), json.dumps(settings)], cwd=project, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


@contextlib.contextmanager
def empty_cache(path: Path):
    """The backend cache at a new, empty ``path``: as for a uwsgi binary never built for."""
    old = os.environ.get("UWSGI_PLUGIN_BACKEND_CACHE_DIR")
    os.environ["UWSGI_PLUGIN_BACKEND_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            del os.environ["UWSGI_PLUGIN_BACKEND_CACHE_DIR"]
        else:
            os.environ["UWSGI_PLUGIN_BACKEND_CACHE_DIR"] = old


def learning(uwsgi: str) -> float:
    """Learning which macros change uwsgi.h's layouts (target_uwsgi/layouts.py), uncached; seconds."""
    machine = load_machine_settings()
    kit = extract_kit(Path(uwsgi), machine.uwsgi_timeout)
    start = time.perf_counter()
    target_abi(kit, machine.cache_dir)  # learns, as a first build does
    return time.perf_counter() - start


def pip_install(target: Path, wheelhouse: Path, project: Path, uwsgi: str) -> float:
    """`pip install --no-cache-dir` of ``project`` into the environment ``target``; seconds.
    pip builds the wheel in an isolated environment with the backend from ``wheelhouse``."""
    env = {**os.environ, "UWSGI_PLUGIN_BACKEND_UWSGI": uwsgi}
    start = time.perf_counter()
    subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir", "--force-reinstall",
                    "--no-deps", "--disable-pip-version-check", "--find-links", str(wheelhouse), str(project)],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def build_plugin_command(uwsgi: str, project: Path, workdir: Path) -> float:
    workdir.mkdir()
    start = time.perf_counter()
    subprocess.run([uwsgi, "--build-plugin", str(project)], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uwsgi", default=shutil.which("uwsgi"), help="the uwsgi binary (default: uwsgi on PATH)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not args.uwsgi:
        parser.error("no uwsgi on PATH; pass --uwsgi PATH")
    uwsgi = str(Path(args.uwsgi).absolute())
    keys = ("sample-hook", "sample-cmd", "bench-hook", "bench-cmd", "clean", "nochange", "onefile", "cold", "cached",
            "first", "learning", "pip-cold", "pip-warm")
    times: dict[str, list[float]] = {key: [] for key in keys}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        python = build_environment(work / "build-env")
        wheelhouse = work / "wheelhouse"  # what pip's isolated build environment installs the backend from
        subprocess.run([str(python), "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w",
                        str(wheelhouse), str(REPO)], check=True)
        user_env = work / "user-env"
        subprocess.run([sys.executable, "-m", "venv", str(user_env)], check=True)
        os.environ["UWSGI_PLUGIN_BACKEND_CACHE_DIR"] = str(work / "cache")  # never the user's own
        sample = shutil.copytree(SAMPLE, work / "sample")
        bench = generated_plugin(work / "bench")
        build_hook(python, sample, work / "warm", {"uwsgi": uwsgi})  # imports done, kit cached: as in any frontend's later builds
        persistent = work / "build-dir"
        for run in range(args.runs):
            times["sample-hook"].append(build_hook(python, sample, work / f"o{run}a", {"uwsgi": uwsgi}))
            times["sample-cmd"].append(build_plugin_command(uwsgi, sample, work / f"c{run}a"))
            times["bench-hook"].append(build_hook(python, bench, work / f"o{run}b", {"uwsgi": uwsgi}))
            times["bench-cmd"].append(build_plugin_command(uwsgi, bench, work / f"c{run}b"))
            shutil.rmtree(persistent, ignore_errors=True)
            settings = {"uwsgi": uwsgi, "build-dir": str(persistent)}
            times["clean"].append(build_hook(python, bench, work / f"o{run}c", settings))
            times["nochange"].append(build_hook(python, bench, work / f"o{run}d", settings))
            source = bench / "part07.c"
            source.write_text(source.read_text() + f"\n/* edit {run} */\n")
            times["onefile"].append(build_hook(python, bench, work / f"o{run}e", settings))
            with empty_cache(work / f"first-cache{run}"):
                times["first"].append(build_hook(python, sample, work / f"o{run}f", {"uwsgi": uwsgi}))
            with empty_cache(work / f"learn-cache{run}"):
                times["learning"].append(learning(uwsgi))
            with empty_cache(work / f"pip-cache{run}"):
                times["pip-cold"].append(pip_install(user_env, wheelhouse, sample, uwsgi))
            times["pip-warm"].append(pip_install(user_env, wheelhouse, sample, uwsgi))

        # plugin_dir() of the sample's wheel, unpacked as installed: cold (asks the binary) and cached.
        site = work / "site"
        zipfile.ZipFile(next((work / "o0a").glob("*.whl"))).extractall(site)
        sys.path.insert(0, str(site))
        import uwsgi_plugin_hello._uwsgi_plugin as installed

        os.environ["UWSGI_PLUGIN_BACKEND_CACHE_DIR"] = str(work / "abi-cache")
        for _ in range(args.runs):
            shutil.rmtree(work / "abi-cache", ignore_errors=True)
            for key in ("cold", "cached"):
                start = time.perf_counter()
                installed.plugin_dir(uwsgi)
                times[key].append(time.perf_counter() - start)

    m = {key: statistics.median(value) for key, value in times.items()}
    rows = [
        ("sample: uwsgi --build-plugin", m["sample-cmd"], ""),
        ("sample: build_wheel hook", m["sample-hook"], f"{m['sample-hook'] / m['sample-cmd']:.2f}x of uwsgi --build-plugin (target <= 1.3x)"),
        (f"{FILES} files: uwsgi --build-plugin", m["bench-cmd"], ""),
        (f"{FILES} files: build_wheel hook, clean", m["bench-hook"], f"{m['bench-hook'] / m['bench-cmd']:.2f}x of uwsgi --build-plugin (target <= 0.52x)"),
        (f"{FILES} files: clean, -C build-dir", m["clean"], ""),
        (f"{FILES} files: no change, -C build-dir", m["nochange"], f"{m['nochange'] / m['clean']:.2f}x of a clean build (target <= 0.06x)"),
        (f"{FILES} files: one file changed", m["onefile"], f"{m['onefile'] / m['clean']:.2f}x of a clean build (target <= 0.3x)"),
        ("sample: first build for a new binary", m["first"],
         f"+{m['first'] - m['sample-hook']:.2f} s over a build with everything cached (target <= +1.0 s)"),
        ("  of which: learning uwsgi.h's layouts", m["learning"], "(in-process, after the kit is read)"),
        ("sample: pip install, backend cache warm", m["pip-warm"], f"{m['pip-warm'] / m['sample-cmd']:.1f}x of uwsgi --build-plugin"),
        ("sample: pip install, backend cache empty", m["pip-cold"],
         f"{m['pip-cold'] / m['sample-cmd']:.1f}x of uwsgi --build-plugin; {m['pip-cold'] / m['pip-warm']:.2f}x of "
         "a warm one (target <= 2x)"),
        ("plugin_dir(), cold (asks the binary)", m["cold"], "target < 50 ms"),
        ("plugin_dir(), cached key", m["cached"], "target < 5 ms"),
    ]
    print(f"uwsgi {uwsgi}; {args.runs} alternating runs; medians; {len(os.sched_getaffinity(0))} cores")
    print(f"| {'what':<42} | {'time':>10} | ratio |")
    print(f"| {'-' * 42} | {'-' * 10} | ----- |")
    for what, seconds, ratio in rows:
        shown = f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds:.3f} s"
        print(f"| {what:<42} | {shown:>10} | {ratio} |")
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"peak memory: largest process it started (a build_wheel interpreter, compiler, driver or uwsgi) "
          f"{children_kb / 1024:.0f} MiB; the benchmark itself (plugin_dir() in-process) {self_kb / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
