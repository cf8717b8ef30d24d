"""Shared fixtures: real virtual environments, real uwsgi binaries, real frontends."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import importlib.metadata
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from uwsgi_plugin_backend.runtime import _uwsgi_plugin as runtime_module
from uwsgi_plugin_backend.settings import MachineSettings, load_machine_settings

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_plugin"
PACKAGES = Path(__file__).resolve().parent / "packages"
# pip's and uv's caches for the suite, kept between runs but never the user's own:
# uwsgi compiled from its sdist is reused from here instead of from ~/.cache/pip.
TOOL_CACHE = REPO / ".test-cache"
# What the backend learns of a uwsgi.h's layouts (target_uwsgi.layouts.learn: some 4 s a uwsgi build,
# a pure function of uwsgi.h, the CFLAGS and the compiler) is kept for the suite like
# pip's cache, so a test starts knowing it. The store is keyed by the learning code, so
# changed code learns afresh; tests of learning itself are marked `unlearned`.
LEARNING_CODE = ("target_uwsgi/layouts.py", "target_uwsgi/layout_text.py", "target_uwsgi/layout_trace.py",
                 "target_uwsgi/compiler.py", "runtime/_uwsgi_plugin.py")
LEARNED = TOOL_CACHE / "layouts" / hashlib.sha256(
    b"".join((REPO / "src" / "uwsgi_plugin_backend" / name).read_bytes() for name in LEARNING_CODE)).hexdigest()[:12]


# Fixtures that compile uwsgi, install pyuwsgi or build this backend's wheel: a
# test using one is slow, whether or not it says so itself.
SLOW_FIXTURES = {"pip_uwsgi", "pip_variants", "uwsgi_venv", "pyuwsgi_venv", "pyuwsgi_pythons", "wheelhouse"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("UWSGI_PLUGIN_BACKEND_CACHE_DIR", str(home / ".cache" / "uwsgi-plugin-backend"))
    monkeypatch.setenv("PIP_CACHE_DIR", str(TOOL_CACHE / "pip"))
    monkeypatch.setenv("UV_CACHE_DIR", str(TOOL_CACHE / "uv"))
    monkeypatch.delenv("PYTHONUSERBASE", raising=False)


@pytest.fixture(scope="session", autouse=True)
def isolated_session(tmp_path_factory) -> Iterator[Path]:
    """Session fixtures (venvs, the backend's wheel) run with a HOME of their own too."""
    home = tmp_path_factory.mktemp("session-home")
    layouts = home / ".cache" / "uwsgi-plugin-backend" / "layouts"
    # Tests that name a compiler of their own (a recording script in tmp_path) add an
    # entry no later run reads; start over once they pile up.
    if LEARNED.is_dir() and len(list(LEARNED.glob("*.json"))) > 100:
        shutil.rmtree(LEARNED, ignore_errors=True)
    _copy_new_files(LEARNED, layouts)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch, home)
        yield home
    _copy_new_files(layouts, LEARNED)


def _copy_new_files(source: Path, target: Path) -> None:
    """Copy the files of ``source`` that ``target`` lacks, each whole (write, then rename)."""
    if not source.is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.glob("*.json"):
        if not (target / entry.name).exists():
            partial = target / f".{entry.name}.{os.getpid()}"
            shutil.copyfile(entry, partial)
            os.replace(partial, target / entry.name)


@pytest.fixture(autouse=True)
def isolated_home(isolated_session, tmp_path_factory, monkeypatch, request) -> Iterator[Path]:
    """Every test gets its own HOME and backend cache; subprocesses inherit them.

    The tools' download caches (pip, uv) and the learned layouts (LEARNED) are
    shared by the suite in TOOL_CACHE, so a test never reads or writes the real
    user's home or cache.
    """
    home = tmp_path_factory.mktemp("home")
    _isolate(monkeypatch, home)
    layouts = home / ".cache" / "uwsgi-plugin-backend" / "layouts"
    if request.node.get_closest_marker("unlearned") is None:
        _copy_new_files(LEARNED, layouts)
    yield home
    _copy_new_files(layouts, LEARNED)


@pytest.fixture
def machine(isolated_home) -> MachineSettings:
    """The environment's settings as a build reads them: this test's own cache and the time limits."""
    return load_machine_settings()


