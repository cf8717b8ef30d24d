"""Builds per uWSGI ABI: keys, several builds in one wheel, pyuwsgi, the
load-time guard, merging wheels, and refusing a uwsgi the wheel has no build for."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import SAMPLE, abi_key, build_wheel, clean_env, copy_project, plugin_answer, run, the_wheel

from uwsgi_plugin_backend.target_uwsgi.abi import target_abi
from uwsgi_plugin_backend.target_uwsgi.kit_cache import read_kit
from uwsgi_plugin_backend.runtime import _uwsgi_plugin as runtime


def unpack(wheel: Path, site: Path) -> Path:
    zipfile.ZipFile(wheel).extractall(site)
    return site


def plugins_dir_for(site: Path, uwsgi: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "uwsgi_plugin_hello", "--uwsgi", uwsgi], cwd=site, env=clean_env(), check=check)


def files_and_hashes(wheel: Path) -> set[str]:
    """RECORD's lines but its own: every file with its hash and size."""
    with zipfile.ZipFile(wheel) as archive:
        [record] = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        return {line for line in archive.read(record).decode().splitlines() if line and not line.startswith(record)}


def info(uwsgi: Path) -> dict[str, str]:
    """`uwsgi-plugin-backend info --uwsgi PATH`, as "label: value" pairs."""
    out = run([sys.executable, "-m", "uwsgi_plugin_backend", "info", "--uwsgi", uwsgi], env=clean_env()).stdout
    return {label.strip(): value.strip() for label, _, value in (line.partition(":") for line in out.splitlines())}


def test_three_uwsgi_builds_have_three_keys(pip_uwsgi, debian_uwsgi, pyuwsgi_venv):
    found = {kind: info(path) for kind, path in (("pip", pip_uwsgi), ("debian", debian_uwsgi), ("pyuwsgi", pyuwsgi_venv.uwsgi))}
    assert len({entry["ABI key"] for entry in found.values()}) == 3, found
    assert found["debian"]["summary"].startswith("uWSGI 2.0.21-debian +")
    assert "+pcre " in found["debian"]["summary"] and "+as_shared_library" in found["pyuwsgi"]["summary"]
    for entry in found.values():
        assert re.fullmatch(r"a3-[0-9a-f]{16}", entry["ABI key"]), entry


@pytest.mark.unlearned  # learned here, from the compiler, not read from the suite's store
def test_key_counts_only_macros_that_change_layouts(pip_uwsgi, machine):
    kit = read_kit(pip_uwsgi, machine)
    # Learned from the compiler: these change struct uwsgi_server and others ...
    assert {"UWSGI_SSL", "UWSGI_ROUTING", "UWSGI_ZLIB"} <= set(target_abi(kit, machine.cache_dir).learned.layout_macros)
    # ... these only add declarations, or are not used by uwsgi.h at all.
    assert not {"UWSGI_XML", "UWSGI_YAML", "UWSGI_JSON", "UWSGI_UUID", "UWSGI_VERSION", "UWSGI_PLUGIN_DIR",
                "UWSGI_AS_SHARED_LIBRARY"} & set(target_abi(kit, machine.cache_dir).learned.layout_macros)
    abi = target_abi(kit, machine.cache_dir)
    assert abi.platform == "machine=x86_64 class=64-le libc=glibc time_t=8 off_t=8"
    # Another version string is still a string: it cannot steer #if, nor size a type it did not size before.
    without_xml = kit.cflags.replace("-DUWSGI_XML ", "").replace('-DUWSGI_VERSION="\\"2.0.31\\""', '-DUWSGI_VERSION="\\"2.1\\""')
    assert without_xml != kit.cflags
    learned = abi.learned.record()
    key = abi_key(kit.cflags, kit.dot_h, learned, abi.platform)
    assert key == abi.key
    assert abi_key(without_xml, kit.dot_h, learned, abi.platform) == key
    assert abi_key(kit.cflags.replace("-DUWSGI_SSL", ""), kit.dot_h, learned, abi.platform) != key
    assert abi_key(kit.cflags, kit.dot_h, learned, abi.platform.replace("glibc", "musl")) != key


