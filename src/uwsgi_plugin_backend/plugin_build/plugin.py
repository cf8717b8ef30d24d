"""The uwsgi-embedded build of one plugin directory, out of tree.

The project root (the directory holding pyproject.toml) is copied into the
build directory and the binary's own uwsgiconfig.py runs in the plugin
directory's copy, as ``uwsgi --build-plugin .`` would in the plugin directory.
The copy keeps the source tree untouched whatever the build writes
(uwsgiconfig.py writes BINARY_LIST objects and the .so beside the sources),
keeps paths with spaces out of uwsgiconfig.py's shell command lines, keeps
the meaning of paths that leave the plugin directory but stay in the project
(``-I../common``, ``../common/x.c``), and puts the extracted uwsgi.h at
``../../uwsgi.h``, where plugins written for uWSGI's own source tree look for it.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from ..cache import CacheDir
from ..errors import BackendError, log
from ..target_uwsgi.abi import TargetAbi
from ..target_uwsgi.compiler import FEATURE_HEADERS, missing_header, system_header_hint
from ..target_uwsgi.pyuwsgi import PyuwsgiModule
from . import warmup
from ._driver import C_IDENTIFIER, DriverRequest
from .layout_check import check_compile_flags

DRIVER = Path(__file__).with_name("_driver.py")

SHELL_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+=:,@%-]+$")


@dataclasses.dataclass(frozen=True)
class BuiltPlugin:
    name: str
    shared_object: Path


def _is_virtualenv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def left_out(path: Path) -> bool:
    """What the build's copy of a project leaves out: dot-files, caches, virtual environments."""
    return path.name.startswith(".") or path.name == "__pycache__" or _is_virtualenv(path)


def _loop_target(path: Path, real_chain: list[Path]) -> Path | None:
    """The directory a link at ``path`` leads back into (itself or an ancestor of
    a directory being copied), else None: copying through it would never end."""
    if not path.is_symlink() or not path.is_dir():
        return None
    target = path.resolve()
    return target if any(real == target or real.is_relative_to(target) for real in real_chain) else None


def copy_project(source: Path, target: Path, skip: Path) -> None:
    """Copy the project root, leaving out dot-files, caches, virtual environments,
    the build directory itself (when it lies inside) and links that loop back."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        here = Path(directory)
        inside = here.relative_to(source).parts
        real_chain = [source.joinpath(*inside[:depth]).resolve() for depth in range(len(inside) + 1)]
        ignored = []
        for name in names:
            path = here / name
            if left_out(path) or Path(os.path.realpath(path)) == skip:
                ignored.append(name)
            elif (loop := _loop_target(path, real_chain)) is not None:
                log(f"skipping the link {path} -> {os.readlink(path)}: it points back into {loop}, "
                    "which holds it (a loop; uwsgi --build-plugin never descends into it either)")
                ignored.append(name)
        return ignored

    try:
        # Links are followed, as uwsgi --build-plugin would: a relative link keeps
        # its meaning, and nothing the build writes can reach the source tree.
        shutil.copytree(source, target, symlinks=False, ignore=ignore, ignore_dangling_symlinks=True)
    except (shutil.Error, OSError) as error:
        raise BackendError(f"cannot copy the project {source} to build it: {error}") from None


def reproducible_flags(work: Path) -> list[str]:
    """Keep the random build directory's path out of the .so (debug info, __FILE__).

    uwsgiconfig.py appends $CFLAGS split on white space to a shell command
    line, so a path with white space or shell characters is not put there;
    such a build is then not reproducible.
    """
    path = str(work.resolve())
    return [f"-ffile-prefix-map={path}=."] if SHELL_SAFE_PATH.match(path) else []


def _project_copy_path(project: Path, plugin_source: Path, work: Path) -> Path:
    """Where the project root's copy lies in ``work``: so that the plugin directory
    sits two levels below uwsgi.h (deeper in the tree when it is less than two
    levels below the project root)."""
    depth = len(plugin_source.relative_to(project).parts)
    return work.joinpath("tree", *("plugins", "plugin")[: max(0, 2 - depth)])


def plugin_copy_path(project: Path, plugin_source: Path, work: Path) -> Path:
    """Where the plugin directory's copy lies in ``work``, the directory the build runs in."""
    return _project_copy_path(project, plugin_source, work) / plugin_source.relative_to(project)


def _prepare_tree(project: Path, plugin_source: Path, work: Path, kit_dir: Path | None, skip: Path) -> Path:
    """Lay out ``work``: a fresh copy of the project, uwsgi.h at ../../uwsgi.h from the plugin's copy."""
    tree = work / "tree"
    if tree.exists():  # a persistent build directory: outputs of the last build go
        shutil.rmtree(tree)
    project_copy = _project_copy_path(project, plugin_source, work)
    plugin_copy = plugin_copy_path(project, plugin_source, work)
    copy_project(project, project_copy, skip=skip.resolve())
    if kit_dir is not None:
        header = plugin_copy.parent.parent / "uwsgi.h"
        if header.exists() or header.is_symlink():
            log(f"  the project's {project / header.relative_to(project_copy)} gives way, in the build, to the uwsgi.h "
                "of the uwsgi built for (which the plugin must match)")
            header.unlink()
        header.symlink_to(kit_dir / "uwsgi.h")
        (plugin_copy / ".uwsgi_plugins_builder").symlink_to(kit_dir, target_is_directory=True)
    return plugin_copy


