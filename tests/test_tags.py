"""Tags from what the plugin needs: the glibc floor of the
plugins' own ELF, recorded per build and compared with the machine's at run
time; py3-none for pyuwsgi builds, unless a plugin calls the Python C API.
Wheels are built by pip with build isolation and served by real uwsgi."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import (
    PACKAGES,
    PYUWSGI_RELEASE,
    SAMPLE,
    Venv,
    clean_env,
    copy_project,
    kept_uwsgi_wheel,
    make_venv,
    plugin_answer,
    run,
    the_wheel,
)

pytestmark = pytest.mark.slow

OWN_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
MACHINE_GLIBC = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]  # "2.36" on Debian 12


def pip_wheel(venv: Venv, project: Path, out: Path, wheelhouse: Path, *args: str) -> Path:
    """The user's pip builds the wheel, isolated, for the uwsgi beside it (or the one -C names)."""
    venv.pip("wheel", "-q", "--no-deps", "--find-links", wheelhouse, "-w", out, *args, project)
    return the_wheel(out)


def records(wheel: Path) -> list[dict]:
    with zipfile.ZipFile(wheel) as archive:
        return [json.loads(archive.read(name)) for name in archive.namelist() if name.endswith("/build.json")]


def plugins_dir(venv: Venv, package: str, check: bool = True, **env: str):
    return run([venv.python, "-m", package], env=clean_env(**env), check=check)


def test_build_needing_a_newer_glibc_is_skipped_and_build_missing_fills_in(tmp_path, wheelhouse):
    """A build whose .so files need a newer glibc than the machine's is not chosen, and the
    message names both. No machine here has an older glibc than the one that builds, so the
    future is simulated: the installed wheel's build.json is edited to need glibc 99.0, as a
    wheel built on a newer distribution would. build-missing then builds beside it."""
    venv = make_venv(tmp_path / "env")
    venv.install(kept_uwsgi_wheel(), "--find-links", wheelhouse, "uwsgi-plugin-backend")
    wheel = pip_wheel(venv, copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out", wheelhouse)
    venv.pip("install", "-q", wheel)
    directory = Path(plugins_dir(venv, "uwsgi_plugin_hello").stdout.strip())
    record_file = directory / "build.json"
    record = json.loads(record_file.read_text())
    assert record["glibc"] == "2.3.3" and record["python"] is None
    record_file.write_text(json.dumps({**record, "glibc": "99.0"}))

    refused = plugins_dir(venv, "uwsgi_plugin_hello", check=False)
    assert refused.returncode == 1
    assert refused.stdout.count("uwsgi-plugin-backend: error:") == 1 and "Traceback" not in refused.stdout
    assert (f"{record['abi_key']}: {record['summary']} (the ABI of this uwsgi, but it needs glibc 99.0, and this "
            f"machine has glibc {MACHINE_GLIBC})") in refused.stdout
    assert "uwsgi-plugin-backend build-missing uwsgi-plugin-hello" in refused.stdout

    result = run([venv.root / "bin" / "uwsgi-plugin-backend", "build-missing", "uwsgi-plugin-hello"], env=clean_env())
    assert "is for this ABI but cannot serve here" in result.stdout
    rebuilt = plugins_dir(venv, "uwsgi_plugin_hello").stdout.strip()
    assert rebuilt != str(directory) and not rebuilt.startswith(str(venv.root))  # in the user cache, beside it
    assert plugin_answer(venv.uwsgi, rebuilt, "hello", 250, tmp_path / "log", "--hello-greeting", "Hi") == "Hi"


def test_pyuwsgi_build_is_py3_none_and_serves_two_pythons(tmp_path, wheelhouse, pyuwsgi_pythons):
    """One wheel, built by pyuwsgi under this Python, installed by pip under two other
    Pythons' pyuwsgi: the plugin calls no Python C API, so the build is theirs too."""
    builder = pyuwsgi_pythons(OWN_PYTHON)
    wheel = pip_wheel(builder, copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out", wheelhouse)
    assert wheel.name == "uwsgi_plugin_hello-1.0.0-py3-none-manylinux1_x86_64.manylinux_2_5_x86_64.whl"
    [record] = records(wheel)
    assert record["python"] is None and record["pyuwsgi_module"].startswith(f"pyuwsgi.cpython-{OWN_PYTHON.replace('.', '')}-")
    for version in ("3.9", "3.13"):
        venv = pyuwsgi_pythons(version)
        assert version in run([venv.python, "-c", "import sys; print(sys.version)"]).stdout
        venv.pip("install", "-q", "--force-reinstall", "--no-deps", wheel)
        directory = plugins_dir(venv, "uwsgi_plugin_hello").stdout.strip()
        greeting = f"Hello pyuwsgi {PYUWSGI_RELEASE} under Python {version}"
        assert plugin_answer(venv.uwsgi, directory, "hello", 250, tmp_path / f"log-{version}",
                             "--hello-greeting", greeting) == greeting
        venv.pip("uninstall", "-q", "-y", "uwsgi-plugin-hello")


def test_plugin_calling_the_python_c_api_is_tied_to_its_python(tmp_path, wheelhouse, pyuwsgi_pythons):
    """A plugin that calls Py_GetVersion: its pyuwsgi build is cp311-cp311 (this Python's),
    records that Python, serves it, and is not chosen for another Python's pyuwsgi."""
    builder, other = pyuwsgi_pythons(OWN_PYTHON), pyuwsgi_pythons("3.13")
    cp = f"cp{OWN_PYTHON.replace('.', '')}"
    result = builder.pip("wheel", "-v", "--no-deps", "--find-links", wheelhouse, "-w", tmp_path / "out",
                         copy_project(PACKAGES / "python-api", tmp_path / "p"))
    assert f"pyapi_plugin.so calls Py_GetVersion (the Python C API): the build serves pyuwsgi under {cp} only" in result.stdout
    wheel = the_wheel(tmp_path / "out")
    assert wheel.name.startswith(f"uwsgi_plugin_pyapi-1.0.0-{cp}-{cp}-manylinux")
    [record] = records(wheel)
    assert record["python"] == cp
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    directory = plugins_dir(builder, "uwsgi_plugin_pyapi", PYTHONPATH=str(site)).stdout.strip()
    answer = plugin_answer(builder.uwsgi, directory, "pyapi", 250, tmp_path / "log")
    assert answer.startswith(OWN_PYTHON + ".")
    refused = plugins_dir(other, "uwsgi_plugin_pyapi", check=False, PYTHONPATH=str(site))
    assert refused.returncode == 1
    assert (f"(the ABI of this uwsgi, but its plugins call the Python C API of {cp}, and that uwsgi's pyuwsgi "
            "runs under cp313)") in refused.stdout
