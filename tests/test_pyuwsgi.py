"""pyuwsgi, the uWSGI that PyPI ships as binary wheels, through real frontends
with build isolation on: the build runs pyuwsgi's console script with the
environment its own interpreter expects, every frontend started from one venv
builds for that venv's uwsgi, and the plugin loads wherever it is installed
(venv, --target, editable, --user) because its loader finds the pyuwsgi
module the running process has loaded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import (
    SAMPLE,
    Venv,
    clean_env,
    copy_project,
    make_venv,
    plugin_answer,
    run,
)

pytestmark = pytest.mark.slow


def _serves(uwsgi: Path, directory: str, log: Path, greeting: str) -> None:
    assert plugin_answer(uwsgi, directory, "hello", 250, log, "--hello-greeting", greeting) == greeting


def _fits(site: Path, venv_python: Path, uwsgi: Path) -> bool:
    """Does the sample unpacked in ``site`` carry a build that ``uwsgi`` can load (its runtime module says)?"""
    result = run([venv_python, "-m", "uwsgi_plugin_hello", "--uwsgi", uwsgi], env=clean_env(PYTHONPATH=str(site)), check=False)
    return result.returncode == 0


@pytest.fixture
def pyuwsgi_env(tmp_path) -> Venv:
    # A path with a space: pip writes the console scripts with a /bin/sh exec line, not a shebang.
    return make_venv(tmp_path / "py uwsgi", "pyuwsgi")


def test_isolated_pip_install_in_pyuwsgi_venv_serves(pyuwsgi_env, wheelhouse, tmp_path):
    # No -C: the isolated build (PYTHONPATH, PYTHONNOUSERSITE set by pip) must still run pyuwsgi's script.
    result = pyuwsgi_env.pip("install", "-v", "--find-links", wheelhouse, SAMPLE)
    assert f"building for {pyuwsgi_env.uwsgi} (installed beside the interpreter" in result.stdout
    directory = run([pyuwsgi_env.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    assert directory.startswith(str(pyuwsgi_env.root / "lib"))
    # The loader is what uWSGI opens; the real plugin lies beside it, linked to no pyuwsgi path.
    assert (Path(directory) / "hello_plugin.real.so").is_file()
    needed = run(["readelf", "-d", Path(directory) / "hello_plugin.real.so"]).stdout
    assert "pyuwsgi" not in needed and "RUNPATH" not in needed
    _serves(pyuwsgi_env.uwsgi, directory, tmp_path / "log", "Hello isolated pyuwsgi")


def test_pip_install_target_dir_serves(pyuwsgi_env, wheelhouse, tmp_path):
    target = tmp_path / "target dir"
    pyuwsgi_env.pip("install", "-q", "--target", target, "--find-links", wheelhouse, SAMPLE)
    assert not list((pyuwsgi_env.root / "lib").glob("python*/site-packages/uwsgi_plugin_hello"))
    directory = run([pyuwsgi_env.python, "-m", "uwsgi_plugin_hello"], env=clean_env(PYTHONPATH=str(target))).stdout.strip()
    assert directory.startswith(str(target))
    _serves(pyuwsgi_env.uwsgi, directory, tmp_path / "log", "Hello from --target")


def test_editable_install_serves(pyuwsgi_env, wheelhouse, tmp_path):
    project = copy_project(SAMPLE, tmp_path / "project")
    pyuwsgi_env.pip("install", "-q", "--find-links", wheelhouse, "-e", project)
    directory = run([pyuwsgi_env.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    assert not directory.startswith(str(pyuwsgi_env.root))  # the builds live in the backend's cache
    _serves(pyuwsgi_env.uwsgi, directory, tmp_path / "log", "Hello editable")


def test_user_install_serves(wheelhouse, tmp_path, isolated_home):
    """`pip install --user pyuwsgi` with a plain (non-venv) Python; uwsgi lands in ~/.local/bin.

    Run as this user with a HOME of its own (the autouse fixture), not as a
    second system user, so the machine is left as it was.
    """
    python = Path(getattr(sys, "_base_executable", sys.executable))
    env = clean_env()
    run([python, "-m", "pip", "install", "-q", "--user", "pyuwsgi"], env=env)
    user_uwsgi = isolated_home / ".local" / "bin" / "uwsgi"
    assert user_uwsgi.is_file()
    assert not (python.parent / "uwsgi").exists()
    result = run([python, "-m", "pip", "install", "-v", "--user", "--find-links", wheelhouse, SAMPLE], env=env)
    assert f"building for {user_uwsgi} (installed in the user scripts directory" in result.stdout
    directory = run([python, "-m", "uwsgi_plugin_hello"], env=env).stdout.strip()
    assert directory.startswith(str(isolated_home / ".local"))
    _serves(user_uwsgi, directory, tmp_path / "log", "Hello --user")


def test_every_frontend_builds_for_the_venv_uwsgi(pyuwsgi_env, wheelhouse, tmp_path):
    """pip wheel, python -m build and uv build, started from one venv that is
    not activated, build for that venv's uwsgi, not the one on PATH."""
    pyuwsgi_env.install("build", "uv")  # the frontends, as given
    env = clean_env(PIP_FIND_LINKS=str(wheelhouse), UV_FIND_LINKS=str(wheelhouse))
    bin_dir = pyuwsgi_env.root / "bin"
    frontends = {
        "pip wheel": [pyuwsgi_env.python, "-m", "pip", "wheel", "-v", "--no-deps", "-w"],
        "python -m build": [pyuwsgi_env.python, "-m", "build", "--wheel", "--outdir"],
        "uv build": [bin_dir / "uv", "build", "--wheel", "--find-links", wheelhouse, "-v", "--out-dir"],
    }
    for name, command in frontends.items():
        project = copy_project(SAMPLE, tmp_path / name.replace(" ", "-") / "project")
        out = project.parent / "out"
        result = run([*command, out, project], env=env, cwd=project.parent)
        assert f"building for {pyuwsgi_env.uwsgi} (installed beside" in result.stdout, name
        if name != "pip wheel":  # the frontend's own build environment is not the reason
            assert f"installed beside {bin_dir}" in result.stdout, name
        [wheel] = out.glob("*.whl")
        site = tmp_path / name.replace(" ", "-") / "site"
        run([sys.executable, "-m", "zipfile", "-e", wheel, site])
        assert len(list(site.glob("uwsgi_plugin_hello/uwsgi_builds/*/build.json"))) == 1, name
        assert _fits(site, pyuwsgi_env.python, pyuwsgi_env.uwsgi), name
        assert not _fits(site, pyuwsgi_env.python, Path("/usr/bin/uwsgi-core")), name  # PATH's uwsgi would be wrong
