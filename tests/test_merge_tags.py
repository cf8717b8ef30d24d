"""merge joins builds whose wheels carry other tags: one
platform family (C library and machine), the highest floor among them; py3-none,
or the one CPython whose C API a build calls. The WHEEL file's Tag lines and the
RECORD are written anew; the merged wheel passes check-wheel-contents and
`twine check --strict`, and serves each uwsgi it carries a build for."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import (
    PACKAGES,
    Venv,
    auditwheel_tag,
    clean_env,
    copy_project,
    plugin_answer,
    run,
    the_wheel,
)

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
OWN_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"


def pip_wheel(venv: Venv, package: str, out: Path, wheelhouse: Path) -> Path:
    """The package built by ``venv``'s pip, isolated, for the uwsgi installed beside it."""
    venv.pip("wheel", "-q", "--no-deps", "--find-links", wheelhouse, "-w", out, copy_project(PACKAGES / package, out.parent / "p"))
    return the_wheel(out)


def merge(*args: Path | str, check: bool = True):
    return run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", *args], check=check, env=clean_env())


def refused(tmp_path: Path, *wheels: Path) -> str:
    """merge refuses ``wheels`` with one error line and writes nothing."""
    out = tmp_path / "refused"
    result = merge(*wheels, "-o", out, check=False)
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("uwsgi-plugin-backend: error: ") and result.stdout.count("\n") == 1, result.stdout
    assert not out.exists() or not list(out.iterdir())
    return result.stdout


