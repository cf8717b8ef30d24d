"""The plugin is compiled with the layouts of its uwsgi: every word its compile
gets (the compiler command, the binary's CFLAGS, CFLAGS in uwsgiplugin.py,
$CFLAGS, and LDFLAGS and LIBS, which a lone source's one gcc line compiles
with, all as the shell expands them) must give every type of uwsgi.h the
layout the binary has, and the uwsgi.h it finds must be the binary's; or the
build stops with one line."""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from ..errors import BackendError
from ..runtime_api import flag_text, neutral_flag, read_flags, shell_words
from ..target_uwsgi import compiler as c_compiler
from ..target_uwsgi.abi import TargetAbi
from ..target_uwsgi.layouts import TU, compile_source, debug_bytes, differs, read_layouts

DEFAULT = object()  # a macro the command line leaves at the compiler's default


def _options(words: list[str]) -> list[str]:
    """``words`` without the compiler command in front (gcc, ccache gcc)."""
    index = 0
    while index < len(words) and not words[index].startswith("-"):
        index += 1
    return words[index:]


def _changes(abi: TargetAbi, words: list[str]) -> list[tuple[str, list[str]]]:
    """What the plugin's compile words change from the binary's CFLAGS that could
    change a layout, each with the binary's words and that change alone: a
    macro uwsgi.h's compile consults, defined otherwise or undone; the options
    not known to be neutral, when they are not the binary's, in its order."""
    base_words = shell_words(abi.kit.cflags)
    base_defines, base_flags = read_flags(abi.kit.cflags)
    defines, flags = read_flags(" ".join(shlex.quote(word) for word in words))
    changes = []
    for name in sorted((defines.keys() | base_defines.keys()) & set(abi.learned.consulted)):
        if defines.get(name, DEFAULT) != base_defines.get(name, DEFAULT):
            value = defines.get(name, DEFAULT)
            word = f"-D{name}={value}" if isinstance(value, str) else f"-U{name}"
            changes.append((word, [*base_words, f"-Wp,{word}"]))
    counted = [flag_text(flag) for flag in flags if not neutral_flag(flag)]
    if counted != [flag_text(flag) for flag in base_flags if not neutral_flag(flag)]:
        changes += [(option, [*base_words, *shell_words(option)]) for option in dict.fromkeys(counted)]
    return changes


def _shadowing_headers(plugin_copy: Path, abi: TargetAbi) -> list[Path]:
    """Files of the build's copy of the project named like a header uwsgi.h's
    compile reads (uwsgi.h itself other than the binary's, termios.h, ssl.h ...):
    through -I. or the plugin's -I, one could take that header's place."""
    names = set(abi.learned.headers)
    found = []
    for directory, subdirs, files in os.walk(plugin_copy.parent.parent):
        subdirs[:] = [d for d in subdirs if d != ".uwsgi_plugins_builder"]
        for name in names.intersection(files):
            path = Path(directory, name)
            if not (name == "uwsgi.h" and path.read_bytes() == abi.kit.dot_h):
                found.append(path)
    return found


def check_compile_flags(abi: TargetAbi, kit_dir: Path, words: list[str], plugin: str, plugin_copy: Path, project: Path) -> None:
    """Refuse a plugin whose compile gives a type of uwsgi.h another layout than
    ``abi``'s uwsgi has, or finds another uwsgi.h: it would read uWSGI's structs
    wrongly while its key says it fits."""
    words = _options(words)
    changes = _changes(abi, words)
    shadows = _shadowing_headers(plugin_copy, abi)
    if not changes and not shadows:
        return
    compiler = c_compiler.compiler_program()
    with tempfile.TemporaryDirectory(prefix="uwsgi-abi-") as tmp:
        work = Path(tmp)
        base = work / "base.o"
        if compile_source(compiler, shell_words(abi.kit.cflags), kit_dir, TU, base):
            return  # learning compiled it; a compile that fails here says nothing of the plugin
        base_layouts = read_layouts(base)
        # As the plugin is compiled: in its directory, with all its words, so its includes resolve alike.
        probe = plugin_copy / ".uwsgi_layout_check.o"
        error = compile_source(compiler, words, plugin_copy, '#include "uwsgi.h"\n', probe, link=False)
        changed = ["(uwsgi.h does not compile with them)"] if error else differs(base_layouts, read_layouts(probe))
        for path in (probe, probe.with_suffix(".c")):
            path.unlink(missing_ok=True)
        if not changed:
            return
        first = _pretty(changed[0])
        if shadows:
            shown = ", ".join(os.path.relpath(path, plugin_copy) for path in shadows)  # as seen from the plugin directory
            raise BackendError(f"plugin {plugin} would be compiled with headers of the project in the place of uwsgi.h's own "
                               f"({shown}), which give {first} another layout than {abi.kit.binary} has: rename or remove "
                               f"them (the build puts the binary's uwsgi.h where #include \"uwsgi.h\" and <uwsgi.h> find it; "
                               f"project {project})")
        for index, (change, alone) in enumerate(changes):
            obj = work / f"change-{index}.o"
            failed = compile_source(compiler, alone, kit_dir, TU, obj)
            if failed or (debug_bytes(obj) != debug_bytes(base) and differs(base_layouts, read_layouts(obj))):
                raise BackendError(
                    f"plugin {plugin} is compiled with {change} (from {_where(change)}), which changes uwsgi.h's {first}: "
                    f"the plugin would read {abi.kit.binary}'s structs wrongly and could crash it. Remove {change}, "
                    "or build for a uwsgi compiled with it"
                )
        raise BackendError(f"plugin {plugin} is compiled with flags that together change uwsgi.h's {first} "
                           f"({' '.join(change for change, _ in changes)}): the plugin would read {abi.kit.binary}'s "
                           "structs wrongly and could crash it; compile it with the binary's own flags")


def _pretty(type_name: str) -> str:
    return type_name.replace("structure_type", "struct").replace("union_type", "union").replace("enumeration_type", "enum")


def _where(change: str) -> str:
    """Where a change most likely came from, for the message."""
    for variable in ("CFLAGS", "CPPFLAGS", "LDFLAGS", "CC"):
        if change in shell_words(os.environ.get(variable, "")) or f"-Wp,{change}" in shell_words(os.environ.get(variable, "")):
            return f"${variable}"
    return "CFLAGS, LDFLAGS or LIBS in uwsgiplugin.py"