# uwsgiconfig.py's own progress lines, left out of the build log unless it is verbose.
CHATTER = re.compile(r"^(\*\*\* uWSGI building and linking plugin|build time: |\*\*\* \w+ plugin built and available|\[.*\] \S+_plugin\.so$)")


def _failure_message(plugin_source: Path, project: Path, failures: list[dict], output: str, verbose: bool) -> str:
    """The failing files first, each with all the compiler said and what it means,
    then the command (shortened unless the build is verbose)."""
    parts = []
    for failure in failures:
        command = (f"the command was: {failure['command']}" if verbose or "shown" not in failure else
                   f"the command was (shortened; -C build.verbose=true shows it whole): {failure['shown']}")
        parts.append(
            f"{failure['source']} failed to compile (exit status {failure['status']}) in {plugin_source}:\n"
            f"{failure['output'].rstrip()}{missing_header_hint(failure['output'], project)}\n\n{command}"
        )
    if parts:
        return "\n\n".join(parts)
    return (
        f"building the plugin in {plugin_source} failed; uwsgiconfig.py and the compiler said "
        f"(source paths are relative to that directory):\n{output.rstrip()}"
    ) + missing_header_hint(output, project)


def driver_env() -> dict[str, str]:
    """The environment of uwsgiplugin.py and uwsgiconfig.py: all of it, as under
    uwsgi --build-plugin (uWSGI's python plugin reads UWSGI_PYTHON_NOLIB), but
    the backend's own settings: the driver's come in its request."""
    return {key: value for key, value in os.environ.items() if not key.startswith("UWSGI_PLUGIN_BACKEND_")}


