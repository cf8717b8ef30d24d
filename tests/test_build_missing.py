"""No dead end: a wheel with no build for the user's uwsgi says so, names
`uwsgi-plugin-backend build-missing` first, and that command builds one from
the sources the wheel carries, where plugin_dir() finds it. Also the sdist
route as the message writes it, and the upgrade story of docs/operators.md."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import (
    BUILD,
    SAMPLE,
    UV,
    Venv,
    build_wheel,
    clean_env,
    copy_project,
    free_port,
    kept_uwsgi_wheel,
    make_venv,
    plugin_answer,
    run,
    tree_digest,
)

pytestmark = pytest.mark.slow
DIST = "uwsgi-plugin-hello"


# An upgrade to another plugin ABI: pyuwsgi 2.0.27.post1 and 2.0.30.post1 carry
# different uwsgi.h files (2.0.29 and 2.0.30.post1 share theirs, and one key).
OLD_PYUWSGI = "pyuwsgi==2.0.27.post1"


@pytest.fixture(scope="module")
def debian_wheel(tmp_path_factory, debian_uwsgi) -> Path:
    """The sample's wheel built for Debian's uwsgi-core only (sources shipped, the default)."""
    out = tmp_path_factory.mktemp("debian-wheel")
    build_wheel(copy_project(SAMPLE, out / "project"), out, f"-Cuwsgi={debian_uwsgi}")
    [wheel] = out.glob("*.whl")
    return wheel


@pytest.fixture
def pip_uwsgi_env(tmp_path, wheelhouse, debian_wheel, uwsgi_venv) -> Venv:
    """A venv with pip's uWSGI (compiled once, then from pip's cache), the backend and the Debian-only wheel."""
    venv = make_venv(tmp_path / "venv")
    venv.install(kept_uwsgi_wheel(), "--find-links", wheelhouse, "uwsgi-plugin-backend")
    venv.pip("install", "-q", debian_wheel)  # pip's RECORD: what build-missing adds must leave with pip uninstall
    return venv


def site_packages(venv: Venv) -> Path:
    [site] = (venv.root / "lib").glob("python*/site-packages")
    return site


def build_missing(venv: Venv, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run([venv.root / "bin" / "uwsgi-plugin-backend", "build-missing", DIST, *args],
               env=clean_env(**env), check=False)


def test_wheel_carries_sources_and_says_build_missing_first(pip_uwsgi_env, debian_wheel, tmp_path):
    names = zipfile.ZipFile(debian_wheel).namelist()
    assert {"uwsgi_plugin_hello/_sources/pyproject.toml", "uwsgi_plugin_hello/_sources/hello.c",
            "uwsgi_plugin_hello/_sources/uwsgiplugin.py"} <= set(names)
    refused = run([pip_uwsgi_env.python, "-m", "uwsgi_plugin_hello"], env=clean_env(), check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stdout
    assert f"has no build of its plugins for {pip_uwsgi_env.uwsgi}" in refused.stdout
    first = refused.stdout.index("uwsgi-plugin-backend build-missing uwsgi-plugin-hello")
    # Installed from a wheel file: the route through the source is the project's, not an index's.
    assert first < refused.stdout.index("pip wheel --no-deps -w DIR PROJECT") and "--no-binary" not in refused.stdout

    built = build_missing(pip_uwsgi_env)
    assert built.returncode == 0, built.stdout
    directory = run([pip_uwsgi_env.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    assert directory.startswith(str(site_packages(pip_uwsgi_env) / "uwsgi_plugin_hello" / "uwsgi_builds"))
    assert plugin_answer(pip_uwsgi_env.uwsgi, directory, "hello", 250, tmp_path / "log",
                         "--hello-greeting", "Hello, built on the spot") == "Hello, built on the spot"

    again = build_missing(pip_uwsgi_env)
    assert again.returncode == 0 and "already has a build" in again.stdout

    pip_uwsgi_env.pip("uninstall", "-y", "-q", DIST)
    assert not (site_packages(pip_uwsgi_env) / "uwsgi_plugin_hello").exists()


def test_concurrent_runs_build_once(pip_uwsgi_env):
    command = [str(pip_uwsgi_env.root / "bin" / "uwsgi-plugin-backend"), "build-missing", DIST]
    runs = [subprocess.Popen(command, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(3)]
    outputs = [process.communicate(timeout=300)[0] for process in runs]
    assert [process.returncode for process in runs] == [0, 0, 0], outputs
    assert sum("from the sources its wheel carries" in output for output in outputs) == 1, outputs
    assert len(list((site_packages(pip_uwsgi_env) / "uwsgi_plugin_hello" / "uwsgi_builds").glob("*/build.json"))) == 2


def test_unwritable_package_builds_into_user_cache(pip_uwsgi_env, tmp_path, isolated_home):
    """A read-only site-packages: as root, a read-only bind mount in a mount
    namespace of the command's own (the machine's mounts are untouched)."""
    site = site_packages(pip_uwsgi_env)
    before = tree_digest(site)
    command = [str(pip_uwsgi_env.root / "bin" / "uwsgi-plugin-backend"), "build-missing", DIST]
    if os.geteuid() == 0:
        quoted = shlex.quote(str(site))
        command = ["unshare", "-m", "sh", "-c", (f"mount --bind {quoted} {quoted} && "
                   f"mount -o remount,ro,bind {quoted} && exec {shlex.join(command)}")]
        result = run(command, env=clean_env())
    else:
        (site / "uwsgi_plugin_hello" / "uwsgi_builds").chmod(0o555)
        try:
            result = run(command, env=clean_env())
        finally:
            (site / "uwsgi_plugin_hello" / "uwsgi_builds").chmod(0o755)
    assert "missing-builds" in result.stdout
    assert tree_digest(site) == before
    directory = run([pip_uwsgi_env.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    assert directory.startswith(str(isolated_home))
    assert plugin_answer(pip_uwsgi_env.uwsgi, directory, "hello", 250, tmp_path / "log") == "Hello from a wheel"


@pytest.mark.parametrize("break_it", ["no compiler", "missing header"])
def test_failed_build_is_one_line_and_changes_nothing(pip_uwsgi_env, break_it):
    site = site_packages(pip_uwsgi_env)
    env = {}
    if break_it == "no compiler":
        env["CC"] = "/nonexistent/cc"
    else:
        source = site / "uwsgi_plugin_hello" / "_sources" / "hello.c"
        source.write_text("#include <uwsgi_plugin_backend_absent.h>\n" + source.read_text())
    before = tree_digest(site)
    failed = build_missing(pip_uwsgi_env, **env)
    assert failed.returncode == 1 and "Traceback" not in failed.stdout
    errors = [line for line in failed.stdout.splitlines() if line.startswith("uwsgi-plugin-backend: error: ")]
    expected = "no C compiler" if break_it == "no compiler" else "hello.c failed to compile"
    assert len(errors) == 1 and expected in errors[0], failed.stdout
    if break_it == "no compiler":
        assert failed.stdout.splitlines()[-1] == errors[0]
    assert tree_digest(site) == before


def test_ship_sources_false_leaves_them_out(tmp_path, debian_uwsgi, debian_wheel):
    project = copy_project(SAMPLE, tmp_path / "project")
    with (project / "pyproject.toml").open("a") as f:
        f.write("\n[tool.uwsgi-plugin]\nship-sources = false\n")
    build_wheel(project, tmp_path / "out", f"-Cuwsgi={debian_uwsgi}")
    [wheel] = (tmp_path / "out").glob("*.whl")
    assert not [name for name in zipfile.ZipFile(wheel).namelist() if "/_sources/" in name]
    # The size the sources add to the sample's wheel (reported by the closing note).
    print(f"sample wheel: {wheel.stat().st_size} bytes without sources, {debian_wheel.stat().st_size} with")


def installed_from_sdist_for_old_pyuwsgi(tmp_path: Path, wheelhouse: Path) -> tuple[Venv, dict[str, str], list]:
    """The sample installed from its sdist (an index of the backend's wheel and
    that sdist) in a venv with OLD_PYUWSGI; the venv, its environment, and the
    pip install command. pip's cache is the test's own: the routes must work
    even though pip cached the first wheel."""
    index = tmp_path / "index"
    index.mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        (index / wheel.name).symlink_to(wheel)
    run([sys.executable, *BUILD, "--sdist", "--outdir", index,
         copy_project(SAMPLE, tmp_path / "project")], env=clean_env())
    env = clean_env(PIP_FIND_LINKS=str(index), PIP_CACHE_DIR=str(tmp_path / "pip-cache"))
    venv = make_venv(tmp_path / "venv", OLD_PYUWSGI)
    pip = [venv.python, "-m", "pip", "install", "-q"]
    run([*pip, "--no-binary", DIST, DIST], env=env)
    return venv, env, pip


def test_upgrade_story_with_the_sdist_route(tmp_path, wheelhouse):
    """docs/operators.md "Upgrading uWSGI": build from the sdist, upgrade uWSGI to another
    ABI, follow the message; no crash on the way, a working plugin at the end.
    On the way, why the route says --no-cache-dir: without it pip hands back the
    wheel it built for the old uwsgi."""
    venv, env, pip = installed_from_sdist_for_old_pyuwsgi(tmp_path, wheelhouse)
    old = run([venv.python, "-m", "uwsgi_plugin_hello"], env=env).stdout.strip()
    assert plugin_answer(venv.uwsgi, old, "hello", 250, tmp_path / "old.log") == "Hello from a wheel"

    run([*pip, "--upgrade", "pyuwsgi==2.0.30.post1"], env=env)
    refused = run([venv.python, "-m", "uwsgi_plugin_hello"], env=env, check=False)
    assert refused.returncode == 1 and "has no build of its plugins" in refused.stdout
    # The old build, forced onto the new uwsgi, is refused by its guard: no crash.
    forced = subprocess.run([str(venv.uwsgi), "--plugins-dir", old, "--need-plugin", "hello", "--http-socket",
                             f"127.0.0.1:{free_port()}", "--die-on-term"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert forced.returncode > 0, forced
    assert "refusing plugin hello: it was built for uWSGI 2.0.27" in forced.stdout + forced.stderr

    run([*pip, "--force-reinstall", "--no-binary", DIST, DIST], env=env)
    stale = run([venv.python, "-m", "uwsgi_plugin_hello"], env=env, check=False)
    assert stale.returncode == 1 and "has no build of its plugins" in stale.stdout

    route = [line.strip() for line in refused.stdout.splitlines() if "--no-binary" in line]
    assert route == [(f"UWSGI_PLUGIN_BACKEND_UWSGI={shlex.quote(str(venv.uwsgi))} pip install --force-reinstall "
                     f"--no-binary {DIST} --no-cache-dir {DIST}")]
    run(["sh", "-c", route[0]], env={**env, "PATH": f"{venv.root / 'bin'}:{env['PATH']}"})
    new = run([venv.python, "-m", "uwsgi_plugin_hello"], env=env).stdout.strip()
    assert plugin_answer(venv.uwsgi, new, "hello", 250, tmp_path / "new.log",
                         "--hello-greeting", "Hello after the upgrade") == "Hello after the upgrade"


def test_build_on_first_use_when_asked(pip_uwsgi_env, tmp_path):
    env = clean_env(UWSGI_PLUGIN_BACKEND_BUILD_MISSING="1")
    directory = run([pip_uwsgi_env.python, "-m", "uwsgi_plugin_hello"], env=env).stdout.strip().splitlines()[-1]
    assert directory.startswith(str(site_packages(pip_uwsgi_env) / "uwsgi_plugin_hello" / "uwsgi_builds"))
    assert plugin_answer(pip_uwsgi_env.uwsgi, directory, "hello", 250, tmp_path / "log") == "Hello from a wheel"


@pytest.mark.parametrize("editable", [False, True], ids=["local directory", "editable"])
def test_route_for_a_local_project_fits_how_it_was_installed(tmp_path, wheelhouse, debian_uwsgi, editable):
    project = copy_project(SAMPLE, tmp_path / "project")
    venv = make_venv(tmp_path / "venv", "pyuwsgi")
    env = clean_env(PIP_FIND_LINKS=str(wheelhouse))
    how = ["-e"] if editable else []
    run([venv.python, "-m", "pip", "install", "-q", "-C", f"uwsgi={debian_uwsgi}", *how, project], env=env)
    refused = run([venv.python, "-m", "uwsgi_plugin_hello"], env=env, check=False)
    assert refused.returncode == 1
    [route] = [line.strip() for line in refused.stdout.splitlines() if "--no-cache-dir" in line]
    expected = f"-e {project}" if editable else f"--force-reinstall --no-cache-dir {project}"
    assert route.endswith(expected) and "--no-binary" not in route
    run(["sh", "-c", route], env={**env, "PATH": f"{venv.root / 'bin'}:{env['PATH']}"})
    directory = run([venv.python, "-m", "uwsgi_plugin_hello"], env=env).stdout.strip()
    assert plugin_answer(venv.uwsgi, directory, "hello", 250, tmp_path / "log") == "Hello from a wheel"


def test_one_tool_install_builds_for_another_environment(tmp_path, wheelhouse, debian_wheel):
    """Issue 25: an operator with the backend as a tool of its own (uv tool install) fixes the
    venv that serves: the message names this venv's python, and the tool's build-missing,
    run as printed, builds for the uwsgi installed there, into its package and RECORD."""
    venv = make_venv(tmp_path / "serving env")
    venv.install(kept_uwsgi_wheel())
    venv.pip("install", "-q", debian_wheel)
    tools = tmp_path / "tool-bin"
    run([UV, "tool", "install", "-q", "--find-links", wheelhouse, "uwsgi-plugin-backend"],
        env=clean_env(UV_TOOL_DIR=str(tmp_path / "tools"), UV_TOOL_BIN_DIR=str(tools)))
    assert not (venv.root / "bin" / "uwsgi-plugin-backend").exists()

    refused = run([venv.python, "-m", "uwsgi_plugin_hello"], env=clean_env(), check=False)
    assert refused.returncode == 1
    [command] = [line.strip() for line in refused.stdout.splitlines() if line.strip().startswith("uwsgi-plugin-backend build-missing")]
    assert command == (f"uwsgi-plugin-backend build-missing {DIST} --uwsgi {shlex.quote(str(venv.uwsgi))} "
                       f"--python {shlex.quote(str(venv.python))}")
    built = run(["sh", "-c", command], env=clean_env(PATH=f"{tools}:{os.environ['PATH']}"))
    assert f"for {venv.uwsgi}" in built.stdout
    directory = run([venv.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    assert directory.startswith(str(site_packages(venv) / "uwsgi_plugin_hello" / "uwsgi_builds"))
    assert plugin_answer(venv.uwsgi, directory, "hello", 250, tmp_path / "log") == "Hello from a wheel"

    # Without --uwsgi: the uwsgi installed with that python (here, already built: nothing to do).
    again = run([tools / "uwsgi-plugin-backend", "build-missing", DIST, "--python", venv.python], env=clean_env())
    assert "already has a build for" in again.stdout
    venv.pip("uninstall", "-y", "-q", DIST)  # the build was listed in RECORD
    assert not (site_packages(venv) / "uwsgi_plugin_hello").exists()
    missing = run([tools / "uwsgi-plugin-backend", "build-missing", DIST, "--python", venv.python], env=clean_env(),
                  check=False)
    assert missing.returncode == 1
    assert f"no distribution named {DIST!r} is installed in the environment {venv.root}" in missing.stdout
