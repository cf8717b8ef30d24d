"""The ABI key on real binaries: pip's uWSGI 2.0.31 compiled three ways on
this machine, pyuwsgi 2.0.30 and 2.0.30.post1; and the build-time symbol check."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import (
    PACKAGES,
    SAMPLE,
    Venv,
    build_wheel,
    clean_env,
    copy_project,
    make_venv,
    plugin_answer,
    run,
    tree_digest,
)

@pytest.fixture(scope="session")
def pyuwsgi_releases(tmp_path_factory) -> dict[str, Venv]:
    root = tmp_path_factory.mktemp("pyuwsgi-releases")
    return {version: make_venv(root / version, f"pyuwsgi=={version}") for version in ("2.0.30", "2.0.30.post1")}


def key_of(uwsgi: Path) -> str:
    out = run([sys.executable, "-m", "uwsgi_plugin_backend", "info", "--uwsgi", uwsgi], env=clean_env()).stdout
    [line] = [line for line in out.splitlines() if line.startswith("ABI key:")]
    return line.split()[-1]


def built_site(tmp_path: Path, uwsgi: Path) -> Path:
    build_wheel(copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={uwsgi}")
    [wheel] = (tmp_path / "out").glob("*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    return tmp_path / "site"


def select(site: Path, uwsgi: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "uwsgi_plugin_hello", "--uwsgi", uwsgi], cwd=site, env=clean_env(), check=False)


@pytest.mark.slow
def test_lean_build_shares_the_key_and_the_wheel_of_the_default(tmp_path, pip_variants):
    assert key_of(pip_variants["default"]) == key_of(pip_variants["lean"])
    site = built_site(tmp_path, pip_variants["default"])
    result = select(site, pip_variants["lean"])
    assert result.returncode == 0, result.stdout
    directory = result.stdout.strip()
    assert plugin_answer(pip_variants["lean"], directory, "hello", 250, tmp_path / "lean.log",
                         "--hello-greeting", "Hello lean") == "Hello lean"


@pytest.mark.slow
def test_ssl_false_gets_another_key_and_is_refused_without_a_crash(tmp_path, pip_variants):
    assert key_of(pip_variants["nossl"]) != key_of(pip_variants["default"])
    site = built_site(tmp_path, pip_variants["default"])
    result = select(site, pip_variants["nossl"])
    assert result.returncode == 1
    assert result.stdout.startswith(f"uwsgi-plugin-backend: error: uwsgi-plugin-hello has no build of its plugins for {pip_variants['nossl']}")
    assert "-ssl" in result.stdout and "Traceback" not in result.stdout
    [shared_object] = site.glob("uwsgi_plugin_hello/uwsgi_builds/*/hello_plugin.so")
    loaded = subprocess.run(
        [str(pip_variants["nossl"]), "--http-socket", "127.0.0.1:0", "--plugins-dir", str(shared_object.parent),
         "--need-plugin", "hello"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(), timeout=30,
    )
    assert loaded.returncode == 1, loaded.stdout  # exits on the refusal; a crash would be a negative signal
    [line] = [line for line in loaded.stdout.splitlines() if "refusing plugin hello" in line]
    assert "it was built for uWSGI 2.0.31 +ssl" in line and "this is uWSGI 2.0.31 " in line and " -ssl " in line


@pytest.mark.slow
def test_one_build_serves_default_and_lean(tmp_path, pip_variants):
    result = build_wheel(copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out",
                         f"-Cuwsgi={pip_variants['default']}", f"-Cuwsgi={pip_variants['lean']}")
    assert "one build serves both" in result.stdout
    [wheel] = (tmp_path / "out").glob("*.whl")
    assert len([n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("/hello_plugin.so")]) == 1


@pytest.mark.slow
def test_pyuwsgi_post_release_has_the_same_key(pyuwsgi_releases, pip_variants, debian_uwsgi):
    keys = {version: key_of(venv.uwsgi) for version, venv in pyuwsgi_releases.items()}
    assert keys["2.0.30"] == keys["2.0.30.post1"]
    assert len({keys["2.0.30"], key_of(pip_variants["default"]), key_of(debian_uwsgi)}) == 3


@pytest.mark.slow
@pytest.mark.parametrize("package, message", [
    ("misnamed-struct", "misnamed_plugin.so does not define `struct uwsgi_plugin misnamed_plugin`"),
    ("missing-function", "plugin newer calls uwsgi_function_of_a_later_release, which this uWSGI (uWSGI 2.0.31, "),
])
def test_symbol_check_names_the_cause(tmp_path, pip_uwsgi, package, message):
    project = copy_project(PACKAGES / package, tmp_path / package)
    before = tree_digest(project)
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", check=False)
    assert result.returncode != 0
    [line] = [line for line in result.stdout.splitlines() if line.startswith("uwsgi-plugin-backend: error: ")]
    assert message in line, result.stdout
    assert "Traceback" not in result.stdout
    assert tree_digest(project) == before
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.whl"))


def test_symbol_tables_read_as_pyelftools_reads_them(debian_uwsgi):
    """The symbol check unpacks .dynsym itself (pyelftools' per-symbol parsing is
    8x slower); what it reads must equal pyelftools' own reading, symbol by symbol."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerSymSection

    from uwsgi_plugin_backend.plugin_build.symbols import ElfSymbols

    libc = Path(run(["gcc", "-print-file-name=libc.so.6"]).stdout.strip()).resolve()
    for path in (debian_uwsgi, libc):
        with path.open("rb") as f:
            elf = ELFFile(f)
            versions = next(s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection))
            defined, undefined = set(), set()
            for index, symbol in enumerate(elf.get_section_by_name(".dynsym").iter_symbols()):
                if not symbol.name:
                    continue
                if symbol["st_shndx"] != "SHN_UNDEF":
                    defined.add(symbol.name)
                elif symbol["st_info"]["bind"] != "STB_WEAK":
                    if versions.get_symbol(index)["ndx"] in ("VER_NDX_LOCAL", "VER_NDX_GLOBAL"):
                        undefined.add(symbol.name)
        read = ElfSymbols(path)
        assert (read.defined, read.undefined) == (defined, undefined), path
        assert len(defined) > 500 and (path == libc or undefined)
