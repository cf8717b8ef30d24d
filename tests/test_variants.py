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
    clean_env,
    copy_project,
    kept_uwsgi_wheel,
    make_venv,
    plugin_answer,
    run,
    the_wheel,
)
from test_keys_of_real_uwsgis import key_of

from uwsgi_plugin_backend.errors import BackendError
from uwsgi_plugin_backend.plugin_build.symbols import ElfSymbols
from uwsgi_plugin_backend.settings import load_settings
from uwsgi_plugin_backend.target_uwsgi.kit import extract_kit
from uwsgi_plugin_backend.target_uwsgi.variants import FEATURE_FUNCTIONS, _choices, _toggled_cflags, declared_functions

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


def build_dirs(wheel: Path) -> set[str]:
    """The build directories (``abi_<key>``) ``wheel`` holds."""
    return {name.split("/")[2] for name in zipfile.ZipFile(wheel).namelist() if "/uwsgi_builds/abi_" in name}


def serve(venv_python: Path, uwsgi: Path, wheel: Path, name: str, log: Path) -> None:
    """Install ``wheel`` beside ``uwsgi`` with pip, ask the wheel for its build, serve a request."""
    run([venv_python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel], env=clean_env())
    chosen = run([venv_python, "-m", "uwsgi_plugin_hello", "--uwsgi", uwsgi], env=clean_env(), check=False)
    assert chosen.returncode == 0, (name, chosen.stdout)
    greeting = f"Hello {name}"
    assert plugin_answer(uwsgi, chosen.stdout.strip(), "hello", 250, log, "--hello-greeting", greeting) == greeting


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
    assert len(build_dirs(wheel)) == 1


@pytest.mark.slow
def test_a_plugin_using_a_library_only_the_feature_links_is_not_built_for_variants_without_it(tmp_path, pip_variants):
    """libcrypto comes with uWSGI's SSL: a plugin that calls it without linking it loads in
    the binary at hand, never in a uWSGI without SSL; linked, it is built and served there."""
    project = copy_project(PACKAGES / "crypto-caller", tmp_path / "crypto-caller")
    build = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", tmp_path / "out",
             "-C", f"uwsgi={pip_variants['default']}", "-C", "abi-variants=ssl", project]
    result = run(build, env=clean_env())
    assert "abi-variant -UWSGI_SSL skipped: plugin cryptocaller uses RAND_bytes, which neither" in result.stdout, result.stdout
    (project / "uwsgiplugin.py").write_text((project / "uwsgiplugin.py").read_text().replace("LIBS = []", "LIBS = ['-lcrypto']"))
    shutil.rmtree(tmp_path / "out")
    result = run(build, env=clean_env())
    assert "abi-variant -UWSGI_SSL skipped" not in result.stdout, result.stdout
    nossl = pip_variants["nossl"]
    run([nossl.parent / "python", "-m", "pip", "install", "-q", "--no-deps", the_wheel(tmp_path / "out")], env=clean_env())
    chosen = run([nossl.parent / "python", "-m", "uwsgi_plugin_cryptocaller", "--uwsgi", nossl], env=clean_env())
    assert re.fullmatch(r"[0-9a-f]{32}", plugin_answer(nossl, chosen.stdout.strip(), "cryptocaller", 251, tmp_path / "log"))


@pytest.mark.slow
def test_a_plugin_calling_a_function_only_a_feature_defines_is_not_built_for_variants_without_it(tmp_path, pip_variants):
    """uwsgi.h declares uwsgi_register_route_var without routing too; only a uWSGI with routing has it."""
    project = copy_project(PACKAGES / "routevar-caller", tmp_path / "routevar-caller")
    result = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", tmp_path / "out",
                  "-C", f"uwsgi={pip_variants['default']}", "-C", "abi-variants=pcre", project], env=clean_env())
    assert "abi-variant -UWSGI_PCRE2 -UWSGI_ROUTING skipped: plugin routevar calls uwsgi_register_route_var, which a " \
        "uWSGI built with -UWSGI_PCRE2 -UWSGI_ROUTING does not have" in result.stdout, result.stdout
    assert "abi-variant -UWSGI_PCRE2 +UWSGI_PCRE: " in result.stdout, result.stdout  # routing kept: built


