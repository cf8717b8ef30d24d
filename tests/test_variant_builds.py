"""ABI variants (abi-variants): one build from pip's uWSGI also serves the
uWSGIs pip compiles elsewhere with other -dev packages installed; a variant
the plugin or the machine cannot have is skipped, saying why."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import (
    PACKAGES,
    SAMPLE,
    auditwheel_tag,
    clean_env,
    copy_project,
    kept_uwsgi_wheel,
    make_venv,
    platform_tags,
    plugin_answer,
    run,
    the_wheel,
)
from test_abi_variants import key_of

from uwsgi_plugin_backend.errors import BackendError
from uwsgi_plugin_backend.settings import load_settings
from uwsgi_plugin_backend.target_uwsgi.variants import _choices, _toggled_cflags

BIN = Path(sys.executable).parent


def test_toggled_cflags_take_out_and_put_in_plain_defines():
    cflags = "-O2 -I. -DUWSGI_SSL -DUWSGI_PCRE2 -DUWSGI_ROUTING -DUWSGI_VERSION=\"\\\"2.0.31\\\"\""
    assert _toggled_cflags(cflags, {"UWSGI_SSL", "UWSGI_PCRE2"}, ["UWSGI_PCRE"]) == \
        "-O2 -I. -DUWSGI_ROUTING -DUWSGI_VERSION=\"\\\"2.0.31\\\"\" -DUWSGI_PCRE"
    # Defined in a spelling a word filter cannot take out: no variant, rather than a wrong one.
    assert _toggled_cflags("-D UWSGI_SSL", {"UWSGI_SSL"}, []) is None
    assert _toggled_cflags("-Wp,-DUWSGI_SSL", {"UWSGI_SSL"}, []) is None


def test_variant_names():
    assert set(_choices(("all",))) == {"ssl", "pcre", "zlib", "libcap"}
    assert _choices(("UWSGI_DEBUG_BUFFER",)) == {"UWSGI_DEBUG_BUFFER": ((), ("UWSGI_DEBUG_BUFFER",))}
    with pytest.raises(BackendError, match="unknown feature 'sssl'.*known features: ssl, pcre, zlib, libcap"):
        _choices(("sssl",))


@pytest.mark.parametrize(("given", "expected"), [
    ({}, ()), ({"abi-variants": "none"}, ()), ({"abi-variants": "all"}, ("all",)),
    ({"abi-variants": "ssl,pcre"}, ("ssl", "pcre")), ({"abi-variants": ["ssl", "UWSGI_ZLIB"]}, ("ssl", "UWSGI_ZLIB")),
])
def test_the_setting(tmp_path, given, expected):
    project = copy_project(SAMPLE, tmp_path / "p")
    assert load_settings(project, given).abi_variants == expected


@pytest.mark.parametrize("value", ["all,ssl", "ss-l", "none,pcre"])
def test_a_bad_setting_is_one_clear_error(tmp_path, value):
    project = copy_project(SAMPLE, tmp_path / "p")
    with pytest.raises(BackendError, match=r"-C abi-variants: .* is not a variant name; give \"all\""):
        load_settings(project, {"abi-variants": value})


def serve(venv_python: Path, uwsgi: Path, wheel: Path, name: str, log: Path) -> None:
    """Install ``wheel`` beside ``uwsgi`` with pip, ask the wheel for its build, serve a request."""
    run([venv_python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel], env=clean_env())
    chosen = run([venv_python, "-m", "uwsgi_plugin_hello", "--uwsgi", uwsgi], env=clean_env(), check=False)
    assert chosen.returncode == 0, (name, chosen.stdout)
    greeting = f"Hello {name}"
    assert plugin_answer(uwsgi, chosen.stdout.strip(), "hello", 250, log, "--hello-greeting", greeting) == greeting


@pytest.mark.slow
def test_one_wheel_per_platform_serves_pips_uwsgi_features_and_pyuwsgi_pythons(
        tmp_path, wheelhouse, pip_variants, pyuwsgi_pythons, debian_uwsgi):
    """Issue 23's check: the sample built on one machine, by pip with build isolation,
    for pip's uWSGI 2.0.31 (default configuration, with variants) and for pyuwsgi
    under one Python, merged into one wheel; then installed and serving from pip's
    uWSGI compiled ssl=false, pcre=false;routing=false and by default, and from
    pyuwsgi under Python 3.9 and 3.13. A uwsgi no build covers is told build-missing."""
    nopcre = make_venv(tmp_path / "nopcre")
    nopcre.install(kept_uwsgi_wheel("nopcre", "pcre=false;routing=false"))
    default = pip_variants["default"]
    project = copy_project(SAMPLE, tmp_path / "sample")
    pip_job = run([default.parent / "python", "-m", "pip", "wheel", "-v", "--no-deps", "--find-links", wheelhouse,
                   "-w", tmp_path / "pip", "-C", f"uwsgi={default}", "-C", "abi-variants=ssl,pcre", project], env=clean_env())
    builder = pyuwsgi_pythons(f"{sys.version_info.major}.{sys.version_info.minor}")
    builder.pip("wheel", "-q", "--no-deps", "--find-links", wheelhouse, "-w", tmp_path / "pyuwsgi", project)
    run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", the_wheel(tmp_path / "pip"),
         the_wheel(tmp_path / "pyuwsgi"), "-o", tmp_path / "merged"], env=clean_env())
    wheel = the_wheel(tmp_path / "merged")
    builds = {name.split("/")[2] for name in zipfile.ZipFile(wheel).namelist() if "/uwsgi_builds/abi_" in name}
    # ssl on/off times pcre2+routing, pcre+routing or neither (libpcre3-dev: scripts/test), and pyuwsgi's.
    assert len(builds) == 7, (builds, pip_job.stdout)
    for label in ("-UWSGI_SSL", "-UWSGI_PCRE2 -UWSGI_ROUTING", "-UWSGI_PCRE2 +UWSGI_PCRE"):
        assert f"abi-variant {label}:" in pip_job.stdout
    # One tag: every Python 3, the lowest manylinux the ELF files allow (auditwheel's reading).
    assert wheel.name.split("-")[2:4] == ["py3", "none"]
    assert platform_tags(wheel)[-1] == auditwheel_tag(wheel)
    assert "OK" in run([BIN / "check-wheel-contents", wheel]).stdout
    assert "PASSED" in run([BIN / "twine", "check", "--strict", wheel]).stdout
    for name, uwsgi in (("default", default), ("ssl=false", pip_variants["nossl"]), ("pcre=false", nopcre.uwsgi)):
        assert "abi_" + key_of(uwsgi).replace("-", "_") in builds
        serve(uwsgi.parent / "python", uwsgi, wheel, name, tmp_path / f"{name}.log")
    for version in ("3.9", "3.13"):
        venv = pyuwsgi_pythons(version)
        serve(venv.python, venv.uwsgi, wheel, f"pyuwsgi under {version}", tmp_path / f"pyuwsgi-{version}.log")
    refused = run([default.parent / "python", "-m", "uwsgi_plugin_hello", "--uwsgi", debian_uwsgi], env=clean_env(),
                  check=False)
    assert refused.returncode != 0 and "has no build of its plugins for /usr/bin/uwsgi-core" in refused.stdout
    assert "uwsgi-plugin-backend build-missing uwsgi-plugin-hello" in refused.stdout, refused.stdout


@pytest.mark.slow
def test_a_uwsgi_no_variant_covers_is_refused_naming_build_missing(tmp_path, pip_variants, debian_uwsgi):
    project = copy_project(SAMPLE, tmp_path / "sample")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "out",
         "-C", f"uwsgi={pip_variants['default']}", "-C", "abi-variants=ssl", project], env=clean_env())
    [wheel] = (tmp_path / "out").glob("*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    result = run([sys.executable, "-m", "uwsgi_plugin_hello", "--uwsgi", debian_uwsgi], cwd=tmp_path / "site",
                 env=clean_env(), check=False)
    assert result.returncode != 0
    assert "uwsgi-plugin-backend build-missing" in result.stdout, result.stdout


@pytest.mark.slow
def test_a_plugin_calling_a_feature_function_is_not_built_for_variants_without_it(tmp_path, pip_variants):
    project = copy_project(PACKAGES / "ssl-caller", tmp_path / "ssl-caller")
    result = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", tmp_path / "out",
                  "-C", f"uwsgi={pip_variants['default']}", "-C", "abi-variants=ssl", project], env=clean_env())
    assert "abi-variant -UWSGI_SSL skipped: plugin sslcaller calls uwsgi_ssl_rand, which a uWSGI built with -UWSGI_SSL " \
        "does not have" in result.stdout, result.stdout
    [wheel] = (tmp_path / "out").glob("*.whl")
    assert len({n.split("/")[2] for n in zipfile.ZipFile(wheel).namelist() if "/uwsgi_builds/abi_" in n}) == 1


@pytest.mark.slow
def test_a_variant_whose_headers_are_missing_is_skipped_naming_the_package(tmp_path, pip_variants):
    """A machine without libssl-dev: /usr/include/openssl hidden by an empty
    mount in a mount namespace of its own (needs unshare and root, as CI has)."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("cannot make a mount namespace here (unshare -m): no way to hide a header")
    project = copy_project(SAMPLE, tmp_path / "sample")
    build = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", tmp_path / "out",
             "-C", f"uwsgi={pip_variants['nossl']}", "-C", "abi-variants=ssl", project]
    script = 'mount -t tmpfs none /usr/include/openssl && exec "$@"'
    result = run(["unshare", "-m", "sh", "-c", script, "sh", *map(str, build)], env=clean_env())
    assert re.search(r"abi-variant \+UWSGI_SSL skipped: uwsgi.h does not compile with it here \(openssl/\w+\.h is not "
                     r"installed: apt-get install libssl-dev\)\n", result.stdout), result.stdout
    [wheel] = (tmp_path / "out").glob("*.whl")
    assert len({n.split("/")[2] for n in zipfile.ZipFile(wheel).namelist() if "/uwsgi_builds/abi_" in n}) == 1