def wheel_tags(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/WHEEL")]
        return [line.split(": ", 1)[1] for line in archive.read(name).decode().splitlines() if line.startswith("Tag: ")]


def build_records(wheel: Path) -> list[dict]:
    with zipfile.ZipFile(wheel) as archive:
        return [json.loads(archive.read(name)) for name in archive.namelist() if name.endswith("/build.json")]


def retagged(wheel: Path, target_dir: Path, platform: str, wheel_file_too: bool = True) -> Path:
    """A copy of ``wheel`` tagged py3-none-``platform`` in its name and (``wheel_file_too``)
    its WHEEL file, its RECORD right: as the backend would write it for another platform."""
    target = target_dir / f"{wheel.name.rsplit('-', 3)[0]}-py3-none-{platform}.whl"
    target_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                record = info.filename
                continue
            if info.filename.endswith(".dist-info/WHEEL") and wheel_file_too:
                lines = [line for line in data.decode().splitlines() if not line.startswith("Tag: ")]
                data = "".join(f"{line}\n" for line in [*lines, f"Tag: py3-none-{platform}"]).encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{info.filename},sha256={digest},{len(data)}")
            out.writestr(info.filename, data)
        out.writestr(record, "\n".join([*rows, f"{record},,"]) + "\n")
    return target


@pytest.fixture(scope="module")
def pip_env(uwsgi_venv) -> Venv:
    """pip's uWSGI in a user's virtual environment: conftest's."""
    return uwsgi_venv


@pytest.fixture(scope="module")
def floors_wheels(tmp_path_factory, pip_env, pyuwsgi_pythons, wheelhouse) -> tuple[Path, Path]:
    """tests/packages/floors built by pip for pip's uWSGI and for pyuwsgi: only the pyuwsgi
    build calls statx(), so the two wheels have two glibc floors."""
    root = tmp_path_factory.mktemp("floors")
    return (pip_wheel(pip_env, "floors", root / "pip" / "out", wheelhouse),
            pip_wheel(pyuwsgi_pythons(OWN_PYTHON), "floors", root / "pyuwsgi" / "out", wheelhouse))


def test_pyuwsgi_and_pip_uwsgi_wheels_of_two_floors_make_one_wheel(tmp_path, floors_wheels, pip_env, pyuwsgi_pythons):
    pip_wheel_, pyuwsgi_wheel = floors_wheels
    assert pip_wheel_.name == "uwsgi_plugin_floors-1.0.0-py3-none-manylinux1_x86_64.manylinux_2_5_x86_64.whl"
    assert pyuwsgi_wheel.name == "uwsgi_plugin_floors-1.0.0-py3-none-manylinux_2_28_x86_64.whl"
    assert merge(pip_wheel_, pyuwsgi_wheel, "-o", tmp_path / "merged").stdout.strip().endswith(".whl")
    merged = the_wheel(tmp_path / "merged")
    # The highest floor, as auditwheel reads the merged wheel's ELF files too.
    assert merged.name == pyuwsgi_wheel.name
    assert wheel_tags(merged) == ["py3-none-manylinux_2_28_x86_64"]
    assert auditwheel_tag(merged) == "manylinux_2_28_x86_64"
    assert sorted(record["glibc"] for record in build_records(merged)) == ["2.28", "2.3.3"]
    merge(pyuwsgi_wheel, pip_wheel_, "-o", tmp_path / "other-order")
    assert the_wheel(tmp_path / "other-order").name == merged.name
    assert "OK" in run([BIN / "check-wheel-contents", merged]).stdout
    assert "PASSED" in run([BIN / "twine", "check", "--strict", merged]).stdout
    for venv, kind in ((pip_env, "pip's uWSGI"), (pyuwsgi_pythons(OWN_PYTHON), "pyuwsgi")):
        venv.pip("install", "-q", "--force-reinstall", "--no-deps", merged)  # pip checks the tags and RECORD
        directory = run([venv.python, "-m", "uwsgi_plugin_floors"], env=clean_env()).stdout.strip()
        greeting = f"Hello merged, from {kind}"
        assert plugin_answer(venv.uwsgi, directory, "floors", 250, tmp_path / f"{kind}.log",
                             "--floors-greeting", greeting) == greeting
        venv.pip("uninstall", "-q", "-y", "uwsgi-plugin-floors")


def test_a_python_c_api_build_makes_the_merged_wheel_that_pythons(tmp_path, pip_env, pyuwsgi_pythons, wheelhouse):
    """cpXY with py3-none gives cpXY: every build of the merged wheel serves that CPython, and
    a wider tag would let pip install it where its cpXY build cannot serve. Two CPythons are
    refused: no one tag covers both."""
    pip_built = pip_wheel(pip_env, "python-api", tmp_path / "pip" / "out", wheelhouse)
    own = pip_wheel(pyuwsgi_pythons(OWN_PYTHON), "python-api", tmp_path / "own" / "out", wheelhouse)
    other = pip_wheel(pyuwsgi_pythons("3.13"), "python-api", tmp_path / "313" / "out", wheelhouse)
    assert pip_built.name.startswith("uwsgi_plugin_pyapi-1.0.0-py3-none-")  # pip's uwsgi links its libpython itself
    assert own.name.startswith(f"uwsgi_plugin_pyapi-1.0.0-{CP}-{CP}-") and "-cp313-cp313-" in other.name
    merge(pip_built, own, "-o", tmp_path / "merged")
    merged = the_wheel(tmp_path / "merged")
    assert merged.name == f"uwsgi_plugin_pyapi-1.0.0-{CP}-{CP}-manylinux1_x86_64.manylinux_2_5_x86_64.whl"
    assert wheel_tags(merged) == [f"{CP}-{CP}-manylinux1_x86_64", f"{CP}-{CP}-manylinux_2_5_x86_64"]
    assert "OK" in run([BIN / "check-wheel-contents", merged]).stdout
    message = refused(tmp_path, pip_built, own, other)
    assert f"cannot merge {own.name} ({CP}-{CP}), {other.name} (cp313-cp313): their builds call the Python C API" in message


def test_other_platform_families_are_refused(tmp_path, floors_wheels):
    pip_wheel_, _ = floors_wheels
    cases = {
        "musllinux_1_2_x86_64": "the other for musllinux_1_2 x86_64; merge only wheels of one platform family",
        "manylinux_2_17_aarch64": "the other for manylinux_2_17 aarch64; merge only wheels of one platform family",
        "linux_x86_64": "needs a library outside every policy: `auditwheel repair` it first",
    }
    for platform, expected in cases.items():
        other = retagged(pip_wheel_, tmp_path / platform, platform)
        message = refused(tmp_path, pip_wheel_, other)
        assert f"cannot merge {pip_wheel_.name} and {other.name}: one is for manylinux_2_5 x86_64" in message
        assert expected in message


def test_a_renamed_wheel_is_refused(tmp_path, floors_wheels):
    """A file name whose tags its WHEEL file does not list: the floor would be a guess."""
    pip_wheel_, pyuwsgi_wheel = floors_wheels
    renamed = retagged(pip_wheel_, tmp_path / "renamed", "manylinux_2_28_x86_64", wheel_file_too=False)
    message = refused(tmp_path, pyuwsgi_wheel, renamed)
    assert (f"{renamed.name}: its uwsgi_plugin_floors-1.0.0.dist-info/WHEEL lists the tags "
            "py3-none-manylinux1_x86_64, py3-none-manylinux_2_5_x86_64, not those of its file name (was it renamed?)") in message
