"""One wheel per platform: the sample built on one machine for pip's uWSGI (with
abi-variants) and for pyuwsgi, merged, and serving every uWSGI it claims."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import SAMPLE, auditwheel_tag, clean_env, copy_project, kept_uwsgi_wheel, make_venv, platform_tags, run, the_wheel
from test_keys_of_real_uwsgis import key_of
from test_variants import build_dirs, serve

BIN = Path(sys.executable).parent


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
    builds = build_dirs(wheel)
    # ssl on/off times pcre2+routing, pcre+routing or neither (libpcre3-dev: scripts/test), and pyuwsgi's.
    assert len(builds) == 7, (builds, pip_job.stdout)
    # One line says what is learned for the variants, not one a variant.
    assert "abi-variants: 5 other feature sets; the layouts of each are learned once" in pip_job.stdout
    assert pip_job.stdout.count("first build for this uwsgi.h and CFLAGS") <= 1
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