def run(cmd: list[str | Path], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, output captured as text; on unexpected failure show it all."""
    result = subprocess.run(
        [str(part) for part in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )
    if check and result.returncode != 0:
        pytest.fail(f"command failed ({result.returncode}): {cmd}\n{result.stdout}")
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """The environment with no virtual environment activated and no uwsgi named."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UWSGI_PLUGIN_BACKEND_UWSGI", "PYTHONPATH")}
    env.update(extra)
    return env


@dataclasses.dataclass(frozen=True)
class Venv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def uwsgi(self) -> Path:
        return self.root / "bin" / "uwsgi"

    def pip(self, *args: str | Path, **kwargs) -> subprocess.CompletedProcess:
        return run([self.python, "-m", "pip", *args], env=clean_env(), **kwargs)

    def install(self, *args: str | Path) -> subprocess.CompletedProcess:
        """Set up what a test takes as given (uwsgi, this backend) with uv: a
        tenth of pip's second. Tests of what pip does call pip(). As pip installs:
        bytecode compiled (a test that compares site-packages before and after
        must not see it appear) and files copied, not linked to uv's cache."""
        return run([UV, "pip", "install", "-q", "--compile-bytecode", "--link-mode", "copy", "--python", self.python, *args],
                   env=clean_env())


UV = Path(sys.executable).parent / "uv"


def make_venv(path: Path, *packages: str, python: Path | None = None) -> Venv:
    """A virtual environment with pip, as `python3.12 -m venv` makes it, made by uv:
    it installs pip from its cache in a tenth of a second, ensurepip takes three.
    (Not `uv venv --seed`: it adds setuptools, wheel and packaging without bytecode,
    which a test comparing site-packages before and after would see written.)
    ``packages`` are installed by pip; ``python``: another interpreter than this one."""
    run([UV, "venv", "-q", "--python", python or sys.executable, path], env=clean_env())
    venv = Venv(path)
    run([UV, "pip", "install", "-q", "--python", venv.python, "pip"], env=clean_env())
    if packages:
        venv.pip("install", "-q", *packages)
    return venv


UWSGI_RELEASE = "2.0.31"


def _uwsgi_build_inputs(override: str | None) -> str:
    """What a pip-compiled uwsgi depends on beside its release: the profile override,
    and which of the headers of its optional features (-dev packages) are installed."""
    from uwsgi_plugin_backend.plugin_build.plugin import FEATURE_HEADERS

    found = [h for h in FEATURE_HEADERS if any(Path(d, h).exists() for d in ("/usr/include", "/usr/include/libxml2"))]
    return hashlib.sha256(repr((override, found)).encode()).hexdigest()[:10]


