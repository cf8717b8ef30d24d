"""C++ plugins: the symbol check sees every library the loader
brings into a uwsgi process, found as the loader finds them; a plugin with
C++ sources links the C++ runtime, as g++ would, and serves from pip's uWSGI,
from one built without xml (which brings no libstdc++) and from pyuwsgi."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import (
    PACKAGES,
    assert_one_clean_failure,
    build_wheel,
    clean_env,
    copy_project,
    installed_plugin,
    plugin_answer,
    run,
    tree_digest,
)


def ldd_order(path: Path) -> list[Path]:
    """The files the loader itself maps for ``path`` (ldd: LD_TRACE_LOADED_OBJECTS), in its order,
    without the program interpreter, which the loader is."""
    listing = run(["ldd", path]).stdout
    return [Path(found).resolve() for found in re.findall(r"^\s+\S+ => (/.+) \(0x[0-9a-f]+\)$", listing, re.M)]


def our_order(path: Path) -> list[Path]:
    from uwsgi_plugin_backend.plugin_build.dynamic_loader import Loader
    from uwsgi_plugin_backend.plugin_build.symbols import _read

    loaded, unresolved = Loader().load_order([_read(path)], _read)
    assert unresolved == []
    return [item.elf.path.resolve() for item in loaded[1:] if not item.elf.path.name.startswith("ld-linux")]


def test_libraries_found_as_the_loader_finds_them(pip_variants, debian_uwsgi, pyuwsgi_venv):
    """Breadth first, RUNPATH (pip's uWSGI: libpython), $ORIGIN (pyuwsgi's bundled
    libraries), the loader's cache: the same files in the same order as ldd."""
    [module] = pyuwsgi_venv.root.glob("lib/python*/site-packages/pyuwsgi*.so")
    binaries = [pip_variants["default"].resolve(), pip_variants["lean"].resolve(), debian_uwsgi, module]
    for binary in binaries:
        assert our_order(binary) == ldd_order(binary), binary
    # pip's uWSGI with xml reaches libstdc++ through libxml2 -> libicuuc; the lean one does not reach it.
    names = {binary: " ".join(path.name for path in our_order(binary)) for binary in binaries}
    assert "libstdc++.so" in names[binaries[0]] and "libstdc++.so" not in names[binaries[1]]
    assert "libpcre2-8-" in names[module]  # in pyuwsgi.libs/, found by $ORIGIN


def test_loader_cache_read_as_ldconfig_lists_it():
    from uwsgi_plugin_backend.plugin_build.dynamic_loader import _ldconfig_entries, ld_so_cache

    listed: dict[str, list[str]] = {}
    for name, path in _ldconfig_entries():
        listed.setdefault(name, []).append(path)
    assert ld_so_cache() == listed and "libc.so.6" in listed


def build_cxx_archive(tmp_path: Path) -> Path:
    """The plugin with its C++ code in a static library, made with g++ as a project would."""
    project = copy_project(PACKAGES / "cxx-archive", tmp_path / "cxx-archive")
    run(["g++", "-fPIC", "-c", PACKAGES / "features" / "cxx_part.cc", "-o", "cxx_part.o"], cwd=project)
    run(["ar", "rcs", "libcxxpart.a", "cxx_part.o"], cwd=project)
    (project / "cxx_part.o").unlink()
    return project


def test_cxx_code_reached_through_uwsgis_libraries(tmp_path, pip_variants, outdir):
    """The C++ runtime the plugin does not link: pip's uWSGI brings it (libxml2 ->
    libicuuc -> libstdc++), so the build passes and the plugin serves (uwsgi
    --build-plugin's plugin loads there too); the lean build does not, so it is
    refused, with the fix."""
    project = build_cxx_archive(tmp_path)
    build_wheel(project, tmp_path / "default", f"-Cuwsgi={pip_variants['default']}")
    shared_object = installed_plugin(tmp_path / "default", tmp_path / "site", "uwsgi_plugin_cxxarchive", "cxxarchive")
    assert plugin_answer(pip_variants["default"], shared_object.parent, "cxxarchive", 248, tmp_path / "log") == "cc"

    before = tree_digest(project)
    result = build_wheel(project, outdir, f"-Cuwsgi={pip_variants['lean']}", check=False)
    assert_one_clean_failure(result, project, before, outdir,
                             r"plugin cxxarchive uses .*__gxx_personality_v0.* link the C\+\+ runtime: LIBS = \['-lstdc\+\+'\]")


def test_cxx_plugin_serves_from_three_uwsgis(tmp_path, pip_variants, pyuwsgi_venv, wheelhouse):
    """A plugin (a .cc source using std::string, no LIBS), built by pip
    with build isolation in each uwsgi's environment (the backend from the wheelhouse,
    as before a release), links libstdc++ itself and serves from pip's uWSGI, from the
    one built with xml=false (no libstdc++ in its chain) and from pyuwsgi."""
    project = copy_project(PACKAGES / "cxx", tmp_path / "cxx plugin")
    uwsgis = {"default": pip_variants["default"], "lean": pip_variants["lean"], "pyuwsgi": pyuwsgi_venv.uwsgi}
    for name, uwsgi in uwsgis.items():
        python = uwsgi.parent / "python"
        out = tmp_path / f"wheel-{name}"
        result = run([python, "-m", "pip", "wheel", "-v", "--no-deps", "--find-links", wheelhouse, "-w", out, project],
                     env=clean_env())
        assert f"building for {uwsgi}" in result.stdout, result.stdout
        shared_object = installed_plugin(out, tmp_path / f"site-{name}", "uwsgi_plugin_cxx", "cxx")
        needed = run(["readelf", "-d", shared_object.with_name("cxx_plugin.real.so")]).stdout
        assert "[libstdc++.so.6]" in needed, needed
        log = tmp_path / f"{name}.log"
        assert plugin_answer(uwsgi, shared_object.parent, "cxx", 249, log) == "Hello from C++: cxx loaded", name
        assert "cxx loaded" in log.read_text()