@pytest.mark.slow
def test_pyuwsgi_is_not_varied(tmp_path, pyuwsgi_venv):
    """pyuwsgi's wheels on PyPI are built one way: a variant of one would serve no one."""
    project = copy_project(SAMPLE, tmp_path / "sample")
    result = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", tmp_path / "out",
                  "-C", f"uwsgi={pyuwsgi_venv.uwsgi}", "-C", "abi-variants=all", project], env=clean_env())
    assert f"abi-variants: none for {pyuwsgi_venv.uwsgi}, a pyuwsgi" in result.stdout, result.stdout
    [wheel] = (tmp_path / "out").glob("*.whl")
    assert len({n.split("/")[2] for n in zipfile.ZipFile(wheel).namelist() if "/uwsgi_builds/abi_" in n}) == 1


@pytest.mark.slow
def test_a_variant_with_the_key_of_pyuwsgi_is_built_and_merged_beside_it(tmp_path, pip_variants, pyuwsgi_venv):
    """pip's uWSGI 2.0.31 without SSL and libcap has the ABI key of pyuwsgi's, yet a
    build for one is not chosen for the other (each learned macros the other's CFLAGS
    leave alone): both builds are kept, in one build and in a merge."""
    project = copy_project(SAMPLE, tmp_path / "sample")
    default = pip_variants["default"]

    def build(out: str, *args: str) -> tuple[Path, str]:
        result = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w",
                      tmp_path / out, *args, project], env=clean_env())
        return the_wheel(tmp_path / out), result.stdout

    def builds(wheel: Path) -> set[str]:
        return {n.split("/")[2] for n in zipfile.ZipFile(wheel).namelist() if "/uwsgi_builds/abi_" in n}

    together, log = build("together", "-C", f"uwsgi={default}", "-C", f"uwsgi={pyuwsgi_venv.uwsgi}",
                          "-C", "abi-variants=ssl,libcap")
    assert "abi-variant -UWSGI_CAP -UWSGI_SSL has the ABI key of " in log and "built apart, in abi_" in log, log
    pyuwsgi_key = "abi_" + key_of(pyuwsgi_venv.uwsgi).replace("-", "_")
    assert len(builds(together)) == 5 and len([b for b in builds(together) if b.startswith(pyuwsgi_key)]) == 2
    assert "OK" in run([BIN / "check-wheel-contents", together]).stdout  # no two files alike (W002)
    pip_wheel, _ = build("pip", "-C", f"uwsgi={default}", "-C", "abi-variants=ssl,libcap")
    pyuwsgi_wheel, _ = build("pyuwsgi", "-C", f"uwsgi={pyuwsgi_venv.uwsgi}")
    run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", pip_wheel, pyuwsgi_wheel, "-o", tmp_path / "merged"],
        env=clean_env())
    merged = the_wheel(tmp_path / "merged")
    assert len(builds(merged)) == 5 and len([b for b in builds(merged) if b.startswith(pyuwsgi_key)]) == 2
    assert "OK" in run([BIN / "check-wheel-contents", merged]).stdout
    for name, python, uwsgi in (("pyuwsgi", pyuwsgi_venv.python, pyuwsgi_venv.uwsgi), ("pip", default.parent / "python", default)):
        serve(python, uwsgi, merged, name, tmp_path / f"{name}.log")
