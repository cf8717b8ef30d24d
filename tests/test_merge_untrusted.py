"""`merge` reads CI artifacts: wheels it must treat as untrusted (issue 12, item 1).
A hostile or damaged input is refused with one error line, before anything is
written; nothing lands outside -o, or in it."""

from __future__ import annotations

import base64
import hashlib
import stat
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from conftest import SAMPLE, build_wheel, clean_env, copy_project, make_venv, plugin_answer, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_wheels(tmp_path_factory, pip_uwsgi, debian_uwsgi) -> tuple[Path, Path]:
    """The sample built for two uWSGI ABIs on two 'CI jobs': the honest inputs of a merge."""
    root = tmp_path_factory.mktemp("honest")
    wheels = []
    for uwsgi in (pip_uwsgi, debian_uwsgi):
        out = root / f"out-{uwsgi.name}"
        build_wheel(copy_project(SAMPLE, root / f"p-{uwsgi.name}"), out, f"-Cuwsgi={uwsgi}",
                    env=clean_env(SOURCE_DATE_EPOCH="1700000000"))
        [wheel] = out.glob("*.whl")
        wheels.append(wheel)
    return wheels[0], wheels[1]


def record_line(name: str, data: bytes, size: int | None = None) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data) if size is None else size}"


def entries(wheel: Path) -> tuple[list[tuple[zipfile.ZipInfo, bytes]], str]:
    """Every entry of ``wheel`` but its RECORD, and the RECORD's name."""
    with zipfile.ZipFile(wheel) as archive:
        [record] = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        return [(info, archive.read(info)) for info in archive.infolist() if info.filename != record], record


