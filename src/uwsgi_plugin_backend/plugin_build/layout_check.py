"""The plugin is compiled with the layouts of its uwsgi: the flags it is really
compiled with (the binary's, CFLAGS in uwsgiplugin.py, $CFLAGS) must give every
type of uwsgi.h the layout the binary has, or the build stops."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import BackendError
from ..runtime_api import flag_text, neutral_flag, read_flags, shell_words
from ..target_uwsgi import compiler as c_compiler
from ..target_uwsgi.abi import TargetAbi
from ..target_uwsgi.layouts import TU, compile_source, debug_bytes, differs, read_layouts


def _changes(abi: TargetAbi, compiled: str) -> list[tuple[str, list[str]]]:
    """What the plugin's compile adds to ``kit``'s CFLAGS that could change a
    layout: each macro uwsgi.h's compile consults that it defines otherwise (or
    undefines), and each option not known or learned to be neutral; with the
    CFLAGS' words to compile with it alone."""
    base_words = shell_words(abi.kit.cflags)
    base_defines, base_flags = read_flags(abi.kit.cflags)
    defines, flags = read_flags(compiled)
    consulted = set(abi.learned.consulted)
    changes = []
    for name in sorted((defines.keys() | base_defines.keys()) & consulted):
        if defines.get(name) != base_defines.get(name):
            word = f"-U{name}" if name not in defines else f"-D{name}={defines[name]}"
            changes.append((word, [*base_words, f"-Wp,{word}"]))
    known = {flag_text(flag) for flag in base_flags} | set(abi.learned.neutral_flags)
    for flag in flags:
        if not neutral_flag(flag) and flag_text(flag) not in known:
            changes.append((flag_text(flag), [*base_words, *([flag_text(flag)] if flag[0] == "-Wp," else [flag[1], *([flag[2]] if flag[2] is not None else [])])]))
    return changes


def check_compile_flags(abi: TargetAbi, kit_dir: Path, compiled: str, plugin: str) -> None:
    """Refuse a plugin compiled with flags (its uwsgiplugin.py's CFLAGS, $CFLAGS)
    that give a type of uwsgi.h another layout than ``kit``'s uwsgi has: it would
    read uWSGI's structs wrongly, and its key would still say it fits."""
    changes = _changes(abi, compiled)
    kit = abi.kit
    if not changes:
        return
    compiler = c_compiler.compiler()
    with tempfile.TemporaryDirectory(prefix="uwsgi-abi-") as tmp:
        work = Path(tmp)
        base = work / "base.o"
        if compile_source(compiler, shell_words(kit.cflags), kit_dir, TU, base):
            return  # the learning compiled it; a compile that fails here says nothing of the plugin
        base_bytes = debug_bytes(base)
        for index, (change, words) in enumerate(changes):
            obj = work / f"change-{index}.o"
            error = compile_source(compiler, words, kit_dir, TU, obj)
            if not error and debug_bytes(obj) == base_bytes:
                continue
            changed = ["(uwsgi.h does not compile with it)"] if error else differs(read_layouts(base), read_layouts(obj))
            changed = [name.replace("structure_type", "struct").replace("union_type", "union").replace("enumeration_type", "enum") for name in changed]
            if not changed:
                continue
            where = "$CFLAGS" if change in shell_words(os.environ.get("CFLAGS", "")) else "CFLAGS in uwsgiplugin.py"
            raise BackendError(
                f"plugin {plugin} is compiled with {change} (from {where}), which changes uwsgi.h's {changed[0]}: "
                f"the plugin would read {kit.binary}'s structs wrongly and could crash it. Remove {change}, "
                "or build for a uwsgi compiled with it"
            )