def test_one_wheel_for_pip_and_debian_uwsgi(tmp_path, pip_uwsgi, debian_uwsgi):
    build_wheel(copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", f"-Cuwsgi={debian_uwsgi}")
    site = unpack(the_wheel(tmp_path / "out"), tmp_path / "site")
    assert len(list(site.glob("uwsgi_plugin_hello/uwsgi_builds/*/hello_plugin.so"))) == 2
    for uwsgi in (pip_uwsgi, debian_uwsgi):
        directory = plugins_dir_for(site, uwsgi).stdout.strip()
        assert plugin_answer(uwsgi, directory, "hello", 250, tmp_path / f"{uwsgi.name}.log",
                             "--hello-greeting", f"Hello {uwsgi.name}") == f"Hello {uwsgi.name}"


def test_pyuwsgi_process_serves_plugin(tmp_path, pyuwsgi_venv):
    build_wheel(copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={pyuwsgi_venv.uwsgi}")
    wheel = the_wheel(tmp_path / "out")
    assert "-py3-none-manylinux" in wheel.name  # the plugin calls no Python C API: no Python of its own
    pyuwsgi_venv.pip("install", "-q", "--force-reinstall", "--no-deps", wheel)
    directory = run([pyuwsgi_venv.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    # pyuwsgi's `uwsgi` is a Python console script: the plugin runs inside a Python process.
    assert plugin_answer(pyuwsgi_venv.uwsgi, directory, "hello", 250, tmp_path / "log",
                         "--hello-greeting", "Hello pyuwsgi") == "Hello pyuwsgi"


@pytest.mark.parametrize("built_for, loaded_by", [("pip", "debian"), ("debian", "pip")])
def test_guard_refuses_plugin_of_another_build(tmp_path, built_for, loaded_by, pip_uwsgi, debian_uwsgi):
    binaries = {"pip": pip_uwsgi, "debian": debian_uwsgi}
    build_wheel(copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={binaries[built_for]}")
    site = unpack(the_wheel(tmp_path / "out"), tmp_path / "site")
    [shared_object] = site.glob("uwsgi_plugin_hello/uwsgi_builds/*/hello_plugin.so")
    result = subprocess.run(
        [str(binaries[loaded_by]), "--http-socket", "127.0.0.1:0", "--plugins-dir", str(shared_object.parent),
         "--need-plugin", "hello"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(), timeout=30,
    )
    assert result.returncode == 1, result.stdout  # a refusal, not a crash (that would be a negative signal)
    versions = {"pip": "uWSGI 2.0.31", "debian": "uWSGI 2.0.21-debian"}
    [line] = [line for line in result.stdout.splitlines() if "refusing plugin hello" in line]
    assert f"it was built for {versions[built_for]} +" in line
    assert f"this is {versions[loaded_by]} +" in line
    assert "or build one: uwsgi-plugin-backend build-missing uwsgi-plugin-hello" in line
    assert "has no .name attribute" in result.stdout


def test_no_matching_build_is_a_clear_error(tmp_path, pip_uwsgi, debian_uwsgi):
    build_wheel(copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    site = unpack(the_wheel(tmp_path / "out"), tmp_path / "site")
    result = plugins_dir_for(site, debian_uwsgi, check=False)
    assert result.returncode == 1
    assert result.stdout.startswith(f"uwsgi-plugin-backend: error: uwsgi-plugin-hello has no build of its plugins for {debian_uwsgi}")
    assert "that uwsgi is uWSGI 2.0.21-debian +" in result.stdout
    assert ": uWSGI 2.0.31 +" in result.stdout  # the build it carries
    route = "pip install --force-reinstall --no-binary uwsgi-plugin-hello --no-cache-dir uwsgi-plugin-hello"
    assert result.stdout.index("uwsgi-plugin-backend build-missing uwsgi-plugin-hello") < result.stdout.index(route)
    assert "Traceback" not in result.stdout


@pytest.fixture
def single_abi_wheels(tmp_path, pip_uwsgi, debian_uwsgi):
    env = clean_env(SOURCE_DATE_EPOCH="1700000000")
    wheels = []
    for uwsgi in (pip_uwsgi, debian_uwsgi):
        out = tmp_path / f"single-{uwsgi.name}"
        build_wheel(copy_project(SAMPLE, tmp_path / f"p-{uwsgi.name}"), out, f"-Cuwsgi={uwsgi}", env=env)
        wheels.append(the_wheel(out))
    return wheels


def merge(*args) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", *args], check=False, env=clean_env())


def test_merge_equals_the_two_binary_build(tmp_path, single_abi_wheels, pip_uwsgi, debian_uwsgi):
    result = merge(*single_abi_wheels, "-o", tmp_path / "merged")
    assert result.returncode == 0, result.stdout
    merged = the_wheel(tmp_path / "merged")
    build_wheel(copy_project(SAMPLE, tmp_path / "both"), tmp_path / "both-out", f"-Cuwsgi={pip_uwsgi}",
                f"-Cuwsgi={debian_uwsgi}", env=clean_env(SOURCE_DATE_EPOCH="1700000000"))
    both = the_wheel(tmp_path / "both-out")
    assert merged.name == both.name
    assert files_and_hashes(merged) == files_and_hashes(both)
    # Readable as a wheel pip writes it (umask 022 in the tests), not mkstemp's 0600.
    assert merged.stat().st_mode & 0o777 == both.stat().st_mode & 0o777 == 0o644
    assert len([line for line in files_and_hashes(merged) if line.split(",")[0].endswith("hello_plugin.so")]) == 2


def test_merge_refuses_mismatched_inputs(tmp_path, single_abi_wheels, pip_uwsgi):
    pip_wheel, debian_wheel = single_abi_wheels
    # Another version of the project.
    newer = copy_project(SAMPLE, tmp_path / "newer")
    (newer / "pyproject.toml").write_text((newer / "pyproject.toml").read_text().replace('version = "1.0.0"', 'version = "1.0.1"'))
    build_wheel(newer, tmp_path / "newer-out", f"-Cuwsgi={pip_uwsgi}")
    # The same ABI key and sources with another plugin binary (the wheels carry their sources,
    # so a source change is refused before the builds are compared).
    changed = copy_project(SAMPLE, tmp_path / "changed")
    build_wheel(changed, tmp_path / "changed-out", f"-Cuwsgi={pip_uwsgi}", "-Cstrip=true",
                env=clean_env(SOURCE_DATE_EPOCH="1700000000"))
    cases = {
        "version": (the_wheel(tmp_path / "newer-out"), "their version differ"),
        "conflicting key": (the_wheel(tmp_path / "changed-out"), "with other contents than"),
    }
    for what, (other, message) in cases.items():
        out = tmp_path / f"merged-{what}"
        result = merge(pip_wheel, other, "-o", out)
        assert result.returncode == 1, (what, result.stdout)
        assert result.stdout.startswith("uwsgi-plugin-backend: error: "), result.stdout
        assert message in result.stdout, (what, result.stdout)
        assert not out.exists() or not list(out.iterdir())


def pinning_project(tmp_path: Path, dynamic: bool = True) -> Path:
    project = copy_project(SAMPLE, tmp_path / "pinned")
    text = (project / "pyproject.toml").read_text()
    if dynamic:
        text = text.replace('requires-python = ">=3.9"\n', 'requires-python = ">=3.9"\ndynamic = ["dependencies"]\n')
    (project / "pyproject.toml").write_text(text + '\n[tool.uwsgi-plugin]\npin-uwsgi = true\n')
    return project


def requires_dist(wheel: Path) -> list[str]:
    metadata = zipfile.ZipFile(wheel).read("uwsgi_plugin_hello-1.0.0.dist-info/METADATA").decode()
    return [line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]


def test_pin_uwsgi_requires_the_exact_release(tmp_path, pip_uwsgi, pyuwsgi_venv, debian_uwsgi):
    project = pinning_project(tmp_path)
    # pip wheel calls prepare_metadata_for_build_wheel first: it must carry the same pin.
    for name, uwsgi in (("pip", pip_uwsgi), ("pyuwsgi", pyuwsgi_venv.uwsgi), ("debian", debian_uwsgi)):
        out = tmp_path / name
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-C", f"uwsgi={uwsgi}",
             "-w", out, project], env=clean_env())
        pyuwsgi_version = run([pyuwsgi_venv.python, "-c", "import importlib.metadata as m; print(m.version('pyuwsgi'))"]).stdout.strip()
        expected = {"pip": ["uWSGI==2.0.31"], "pyuwsgi": [f"pyuwsgi=={pyuwsgi_version}"], "debian": []}[name]
        assert requires_dist(the_wheel(out)) == expected


def test_pin_uwsgi_needs_dynamic_dependencies(tmp_path, pip_uwsgi):
    result = build_wheel(pinning_project(tmp_path, dynamic=False), tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", check=False)
    assert result.returncode != 0
    assert 'add dynamic = ["dependencies"] to [project]' in result.stdout
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.whl"))
