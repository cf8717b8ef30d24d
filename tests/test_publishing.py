"""Wheels PyPI accepts: manylinux tags auditwheel agrees with, metadata the
publishing tools pass, reproducible builds, and every frontend alike."""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import (
    BUILD,
    BUILD_CHECKED,
    PACKAGES,
    SAMPLE,
    build_wheel,
    clean_env,
    copy_project,
    make_venv,
    newest_glibc,
    plugin_answer,
    run,
    sha256,
    the_wheel,
)
from elftools.elf.elffile import ELFFile

BIN = Path(sys.executable).parent




def record(wheel: Path) -> str:
    """RECORD lists every file of the wheel with its hash: equal RECORDs, equal contents."""
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        return archive.read(name).decode()




def test_sample_is_manylinux_and_auditwheel_agrees(tmp_path, pip_uwsgi):
    """The tag is the lowest floor the plugin's and its loader's ELF allow, as auditwheel
    reads them, with its legacy alias; not the floor of the uwsgi binary it was built
    for (glibc 2.34 on Debian 12), which says nothing of a user's pip-compiled uwsgi."""
    result = build_wheel(copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    wheel = the_wheel(tmp_path / "out")
    assert wheel.name == "uwsgi_plugin_hello-1.0.0-py3-none-manylinux1_x86_64.manylinux_2_5_x86_64.whl"
    assert "platform tag manylinux1_x86_64.manylinux_2_5_x86_64, read from the plugins' ELF" in result.stdout
    assert newest_glibc(pip_uwsgi) > (2, 5)
    shown = " ".join(run([BIN / "auditwheel", "show", wheel]).stdout.split())
    assert 'is consistent with the following platform tag: "manylinux_2_5_x86_64"' in shown
    assert "requires no external shared libraries" in shown
    # The build records the floor its .so files need, for the runtime module to compare with the machine's.
    with zipfile.ZipFile(wheel) as archive:
        [record] = [json.loads(archive.read(name)) for name in archive.namelist() if name.endswith("/build.json")]
    assert record["glibc"] == "2.3.3" and record["python"] is None  # the loader's dladdr1@GLIBC_2.3.3


def test_library_outside_policy_keeps_plain_tag(tmp_path, pip_uwsgi):
    project = copy_project(PACKAGES / "needs-curl", tmp_path / "p")
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    wheel = the_wheel(tmp_path / "out")
    assert wheel.name.endswith("-py3-none-linux_x86_64.whl")
    assert "needscurl_plugin.so needs libcurl.so.4" in result.stdout
    assert "auditwheel repair" in result.stdout
    shown = run([BIN / "auditwheel", "show", wheel]).stdout
    assert "libcurl.so.4" in shown


def test_publishing_checks_pass(tmp_path, pip_uwsgi):
    env = clean_env(UWSGI_PLUGIN_BACKEND_UWSGI=str(pip_uwsgi))
    run([sys.executable, *BUILD_CHECKED, "--outdir", tmp_path / "dist", copy_project(SAMPLE, tmp_path / "p")], env=env)
    dist = sorted((tmp_path / "dist").iterdir())
    assert sorted(p.suffix for p in dist) == [".gz", ".whl"]
    assert "PASSED" in run([BIN / "twine", "check", "--strict", *dist]).stdout
    assert "OK" in run([BIN / "check-wheel-contents", the_wheel(tmp_path / "dist")]).stdout
    assert "Valid file" in run([BIN / "validate-pyproject", SAMPLE / "pyproject.toml"]).stdout
    metadata = zipfile.ZipFile(the_wheel(tmp_path / "dist")).read("uwsgi_plugin_hello-1.0.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata


@pytest.mark.parametrize("uwsgi_kind", ["pip", "debian"])
def test_reproducible_wheel_and_sdist(tmp_path, uwsgi_kind, pip_uwsgi, debian_uwsgi):
    uwsgi = pip_uwsgi if uwsgi_kind == "pip" else debian_uwsgi  # Debian's CFLAGS carry -g: paths in debug info
    env = clean_env(SOURCE_DATE_EPOCH="1700000000", UWSGI_PLUGIN_BACKEND_UWSGI=str(uwsgi))
    outputs = []
    for place in ("first place", "second/place"):
        project = copy_project(SAMPLE, tmp_path / place / "sample")
        out = tmp_path / place / "dist"
        run([sys.executable, *BUILD, "--outdir", out, project], env=env)
        outputs.append((next(out.glob("*.tar.gz")), the_wheel(out)))
    (first_sdist, first_wheel), (second_sdist, second_wheel) = outputs
    assert first_wheel.name == second_wheel.name
    assert sha256(first_wheel) == sha256(second_wheel)
    assert sha256(first_sdist) == sha256(second_sdist)


def test_frontends_build_the_same_wheel(tmp_path, wheelhouse, uwsgi_venv):
    uwsgi = str(uwsgi_venv.uwsgi)
    project = copy_project(SAMPLE, tmp_path / "sample")
    env = clean_env(SOURCE_DATE_EPOCH="1700000000")
    outs = {name: tmp_path / name for name in ("pip-isolated", "pip-no-isolation", "build", "uv")}
    run([uwsgi_venv.python, "-m", "pip", "wheel", "-q", "--no-deps", "--find-links", wheelhouse, "-w", outs["pip-isolated"], project], env=env)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-C", f"uwsgi={uwsgi}", "-w", outs["pip-no-isolation"], project], env=env)
    build_wheel(project, outs["build"], f"-Cuwsgi={uwsgi}", env=env)
    run([BIN / "uv", "build", "--wheel", "--python", sys.executable, "--find-links", wheelhouse, "-C", f"uwsgi={uwsgi}", "--out-dir", outs["uv"], project], env=env)
    wheels = {name: the_wheel(out) for name, out in outs.items()}
    assert len({wheel.name for wheel in wheels.values()}) == 1
    records = {name: record(wheel) for name, wheel in wheels.items()}
    assert len(set(records.values())) == 1, records


def test_pip_installs_the_sdist_and_uninstalls_every_file(tmp_path, wheelhouse, uwsgi_venv):
    env = clean_env(UWSGI_PLUGIN_BACKEND_UWSGI=str(uwsgi_venv.uwsgi))
    run([sys.executable, *BUILD, "--sdist", "--outdir", tmp_path / "dist", SAMPLE], env=env)
    [sdist] = (tmp_path / "dist").glob("*.tar.gz")
    user = make_venv(tmp_path / "venv")
    shutil.copy2(uwsgi_venv.uwsgi, user.uwsgi)  # the uwsgi this user runs, beside their python
    site = next((user.root / "lib").glob("python*/site-packages"))
    before = sorted(str(p) for p in site.rglob("*"))
    user.pip("install", "-q", "--find-links", wheelhouse, sdist)
    plugins_dir = run([user.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    assert plugin_answer(user.uwsgi, plugins_dir, "hello", 250, tmp_path / "log") == "Hello from a wheel"
    user.pip("uninstall", "-y", "uwsgi-plugin-hello")
    leftover = set(sorted(str(p) for p in site.rglob("*"))) - set(before)
    assert not [p for p in leftover if "__pycache__" not in p], leftover


def test_strip_removes_debug_info(tmp_path, debian_uwsgi):
    sizes = {}
    for strip in ("false", "true"):
        out = tmp_path / f"strip-{strip}"
        build_wheel(copy_project(SAMPLE, tmp_path / f"p-{strip}"), out, f"-Cuwsgi={debian_uwsgi}", f"-Cstrip={strip}")
        zipfile.ZipFile(the_wheel(out)).extractall(tmp_path / f"site-{strip}")
        [shared_object] = (tmp_path / f"site-{strip}").glob("uwsgi_plugin_hello/uwsgi_builds/*/hello_plugin.real.so")
        with shared_object.open("rb") as f:
            has_debug_info = ELFFile(f).get_section_by_name(".debug_info") is not None
        assert has_debug_info == (strip == "false")
        sizes[strip] = shared_object.stat().st_size
        assert plugin_answer(debian_uwsgi, shared_object.parent, "hello", 250, tmp_path / f"{strip}.log") == "Hello from a wheel"
    assert sizes["true"] < sizes["false"]