def write(target: Path, items: list[tuple[zipfile.ZipInfo | str, bytes]], record_name: str | None,
          record: list[str]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), zipfile.ZipFile(target, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name written on purpose
        for info, data in items:
            archive.writestr(info, data)
        if record_name:
            archive.writestr(record_name, "\n".join([*record, f"{record_name},,"]) + "\n")
    return target


def hostile(honest: Path, target: Path, case: str, root: Path) -> Path:
    """A copy of ``honest`` made hostile or damaged in one way, its RECORD right in every other."""
    items, record_name = entries(honest)
    [shared_object] = [info.filename for info, _ in items if info.filename.endswith("hello_plugin.so")]
    build = shared_object.rsplit("/", 1)[0]
    extra: list[tuple[zipfile.ZipInfo | str, bytes]] = []
    if case == "dot-dot":
        extra = [(f"{build}/" + "../" * 40 + str(root / "PWNED").lstrip("/"), b"pwned")]
    elif case == "absolute":
        extra = [(str(root / "PWNED"), b"pwned")]
    elif case == "symlink":
        link = zipfile.ZipInfo(f"{build}/evil_plugin.so")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        extra = [(link, b"/etc/passwd")]
    elif case == "duplicate":
        extra = [(shared_object, b"\x7fELF another")]
    elif case == "other package's builds":
        extra = [("evil/uwsgi_builds/abi_x/evil_plugin.so", b"\x7fELF")]
    elif case == "not a build file":
        extra = [(f"{build}/sitecustomize.py", b"import os")]
    elif case == "nested in a build":
        extra = [(f"{build}/sub/evil_plugin.so", b"\x7fELF")]
    elif case == "real plugin without its loader":
        extra = [(f"{build}/evil_plugin.real.so", b"\x7fELF")]
    record = [record_line(info if isinstance(info, str) else info.filename, data) for info, data in [*items, *extra]]
    if case == "hash":
        items = [(info, data + b"\0" if info.filename == shared_object else data) for info, data in items]
    elif case == "size":
        record = [record_line(shared_object, dict((i.filename, d) for i, d in items)[shared_object], size=1)
                  if line.startswith(shared_object + ",") else line for line in record]
    elif case == "not in RECORD":
        record = [line for line in record if not line.startswith(shared_object + ",")]
    elif case == "RECORD names a missing file":
        record.append(record_line("uwsgi_plugin_hello/gone.py", b"gone"))
    return write(target, [*items, *extra], None if case == "no RECORD" else record_name, record)


CASES = {
    "dot-dot": "leaves the wheel",
    "absolute": "leaves the wheel",
    "symlink": "is a symbolic link",
    "duplicate": "twice",
    "other package's builds": "differs between them",
    "not a build file": "only <NAME>_plugin.so, its <NAME>_plugin.real.so and build.json belong",
    "nested in a build": "only <NAME>_plugin.so, its <NAME>_plugin.real.so and build.json belong",
    "real plugin without its loader": "evil_plugin.real.so without the evil_plugin.so that loads it",
    "hash": "does not match the hash in its RECORD",
    "size": "does not match the size in its RECORD",
    "not in RECORD": "is not in its RECORD",
    "RECORD names a missing file": "names uwsgi_plugin_hello/gone.py, which the wheel does not hold",
    "no RECORD": "has no RECORD",
}


def merge(*args: Path | str) -> str:
    result = run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", *args], check=False, env=clean_env())
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("uwsgi-plugin-backend: error: "), result.stdout
    assert result.stdout.count("uwsgi-plugin-backend: error:") == 1 and "Traceback" not in result.stdout
    return result.stdout


@pytest.mark.parametrize("case", CASES)
def test_merge_refuses_a_hostile_or_damaged_input(tmp_path, two_wheels, case):
    honest, other = two_wheels
    evil = hostile(other, tmp_path / "evil" / other.name, case, tmp_path)
    for inputs in ((honest, evil), (evil, honest)):
        out = tmp_path / "merged"
        message = merge(*inputs, "-o", out)
        assert CASES[case] in message, message
        assert not out.exists() or not list(out.iterdir())
        assert not list(tmp_path.rglob("PWNED"))
    # The honest wheels still merge.
    merged = tmp_path / "honest-merged"
    run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", honest, other, "-o", merged], env=clean_env())
    assert len([n for n in zipfile.ZipFile(next(merged.glob("*.whl"))).namelist() if n.endswith("_plugin.so")]) == 2


# Two pyuwsgi releases with other ABI keys and one wheel tag under a given Python
# (2.0.30's wheels are manylinux_2_28, these are manylinux2014): the CI jobs of one release each.
PYUWSGI_RELEASES = ("2.0.28.post1", "2.0.29")


def test_merged_pyuwsgi_wheels_serve_from_each_pyuwsgi(tmp_path):
    """A pyuwsgi build ships a loader as hello_plugin.so and the plugin as hello_plugin.real.so:
    both of each build land in the merged wheel, and each pyuwsgi is served by its own."""
    venvs, wheels = [], []
    for release in PYUWSGI_RELEASES:
        venvs.append(make_venv(tmp_path / f"py uwsgi {release}", f"pyuwsgi=={release}"))
        out = tmp_path / f"out-{release}"
        build_wheel(copy_project(SAMPLE, tmp_path / f"p-{release}"), out, f"-Cuwsgi={venvs[-1].uwsgi}",
                    env=clean_env(SOURCE_DATE_EPOCH="1700000000"))
        [wheel] = out.glob("*.whl")
        wheels.append(wheel)
    run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", *wheels, "-o", tmp_path / "merged"], env=clean_env())
    [merged] = (tmp_path / "merged").glob("*.whl")
    assert merged.name == wheels[0].name
    names = zipfile.ZipFile(merged).namelist()
    builds = {name.rsplit("/", 1)[0] for name in names if name.startswith("uwsgi_plugin_hello/uwsgi_builds/")}
    assert len(builds) == 2
    for build in builds:
        assert sorted(name for name in names if name.startswith(build + "/")) == [
            f"{build}/build.json", f"{build}/hello_plugin.real.so", f"{build}/hello_plugin.so"]
    site = tmp_path / "site"
    run([sys.executable, "-m", "zipfile", "-e", merged, site])
    served_from = set()
    for release, venv in zip(PYUWSGI_RELEASES, venvs):
        directory = run([venv.python, "-m", "uwsgi_plugin_hello", "--uwsgi", venv.uwsgi],
                        env=clean_env(PYTHONPATH=str(site))).stdout.strip()
        served_from.add(directory)
        greeting = f"Hello merged, pyuwsgi {release}"
        assert plugin_answer(venv.uwsgi, directory, "hello", 250, tmp_path / f"log-{release}", "--hello-greeting", greeting) == greeting
    assert {str(site / build) for build in builds} == served_from