def kept_uwsgi_wheel(name: str = "default", override: str | None = None) -> Path:
    """uWSGI compiled by pip from its sdist (with UWSGI_PROFILE_OVERRIDE, when given),
    kept in TOOL_CACHE like pip keeps its own builds, per interpreter (--no-cache-dir:
    pip's cache would hand back the first configuration's wheel for every other).
    Unlike pip's, the kept build is keyed by its override and the -dev packages
    installed. The suite's workers take turns: each build compiles for a minute on both cores."""
    kept = TOOL_CACHE / "uwsgi-variants"
    house = kept / f"{UWSGI_RELEASE}-{name}-{_uwsgi_build_inputs(override)}-{sys.implementation.cache_tag}"
    kept.mkdir(parents=True, exist_ok=True)
    with open(kept / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not list(house.glob("*.whl")):
            for old in kept.glob(f"*-{name}-*{sys.implementation.cache_tag}"):  # other releases, overrides, packages
                shutil.rmtree(old, ignore_errors=True)
            env = clean_env()
            env.pop("UWSGI_PROFILE_OVERRIDE", None)
            if override:
                env["UWSGI_PROFILE_OVERRIDE"] = override
            partial = Path(tempfile.mkdtemp(dir=kept, prefix=".partial-"))
            try:
                run([sys.executable, "-m", "pip", "wheel", "-q", "--no-cache-dir", "--no-deps", "-w", partial,
                     f"uwsgi=={UWSGI_RELEASE}"], env=env)
                os.replace(partial, house)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    [wheel] = house.glob("*.whl")
    return wheel


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """A wheel of this backend, built from the checkout as pip would."""
    house = tmp_path_factory.mktemp("wheelhouse")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", house, REPO], env=clean_env())
    return house


VARIANTS = {"default": None, "lean": "xml=false;json=false;yaml=false", "nossl": "ssl=false"}


@pytest.fixture(scope="session")
def pip_variants(tmp_path_factory) -> dict[str, Path]:
    """uWSGI 2.0.31 from its sdist, three ways."""
    root = tmp_path_factory.mktemp("variants")
    binaries = {}
    for name, override in VARIANTS.items():  # one at a time: the machine has 2 cores
        venv = make_venv(root / name)
        venv.install(kept_uwsgi_wheel(name, override))
        binaries[name] = venv.uwsgi
    return binaries


@pytest.fixture(scope="session")
def uwsgi_venv(tmp_path_factory) -> Venv:
    """A user's virtual environment with uwsgi from pip (compiled from its sdist, then kept)."""
    venv = make_venv(tmp_path_factory.mktemp("user-env") / "venv")
    venv.install(kept_uwsgi_wheel())
    return venv


@pytest.fixture(scope="session")
def pip_uwsgi(uwsgi_venv) -> Path:
    return uwsgi_venv.uwsgi


def tree_digest(root: Path) -> dict[str, str]:
    """Every file and link below root with its content hash, to prove a tree unchanged."""
    digest = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            digest[key] = "link:" + os.readlink(path)
        elif path.is_file():
            digest[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[key] = "dir"
    return digest


def the_wheel(outdir: Path) -> Path:
    """The one wheel a build wrote into ``outdir``."""
    [wheel] = outdir.glob("*.whl")
    return wheel


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def installed_plugin(outdir: Path, site: Path, package: str, plugin: str) -> Path:
    """Unpack the one wheel in ``outdir`` into ``site`` (as installed); return its plugin's .so."""
    zipfile.ZipFile(the_wheel(outdir)).extractall(site)
    [shared_object] = site.glob(f"{package}/uwsgi_builds/*/{plugin}_plugin.so")
    return shared_object


def assert_one_clean_failure(result, project: Path, before: dict, outdir: Path, pattern: str) -> None:
    assert result.returncode != 0
    assert result.stdout.count("uwsgi-plugin-backend: error:") == 1, result.stdout
    assert "Traceback" not in result.stdout, result.stdout
    assert re.search(pattern, result.stdout, re.DOTALL), result.stdout
    assert tree_digest(project) == before
    assert sorted(p.name for p in outdir.iterdir()) == ["keep.txt"]


@pytest.fixture
def outdir(tmp_path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the output directory's own file")
    return out


def auditwheel_tag(wheel: Path) -> str:
    """The platform tag `auditwheel show` finds every ELF file of ``wheel`` consistent
    with (the most compatible one), e.g. ``manylinux_2_5_x86_64``."""
    shown = " ".join(run([Path(sys.executable).parent / "auditwheel", "show", wheel]).stdout.split())
    match = re.search(r'is consistent with the following platform tag: "([^"]+)"', shown)
    assert match, shown
    return match.group(1)


def platform_tags(wheel: Path) -> list[str]:
    """The platform tags of a wheel's file name, one by one."""
    return wheel.name.removesuffix(".whl").rsplit("-", 1)[1].split(".")


def newest_glibc(elf: Path) -> tuple[int, int]:
    """The newest GLIBC_2.N version ``elf`` needs, as readelf reads its version needs."""
    shown = run(["readelf", "--version-info", "--wide", elf]).stdout
    return max((int(major), int(minor)) for major, minor in re.findall(r"Name: GLIBC_(\d+)\.(\d+)", shown))


PYUWSGI_RELEASE = "2.0.30.post1"  # one ABI key under CPython 3.9 to 3.13 (DESIGN.md)


def python_version(version: str) -> Path:
    """A CPython ``version`` (``3.9``) of this machine: on PATH, from pyenv, else installed by uv."""
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)  # the real one: tests run with a HOME of their own
    root = Path(os.environ.get("PYENV_ROOT", home / ".pyenv"))
    candidates = [shutil.which(f"python{version}"), *sorted(root.glob(f"versions/{version}.*/bin/python{version}"))]
    for candidate in filter(None, candidates):
        if run([candidate, "-c", "pass"], check=False).returncode == 0:
            return Path(candidate)
    installs = TOOL_CACHE / "pythons"
    run([UV, "python", "install", "-q", "--install-dir", installs, version], env=clean_env())
    return Path(run([UV, "python", "find", "--no-project", version], env=clean_env(UV_PYTHON_INSTALL_DIR=str(installs))).stdout.strip())


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


# `python -m build` with this checkout's backend and its dependencies, which the suite's
# venv has: no isolated environment. BUILD skips the dependency check, a get_requires_for_build_*
# hook in a new interpreter (0.2 s a build); BUILD_CHECKED runs it first, as every frontend does.
BUILD_CHECKED = ["-m", "build", "--no-isolation"]
BUILD = [*BUILD_CHECKED, "--skip-dependency-check"]


def build_command(project: Path, outdir: Path, *args: str, checked: bool = False) -> list[str]:
    """`python -m build --wheel` without isolation, with this checkout's backend."""
    return [sys.executable, *(BUILD_CHECKED if checked else BUILD), "--wheel", "--outdir", str(outdir), *args, str(project)]


def build_wheel(project: Path, outdir: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
                checked: bool = False):
    """Run build_command()."""
    return run(build_command(project, outdir, *args, checked=checked), check=check, env=env or clean_env())


RECORDING_CC = """#!/bin/sh
# Record this compiler call's arguments, NUL-separated, in $CC_RECORD_DIR, then compile for real.
for arg in "$@"; do printf '%s\\0' "$arg"; done > "$CC_RECORD_DIR/call-$$"
exec gcc "$@"
"""


def recording_cc() -> Path:
    """A compiler that records its calls in $CC_RECORD_DIR. It keeps one path for
    the suite, as the compiler's path is part of what the layouts are learned
    for: a new path per test would learn them afresh (some 5 s) every time."""
    path = TOOL_CACHE / "bin" / "recording-cc"
    if not path.exists() or path.read_text() != RECORDING_CC:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".recording-cc.{os.getpid()}")
        partial.write_text(RECORDING_CC)
        partial.chmod(0o755)
        os.replace(partial, path)
    return path


def recorded_calls(record_dir: Path) -> list[list[str]]:
    return [path.read_bytes().decode().split("\0")[:-1] for path in sorted(record_dir.iterdir())]


@pytest.fixture
def seeded_cache() -> Iterator[Callable[[Path], Path]]:
    """Make new backend caches that know the suite's learned layouts, for a test of
    another part of the cache (its kits, its locks) that must start empty. What they
    learn is kept too: another uid's python names another compiler (x86_64-linux-gnu-gcc)."""
    made: list[Path] = []

    def seed(path: Path) -> Path:
        _copy_new_files(LEARNED, path / "layouts")
        made.append(path)
        return path

    yield seed
    for path in made:
        _copy_new_files(path / "layouts", LEARNED)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_uwsgi(uwsgi: Path, *args: str, log: Path) -> Iterator[str]:
    """Start uwsgi on a free 127.0.0.1 port; yield its base URL; always stop it."""
    port = free_port()
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [str(uwsgi), "--http-socket", f"127.0.0.1:{port}", "--die-on-term", *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,  # its workers too are stopped below, --master or not
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"uwsgi exited with {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"uwsgi did not listen on port {port}:\n{log.read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # uWSGI takes SIGTERM as "reload"
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with contextlib.suppress(ProcessLookupError):  # workers left behind by a uwsgi without --master
            os.killpg(process.pid, signal.SIGKILL)


def http_get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type"), response.read().decode()


def plugin_answer(uwsgi: Path, plugins_dir: Path | str, plugin: str, modifier1: int, log: Path, *args: str) -> str:
    """Start uwsgi with ``plugin`` from ``plugins_dir`` required, GET / and return the body."""
    with running_uwsgi(
        uwsgi, "--plugins-dir", str(plugins_dir), "--need-plugin", plugin,
        "--http-socket-modifier1", str(modifier1), *args, log=log,
    ) as url:
        status, _, body = http_get(url)
        assert status == 200
        return body


@pytest.fixture(scope="session")
def debian_uwsgi() -> Path:
    """Debian's uwsgi-core (2.0.21-debian, with -g in its CFLAGS); scripts/test installs it."""
    path = Path("/usr/bin/uwsgi-core")
    if not path.exists():
        pytest.fail("Debian's uwsgi-core is not installed: apt-get install -y uwsgi-core (scripts/test does)")
    return path


@pytest.fixture(scope="session")
def pyuwsgi_venv(tmp_path_factory) -> Venv:
    """A virtual environment with pyuwsgi: uWSGI as a Python extension module (wheel from PyPI)."""
    # A path with a space: pip then writes its console scripts with a /bin/sh exec line, not a shebang.
    return make_venv(tmp_path_factory.mktemp("pyuwsgi-env") / "py uwsgi", "pyuwsgi")


@pytest.fixture(scope="session")
def pyuwsgi_pythons(tmp_path_factory) -> Callable[[str], Venv]:
    """pyuwsgi PYUWSGI_RELEASE in a virtual environment of CPython ``version`` (``"3.9"``;
    this interpreter's own for its version), made once a session for each version."""
    made: dict[str, Venv] = {}

    def venv(version: str) -> Venv:
        if version not in made:
            own = version == f"{sys.version_info.major}.{sys.version_info.minor}"
            path = tmp_path_factory.mktemp("pyuwsgi-pythons") / f"py uwsgi {version}"
            made[version] = make_venv(path, f"pyuwsgi=={PYUWSGI_RELEASE}", python=None if own else python_version(version))
        return made[version]

    return venv


@pytest.fixture(scope="session")
def tool_venv(tmp_path_factory, wheelhouse) -> Venv:
    """A user's environment (its path has a space) with uwsgi, this backend and the sample plugin installed."""
    venv = make_venv(tmp_path_factory.mktemp("tools") / "user env")
    venv.install(kept_uwsgi_wheel(), "--find-links", wheelhouse, "uwsgi-plugin-backend")
    out = tmp_path_factory.mktemp("sample-wheel")
    venv.pip("wheel", "-q", "--no-deps", "--find-links", wheelhouse, "-w", out, SAMPLE)
    venv.install(*out.glob("*.whl"))
    return venv


NO_PASSWD_UID = "12345"  # a uid with no /etc/passwd entry


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory another uid can use (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="uwsgi-plugin-backend-test-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@functools.cache
def other_user_site() -> Path:
    """A directory any uid can read, with this checkout's backend and `build`, and
    every distribution they need, copied from the test environment: the checkout
    and the venv may lie where only root can enter (a mktemp clone, a 0700 home)."""
    site = Path(tempfile.mkdtemp(prefix="uwsgi-plugin-backend-site-"))
    atexit.register(shutil.rmtree, site, ignore_errors=True)
    wanted, copied = ["build", "uwsgi-plugin-backend"], set()
    while wanted:
        name = canonicalize_name(wanted.pop())
        if name in copied:
            continue
        copied.add(name)
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            source = Path(str(distribution.locate_file(file)))
            if source.is_file() and ".." not in file.parts:
                (site / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, site / file)
        for requirement in map(Requirement, distribution.requires or ()):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
    shutil.copytree(REPO / "src" / "uwsgi_plugin_backend", site / "uwsgi_plugin_backend", dirs_exist_ok=True)
    # Compiled now, as an installer would: the other uid cannot write __pycache__, and
    # would compile every module from source in every process.
    run(["/usr/bin/python3", "-m", "compileall", "-q", site])
    for path in [site, *site.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return site


def as_other_user(args: list, env: dict[str, str], paths: tuple[Path, ...] = (), **kwargs) -> subprocess.CompletedProcess:
    """``python ARGS`` as a uid without a passwd entry (and without root's power over
    permissions). The system python: this interpreter lives under root's private home;
    the backend and the packages it needs come by PYTHONPATH (other_user_site)."""
    setpriv = ["setpriv", "--reuid", NO_PASSWD_UID, "--regid", NO_PASSWD_UID, "--clear-groups"]
    path = os.pathsep.join([*map(str, paths), str(other_user_site())])
    return run([*setpriv, "/usr/bin/python3", *args], check=False, env={**env, "PYTHONPATH": path}, **kwargs)


def abi_key(cflags: str, dot_h: bytes, learned: dict, platform: str) -> str:
    """The ABI key from its parts, as the runtime module computes it for a record."""
    lines = runtime_module.abi_lines(cflags, learned)
    return f"{runtime_module.KEY_FORMAT}-{runtime_module.hash_of_parts(runtime_module.dot_h_hash(dot_h), platform, lines)}"