def _run_driver(request: DriverRequest, plugin_copy: Path, work: Path, env: dict[str, str]) -> dict:
    """Run the driver in the plugin copy on ``request`` (written into ``work``), with
    ``env`` for uwsgiconfig.py; return its result: the NAME, and the CFLAGS it compiled with."""
    result_file = Path(request.result)
    result_file.unlink(missing_ok=True)
    request_file = work / "request.json"
    request.write(str(request_file))
    with subprocess.Popen(
        [sys.executable, str(DRIVER), str(request_file)],
        cwd=plugin_copy,
        env={**driver_env(), **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        warmup.start()  # the wheel writer's imports, while the driver works
        try:
            output, _ = process.communicate()
        except BaseException:  # as subprocess.run does: no driver outlives the build
            process.kill()
            raise
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    if result.get("error"):
        raise BackendError(result["error"])
    if process.returncode != 0 or not result.get("name"):
        raise BackendError(_failure_message(Path(request.plugin_dir), Path(request.project_root),
                                            result.get("failures", []), output, request.verbose))
    commands = set(result.get("commands", []))  # printed by uwsgiconfig.py, Debian's at every verbosity
    for line in output.splitlines():
        if request.verbose or not (CHATTER.match(line) or line in commands):
            log(f"  {line}")
    return result


def _in_project(project: Path, header: str) -> Path | None:
    """A file of the project that ``#include "header"`` could have meant."""
    if header.startswith(("../", "/")):
        return None  # the build has the whole project: such a header lies outside it, or nowhere
    for directory, subdirs, files in os.walk(project):
        subdirs[:] = [d for d in subdirs if not d.startswith(".") and not _is_virtualenv(Path(directory, d))]
        candidate = Path(directory, header)
        if candidate.name in files and candidate.is_file():
            return candidate
    return None


def missing_header_hint(output: str, project: Path | None = None) -> str:
    """Name the package to install when a header uwsgi.h needs is missing; for a
    header of the ``project`` (or beside it), say what the build sees instead."""
    header = missing_header(output)
    if header is None:
        return ""
    if header in FEATURE_HEADERS:
        return system_header_hint(output)
    found = _in_project(project, header) if project else None
    if found is not None:
        return (
            f"\n\n{header} is a file of the project ({found}), but not on the include path: add its directory "
            "to CFLAGS in uwsgiplugin.py, relative to the plugin directory (e.g. CFLAGS = ['-I../common'])."
        )
    if project and header.startswith(("./", "../", "/")):
        return (
            f"\n\n{header} is not in the build, which compiles a copy of the project {project} (the directory "
            "holding pyproject.toml) and sees nothing beside it. Keep the headers a plugin includes inside the project."
        )
    if re.search(rf'#\s*include\s*<{re.escape(header)}>', output):
        return system_header_hint(output)
    where = f"the project {project}" if project else "the project"
    if re.search(rf'#\s*include\s*"{re.escape(header)}"', output):
        return (
            f'\n\n{header} is included with quotes, as a header of the project, but {where} has no such file '
            "(an sdist also leaves out what .gitignore ignores): add it, or fix the #include. "
            f"A library's header (<{header}>) comes with its development package."
        )
    return (f"\n\n{header} is neither in {where} nor installed: add it to the project if it is the project's, "
            "else install the development package that provides it.")


def literal_name(plugin_file: Path) -> str | None:
    """NAME when uwsgiplugin.py assigns it once, a plain string: read without running the file."""
    try:
        tree = ast.parse(plugin_file.read_bytes(), str(plugin_file))
    except (OSError, SyntaxError, ValueError):
        return None
    stores = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "NAME" and isinstance(node.ctx, ast.Store)]
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets == stores[:1] and len(stores) == 1:
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and C_IDENTIFIER.match(value.value):
                return value.value
    return None


def plugin_name(plugin_source: Path, work: Path, skip: Path, allow_outside: bool = False,
                project: Path | None = None, kit_dir: Callable[[], Path | None] = lambda: None) -> str:
    """The plugin's NAME, compiling nothing: read from uwsgiplugin.py when it is
    a plain assignment, else by running the file's check in the driver, with
    ``kit_dir()``'s uwsgiconfig.py importable (None: the file cannot import it)."""
    name = literal_name(plugin_source / "uwsgiplugin.py")
    if name is not None:
        return name
    project = project or plugin_source
    plugin_copy = _prepare_tree(project, plugin_source, work, None, skip)
    kit = kit_dir()
    request = DriverRequest(mode="check", plugin_dir=str(plugin_source), project_root=str(project),
                            result=str(work / "check.json"), uwsgiconfig=str(kit / "uwsgiconfig.py") if kit else None,
                            allow_outside=allow_outside)
    return _run_driver(request, plugin_copy, work, {})["name"]


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """The build directory ``root`` (``kept`` between builds, or temporary), how
    many compilers run at once, whether debug information is stripped, where
    symbol checks are remembered, and whether every compiler command is logged."""

    root: Path
    kept: bool
    jobs: int
    strip: bool
    cache: CacheDir
    verbose: bool = False
    allow_outside: bool = False
    project: Path | None = None  # the project root; None: the plugin directory is the project


def build_plugin(abi: TargetAbi, kit_dir: Path, plugin_source: Path, work: Path, options: BuildOptions, name: str,
                 link_flags: list[str], pyuwsgi: PyuwsgiModule | None) -> BuiltPlugin:
    """Build plugin ``name`` in ``plugin_source`` for ``abi``'s uwsgi (which runs
    the ``pyuwsgi`` module, for a pyuwsgi build) in ``work``, with ``link_flags``
    added to the link."""
    kit = abi.kit
    log(f"building plugin {name} from {plugin_source} for {abi.summary}")
    project = options.project or plugin_source
    plugin_copy = _prepare_tree(project, plugin_source, work, kit_dir, options.root)
    prefix_map = reproducible_flags(work)
    env = {
        "UWSGI_PLUGINS_BUILDER_CFLAGS": kit.cflags,
        # uwsgiconfig.py appends $CFLAGS and $LDFLAGS, split on white space, to its gcc line.
        "CFLAGS": " ".join([*os.environ.get("CFLAGS", "").split(), *prefix_map]),
        "LDFLAGS": " ".join([*os.environ.get("LDFLAGS", "").split(), *link_flags]),
    }
    request = DriverRequest(mode="build", plugin_dir=str(plugin_source), project_root=str(project),
                            result=str(work / "check.json"), uwsgiconfig=str(kit_dir / "uwsgiconfig.py"),
                            uwsgi_version=kit.version, allow_outside=options.allow_outside, verbose=options.verbose,
                            jobs=options.jobs, objects_dir=str(work / "objects"), kept=options.kept)
    result = _run_driver(request, plugin_copy, work, env)
    if result["name"] != name:
        raise BackendError(f"{plugin_source / 'uwsgiplugin.py'} gave NAME {name!r} first and {result['name']!r} when building; "
                           "NAME must not change")
    if result.get("compile_words") is not None:
        check_compile_flags(abi, kit_dir, result["compile_words"], name, plugin_copy, project)
    shared_object = plugin_copy / f"{name}_plugin.so"
    if not shared_object.is_file():
        raise BackendError(f"building the plugin in {plugin_source} wrote no {shared_object.name}")
    from .symbols import check_symbols  # late: pyelftools is imported while compiling (wheel.py)

    check_symbols(shared_object, name, kit, pyuwsgi, options.cache, abi.variant)
    if options.strip:
        strip_debug_info(shared_object)
    return BuiltPlugin(name=name, shared_object=shared_object)


def strip_debug_info(shared_object: Path) -> None:
    strip = shutil.which("strip")
    if strip is None:
        raise BackendError("strip = true needs the strip program (binutils); install binutils or set strip = false")
    result = subprocess.run([strip, "--strip-debug", str(shared_object)], capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        raise BackendError(f"strip --strip-debug {shared_object.name} failed: {result.stderr.strip()}; set strip = false")