@pytest.mark.slow
def test_the_functions_only_a_feature_defines_are_those_pip_uwsgi_lacks_without_it(tmp_path, pip_variants):
    """FEATURE_FUNCTIONS, measured again: what pip's uWSGI defines with SSL (PCRE2 and routing)
    and lacks without, of what uwsgi.h declares without."""
    nopcre = make_venv(tmp_path / "nopcre")
    nopcre.install(kept_uwsgi_wheel("nopcre", "pcre=false;routing=false"))

    def defined(uwsgi: Path) -> set[str]:
        return ElfSymbols(uwsgi.resolve()).defined

    for without, macros in ((pip_variants["nossl"], {"UWSGI_SSL"}), (nopcre.uwsgi, {"UWSGI_PCRE2", "UWSGI_ROUTING"})):
        kit, kit_dir = extract_kit(without, 60), tmp_path / without.parent.parent.name
        kit.write(kit_dir)
        lacking = (defined(pip_variants["default"]) - defined(without)) & (declared_functions(kit_dir, kit.cflags) or set())
        expected = {name for needed, names in FEATURE_FUNCTIONS.items() if macros >= set(needed) - {"UWSGI_PCRE"}
                    for name in names}
        assert lacking == expected, macros


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
    assert len(build_dirs(wheel)) == 1


@pytest.mark.slow
def test_pyuwsgi_is_not_varied(tmp_path, pyuwsgi_venv):
    """pyuwsgi's wheels on PyPI are built one way: a variant of one would serve no one."""
    project = copy_project(SAMPLE, tmp_path / "sample")
    result = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", tmp_path / "out",
                  "-C", f"uwsgi={pyuwsgi_venv.uwsgi}", "-C", "abi-variants=all", project], env=clean_env())
    assert f"abi-variants: none for {pyuwsgi_venv.uwsgi}, a pyuwsgi" in result.stdout, result.stdout
    [wheel] = (tmp_path / "out").glob("*.whl")
    assert len(build_dirs(wheel)) == 1


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

    together, log = build("together", "-C", f"uwsgi={default}", "-C", f"uwsgi={pyuwsgi_venv.uwsgi}",
                          "-C", "abi-variants=ssl,libcap")
    assert "abi-variant -UWSGI_CAP -UWSGI_SSL has the ABI key of " in log and "built apart, in abi_" in log, log
    pyuwsgi_key = "abi_" + key_of(pyuwsgi_venv.uwsgi).replace("-", "_")
    assert len(build_dirs(together)) == 5 and len([b for b in build_dirs(together) if b.startswith(pyuwsgi_key)]) == 2
    assert "OK" in run([BIN / "check-wheel-contents", together]).stdout  # no two files alike (W002)
    pip_wheel, _ = build("pip", "-C", f"uwsgi={default}", "-C", "abi-variants=ssl,libcap")
    pyuwsgi_wheel, _ = build("pyuwsgi", "-C", f"uwsgi={pyuwsgi_venv.uwsgi}")
    run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", pip_wheel, pyuwsgi_wheel, "-o", tmp_path / "merged"],
        env=clean_env())
    merged = the_wheel(tmp_path / "merged")
    assert len(build_dirs(merged)) == 5 and len([b for b in build_dirs(merged) if b.startswith(pyuwsgi_key)]) == 2
    assert "OK" in run([BIN / "check-wheel-contents", merged]).stdout
    for name, python, uwsgi in (("pyuwsgi", pyuwsgi_venv.python, pyuwsgi_venv.uwsgi), ("pip", default.parent / "python", default)):
        serve(python, uwsgi, merged, name, tmp_path / f"{name}.log")


@pytest.mark.slow
def test_a_variant_and_a_build_for_a_real_uwsgi_of_its_feature_set_merge(tmp_path, pip_variants):
    """What variants are for: a CI job with pip's default uWSGI makes a -UWSGI_SSL variant,
    another job on a machine without libssl-dev builds for its uWSGI without SSL; both
    builds serve the same binaries, and the merged wheel keeps the real one."""
    project = copy_project(SAMPLE, tmp_path / "sample")
    nossl = pip_variants["nossl"]
    for out, args in (("variants", ["-C", f"uwsgi={pip_variants['default']}", "-C", "abi-variants=ssl"]),
                      ("nossl", ["-C", f"uwsgi={nossl}"])):
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / out,
             *args, project], env=clean_env())
    for order in (("variants", "nossl"), ("nossl", "variants")):
        merged = tmp_path / "-".join(order)
        run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", *(the_wheel(tmp_path / name) for name in order),
             "-o", merged], env=clean_env())
        with zipfile.ZipFile(the_wheel(merged)) as wheel:
            records = [n for n in wheel.namelist() if n.endswith("/build.json")]
            assert len(records) == 2, records
            assert sum("variant" in wheel.read(n).decode() for n in records) == 0, "the real build is kept"
    serve(nossl.parent / "python", nossl, the_wheel(merged), "nossl", tmp_path / "nossl.log")
