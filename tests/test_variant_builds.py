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
from conftest import PACKAGES, SAMPLE, clean_env, copy_project, kept_uwsgi_wheel, make_venv, plugin_answer, run
from test_abi_variants import key_of

from uwsgi_plugin_backend.errors import BackendError
from uwsgi_plugin_backend.settings import load_settings
from uwsgi_plugin_backend.target_uwsgi.variants import _choices, _toggled_cflags


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


def installed_plugins_dir(venv_python: Path, wheel: Path, uwsgi: Path) -> subprocess.CompletedProcess:
    run([venv_python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel], env=clean_env())
    return run([venv_python, "-m", "uwsgi_plugin_hello", "--uwsgi", uwsgi], env=clean_env(), check=False)


@pytest.mark.slow
def test_one_wheel_serves_pips_uwsgi_built_with_other_features(tmp_path, wheelhouse, pip_variants):
    """Built once, from the default build, with pip and build isolation; then
    installed beside uwsgis compiled with ssl=false and with pcre=false;routing=false."""
    nopcre_venv = make_venv(tmp_path / "nopcre")
    nopcre_venv.install(kept_uwsgi_wheel("nopcre", "pcre=false;routing=false"))
    default = pip_variants["default"]
    project = copy_project(SAMPLE, tmp_path / "sample")
    result = run([default.parent / "python", "-m", "pip", "wheel", "-v", "--no-deps", "--find-links", wheelhouse,
                  "-w", tmp_path / "out", "-C", f"uwsgi={default}", "-C", "abi-variants=ssl,pcre", project], env=clean_env())
    [wheel] = (tmp_path / "out").glob("*.whl")
    builds = {name.split("/")[2] for name in zipfile.ZipFile(wheel).namelist() if "/uwsgi_builds/abi_" in name}
    # ssl on/off times pcre2+routing, pcre+routing or neither, PCRE (libpcre3-dev) installed by scripts/test.
    assert len(builds) == 6, (builds, result.stdout)
    for label in ("-UWSGI_SSL", "-UWSGI_PCRE2 -UWSGI_ROUTING", "-UWSGI_PCRE2 +UWSGI_PCRE"):
        assert f"abi-variant {label}:" in result.stdout
    for uwsgi in (default, pip_variants["nossl"], nopcre_venv.uwsgi):
        assert "abi_" + key_of(uwsgi).replace("-", "_") in builds
        chosen = installed_plugins_dir(uwsgi.parent / "python", wheel, uwsgi)
        assert chosen.returncode == 0, chosen.stdout
        assert plugin_answer(uwsgi, chosen.stdout.strip(), "hello", 250, tmp_path / f"{uwsgi.parent.parent.name}.log",
                             "--hello-greeting", f"Hello {uwsgi.parent.parent.name}") == f"Hello {uwsgi.parent.parent.name}"


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
