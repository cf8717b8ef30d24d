"""Which macros of a uwsgi's CFLAGS change what a plugin sees of uWSGI,
learned from the compiler.

uwsgi.h is compiled with a binary's CFLAGS (read as gcc reads them:
runtime.read_flags) and debug information, and the layout of every struct,
union, enum and typedef it declares is read back from the DWARF. Each
candidate macro is then toggled and the layouts compared: each macro the
CFLAGS define is undone, each macro uwsgi.h tests but the CFLAGS leave alone
is added. A candidate is layout-relevant when a type both compiles share
changes; one that only adds or removes declarations (functions, or types
nothing else uses) is not: a plugin that uses what is missing fails to load,
and the build-time symbol check reports it first. The candidates found
neutral are kept too, and so is every macro the preprocessor consulted (gcc
-dU): a loading uwsgi that defines one the build never tried does not fit it
(runtime.abi_lines). Reserved names (__linux__, _GNU_SOURCE) and options
(-fpack-struct, -m32 ...) are never candidates: every one not known to be
neutral counts, since one may change nothing alone and much with another.

A toggle whose compile fails (a feature header not installed) counts as
relevant: that is the safe side, and a macro the binary does not define adds
no line to its key either way.

That is the full method (learn_fully), kept as the reference the tests hold
``learn`` to. ``learn`` gives its answer at a fraction of the cost: the
toggled texts of most candidates come from one instrumented preprocessing
(target_uwsgi.layout_trace), the others' from gcc -E each (half a compile);
what a toggled text and the base's prove (target_uwsgi.layout_text: the
same tokens, other member names in a struct of uwsgi.h, only prototypes
taken away or added, the last with a compile without debug information) settles most
candidates; the rest are compiled as above, and the base with them, only
when one is.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..cache import CacheDir, write_atomically
from ..errors import BackendError, log
from ..runtime_api import read_flags, reserved_macro, shell_words, tested_macros
from . import layout_text, layout_trace
from .compiler import run_compiler, system_header_hint

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

LAYOUT_FORMAT = "layout-4"  # bump when what is compared changes: old cache entries are then ignored
TU = '#include "uwsgi.h"\n'
# Linked (-shared -nostdlib; the text has no code), not -c: the linker applies the debug
# sections' relocations, which pyelftools does 4-5x slower than reading the types.
LINK_FLAGS = ["-shared", "-nostdlib"]
DEBUG_FLAGS = ["-g", "-gno-record-gcc-switches", "-fno-eliminate-unused-debug-types", *LINK_FLAGS]
# Programs that run another compiler: their own file does not identify it.
COMPILER_WRAPPERS = {"ccache", "sccache", "distcc", "icecc", "buildcache"}
# Sections whose bytes hold every type the compile described: equal bytes, equal layouts.
DEBUG_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str")
SIZES = "#include <time.h>\n#include <sys/types.h>\nchar time_t_size[sizeof(time_t)];\nchar off_t_size[sizeof(off_t)];\n"


@dataclasses.dataclass(frozen=True)
class LearnedAbi:
    platform: str  # "machine=x86_64 class=64-le libc=glibc time_t=8 off_t=8"
    layout_macros: list[str]  # macros whose toggle changes a layout, sorted
    neutral_macros: dict[str, str | None]  # tried and found neutral: the value the CFLAGS give (None: undefined)
    consulted: list[str]  # every macro the preprocessor looked at, compiling uwsgi.h
    headers: list[str]  # the names of the headers that compile read (uwsgi.h, stdio.h, ssl.h ...)

    def record(self) -> dict[str, object]:
        """What runtime.abi_lines reads, as build.json carries it."""
        return {"layout_macros": self.layout_macros, "neutral_macros": self.neutral_macros, "consulted": self.consulted}


def compile_source(compiler: list[str], flags: list[str], kit_dir: Path, source: str, out: Path, link: bool = True) -> str | None:
    """Compile ``source`` (beside uwsgi.h) to ``out``; the compiler's complaint, or None.
    ``link=False`` stops at the object (-c), for flags that name libraries to link."""
    src = out.with_suffix(".c")
    src.write_text(source)
    debug = DEBUG_FLAGS if link else [*DEBUG_FLAGS[:3], "-c"]
    result = run_compiler([*compiler, *flags, f"-I{kit_dir}", *debug, str(src), "-o", str(out)], cwd=kit_dir)
    return None if result.returncode == 0 else (result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}")


def _preprocess(compiler: list[str], flags: list[str], kit_dir: Path, source: Path) -> bytes | None:
    """uwsgi.h after the preprocessor, line markers kept (they tell uwsgi.h's text
    from other files'); None when that fails."""
    result = run_compiler([*compiler, *flags, f"-I{kit_dir}", "-E", str(source)], cwd=kit_dir)
    return result.stdout if result.returncode == 0 else None


def _elf_file(stream: BinaryIO) -> ELFFile:
    from elftools.elf.elffile import ELFFile  # late: a build whose layouts are cached reads no ELF here

    return ELFFile(stream)


def debug_bytes(obj: Path) -> bytes:
    with obj.open("rb") as f:
        elf = _elf_file(f)
        return b"\0".join((elf.get_section_by_name(name).data() if elf.get_section_by_name(name) else b"") for name in DEBUG_SECTIONS)


def _describe(die, depth: int = 0) -> str:
    """A type as text: named types by kind, name and size; anonymous aggregates inline."""
    if die is None:
        return "void"
    tag = die.tag.replace("DW_TAG_", "")
    name = die.attributes.get("DW_AT_name")
    size = die.attributes.get("DW_AT_byte_size")
    size_text = f"({size.value})" if size else ""
    if tag in ("pointer_type", "const_type", "volatile_type", "restrict_type", "atomic_type"):
        # Behind a pointer only the target's name matters (its layout is compared on its own).
        inner = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes else None
        return f"{tag}({_describe(inner, depth + 1) if tag != 'pointer_type' else _name(inner)})"
    if tag == "array_type":
        bounds = [str(c.attributes["DW_AT_upper_bound"].value) if "DW_AT_upper_bound" in c.attributes else "?"
                  for c in die.iter_children() if c.tag == "DW_TAG_subrange_type"]
        return f"[{','.join(bounds)}]{_describe(die.get_DIE_from_attribute('DW_AT_type'), depth + 1)}"
    if tag in ("structure_type", "union_type", "enumeration_type") and (name is None) and depth < 8:
        return _layout(die, depth + 1)
    if tag == "subroutine_type":
        return "function"
    return f"{tag} {name.value.decode() if name else '?'}{size_text}"


def _name(die) -> str:
    if die is None:
        return "void"
    name = die.attributes.get("DW_AT_name")
    return f"{die.tag.replace('DW_TAG_', '')} {name.value.decode() if name else '?'}"


def _layout(die, depth: int = 0) -> str:
    """A struct, union or enum: size and members (name, offset, bits, type) or enumerators."""
    size = die.attributes.get("DW_AT_byte_size")
    parts = [die.tag.replace("DW_TAG_", ""), f"size={size.value if size else 'decl'}"]
    for child in die.iter_children():
        attrs = child.attributes
        name = attrs["DW_AT_name"].value.decode() if "DW_AT_name" in attrs else ""
        if child.tag == "DW_TAG_enumerator":
            parts.append(f"{name}={attrs['DW_AT_const_value'].value}")
        elif child.tag == "DW_TAG_member":
            where = [str(attrs[a].value) for a in ("DW_AT_data_member_location", "DW_AT_bit_size",
                                                     "DW_AT_data_bit_offset", "DW_AT_bit_offset") if a in attrs]
            member_type = child.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in attrs else None
            parts.append(f"{name}@{':'.join(where)} {_describe(member_type, depth)}")
    return "{" + "; ".join(parts) + "}"


def read_layouts(obj: Path) -> dict[str, str]:
    """``{"struct uwsgi_server": "{...}", "typedef X": "..."}`` for every type declared in uwsgi.h."""
    layouts: dict[str, str] = {}
    with obj.open("rb") as f:
        dwarf = _elf_file(f).get_dwarf_info()
        for unit in dwarf.iter_CUs():
            files = _file_names(dwarf, unit)
            for die in unit.get_top_DIE().iter_children():
                decl_file = die.attributes.get("DW_AT_decl_file")
                if decl_file is None or files.get(decl_file.value) != "uwsgi.h":
                    continue
                tag = die.tag.replace("DW_TAG_", "")
                name = die.attributes.get("DW_AT_name")
                if tag == "typedef":
                    target = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes else None
                    layouts[f"typedef {name.value.decode()}"] = _describe(target)
                elif tag in ("structure_type", "union_type", "enumeration_type"):
                    if name is not None:
                        layouts[f"{tag} {name.value.decode()}"] = _layout(die)
                    elif tag == "enumeration_type":  # an anonymous enum: known by its first enumerator
                        first = next((c for c in die.iter_children() if c.tag == "DW_TAG_enumerator"), None)
                        if first is not None:
                            layouts[f"enum {first.attributes['DW_AT_name'].value.decode()}"] = _layout(die)
    return layouts


def _file_names(dwarf, unit) -> dict[int, str]:
    program = dwarf.line_program_for_CU(unit)
    if program is None:
        return {}
    entries = program["file_entry"]
    # DWARF 5 numbers files from 0, DWARF 4 from 1.
    first = 0 if program["version"] >= 5 else 1
    return {index + first: os.path.basename(entry.name.decode()) for index, entry in enumerate(entries)}


def differs(base: dict[str, str], other: dict[str, str]) -> list[str]:
    """The types both compiles declare whose layouts differ."""
    return sorted(name for name in base.keys() & other.keys() if base[name] != other[name])


def candidate_toggles(cflags: str, dot_h: bytes) -> dict[str, list[str]]:
    """candidate -> the CFLAGS' words with it toggled: ``-DX`` for each macro
    the CFLAGS define (undone by ``-Wp,-UX``: gcc's driver passes -Wp, options
    after every plain -D and -U, so it wins whatever the spelling), ``+DX`` for
    each macro uwsgi.h tests that they leave alone (``-Wp,-DX``). Reserved
    names (__linux__, _GNU_SOURCE) are no candidates: they always count."""
    words = shell_words(cflags)
    defines = read_flags(cflags)[0]
    toggles = {f"-D{macro}": [*words, f"-Wp,-U{macro}"] for macro in sorted(defines)
               if defines[macro] is not None and not reserved_macro(macro)}
    toggles.update({f"+D{macro}": [*words, f"-Wp,-D{macro}"] for macro in sorted(tested_macros(dot_h) - defines.keys())
                    if not reserved_macro(macro)})
    return toggles


def _sizes(compiler: list[str], flags: list[str], kit_dir: Path, work: Path) -> str:
    obj = work / "sizes.o"
    error = compile_source(compiler, flags, kit_dir, SIZES, obj)
    if error:
        raise BackendError(f"cannot compile a test of time_t and off_t with the uwsgi CFLAGS:\n{error}")
    with obj.open("rb") as f:
        elf = _elf_file(f)
        symbols = {s.name: s["st_size"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
    return f"time_t={symbols['time_t_size']} off_t={symbols['off_t_size']}"


def compiler_identity(compiler: list[str]) -> str:
    """The compiler program's resolved path, size and mtime, as ccache checks a
    compiler by default (compiler_check=mtime), without running it on every
    build; its --version answer when it is a wrapper (ccache, distcc) or a
    script, whose own file says nothing of the compiler behind it."""
    found = shutil.which(compiler[0])
    program = os.path.realpath(found) if found else None
    if program and os.path.basename(program) not in COMPILER_WRAPPERS:
        with open(program, "rb") as f:
            if f.read(4) == b"\x7fELF":
                status = os.fstat(f.fileno())
                return f"{program} {status.st_size} {status.st_mtime_ns}"
    return run_compiler([*compiler, "--version"]).stdout.decode(errors="replace")  # fails with the no-compiler error


def _cache_file(dot_h: bytes, cflags: str, compiler: list[str], cache: CacheDir) -> Path:
    identity = compiler_identity(compiler)
    digest = hashlib.sha256("\0".join([LAYOUT_FORMAT, hashlib.sha256(dot_h).hexdigest(), cflags, *compiler, identity])
                            .encode()).hexdigest()[:24]
    return cache.path() / "layouts" / f"{digest}.json"


def learn(elf_part: str, dot_h: bytes, cflags: str, kit_dir: Path, compiler: list[str], cache: CacheDir,
          announce: bool = True) -> LearnedAbi:
    """The layout-relevant macros and the platform line for a binary of ELF
    platform ``elf_part`` with this uwsgi.h and these CFLAGS (kept in ``cache``);
    ``announce``: one log line before learning (abi-variants says it once for all)."""
    cached = _cache_file(dot_h, cflags, compiler, cache)
    try:
        entry = json.loads(cached.read_text())
        return LearnedAbi(platform=f"{elf_part} {entry['sizes']}", **entry["fields"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if announce:
        log(f"  first build for this uwsgi.h and CFLAGS: learning which of their macros change its layouts "
            f"(once; cached afterwards in {cached.parent})")
    learned, entry = _learn_uncached(elf_part, dot_h, cflags, kit_dir, compiler, by_text=True)
    _store(cached, entry)
    return learned


def learn_fully(elf_part: str, dot_h: bytes, cflags: str, kit_dir: Path, compiler: list[str]) -> LearnedAbi:
    """What ``learn`` answers, by the full method (not cached): every toggle whose
    preprocessed text differs is compiled and its layouts compared. The tests hold
    ``learn`` to it."""
    return _learn_uncached(elf_part, dot_h, cflags, kit_dir, compiler, by_text=False)[0]


def _learn_uncached(elf_part: str, dot_h: bytes, cflags: str, kit_dir: Path, compiler: list[str],
                    by_text: bool) -> tuple[LearnedAbi, dict]:
    with tempfile.TemporaryDirectory(prefix="uwsgi-abi-") as tmp, \
            concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool, \
            concurrent.futures.ThreadPoolExecutor(max_workers=1) as aside:
        work = Path(tmp)
        flags = shell_words(cflags)
        sizes = pool.submit(_sizes, compiler, flags, kit_dir, work)
        fields, why = _learn(compiler, flags, cflags, dot_h, kit_dir, work, pool, aside, by_text)
        entry = {"fields": fields, "sizes": sizes.result(), "why": why}
    return LearnedAbi(platform=f"{elf_part} {entry['sizes']}", **fields), entry


UNDEFINED_IN_IF = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)" is not defined')


def _consulted(compiler: list[str], flags: list[str], kit_dir: Path,
               source: Path) -> tuple[list[str], list[str], set[str]]:
    """Every macro the preprocessor tested or expanded, compiling uwsgi.h (gcc -dU);
    the paths of the files it read (gcc -MD); and the macros it first saw undefined."""
    deps = source.with_suffix(".d")
    # -dU does not report `#if X` of an undefined X; -Wundef (in system headers too) does.
    result = run_compiler([*compiler, *flags, f"-I{kit_dir}", "-E", "-P", "-dU", "-Wundef", "-Wsystem-headers",
                           "-Wno-error", "-MD", "-MF", str(deps), str(source)], cwd=kit_dir)
    undefined = set(UNDEFINED_IN_IF.findall(result.stderr.decode(errors="replace")))
    names = set(undefined)
    for line in result.stdout.decode(errors="replace").splitlines():
        if line.startswith(("#define ", "#undef ")):
            name = line.split(None, 2)[1].split("(", 1)[0]
            if line.startswith("#undef ") and name not in names:
                undefined.add(name)
            names.add(name)
    try:
        listed = deps.read_text(errors="replace").replace("\\\n", " ").partition(":")[2].split()
    except OSError:
        listed = []
    return sorted(names), [path for path in listed if path != str(source)], undefined


def _header_names(paths: list[str]) -> list[str]:
    """The names of the headers a compile read (uwsgi.h, stdio.h, ssl.h ...): a file of a
    plugin's project with one of those names could take a header's place in the plugin's compile."""
    return sorted({os.path.basename(path) for path in paths})


class _Base:
    """The base compile and its layouts, made once and only when a toggle is compiled
    (on a worker of its own, beside that toggle's compile): a toggle its text settles
    needs neither."""

    def __init__(self, compiler: list[str], flags: list[str], kit_dir: Path, obj: Path,
                 aside: concurrent.futures.Executor) -> None:
        self.compiler, self.flags, self.kit_dir, self.obj, self.aside = compiler, flags, kit_dir, obj, aside
        self._lock = threading.Lock()
        self._bytes: concurrent.futures.Future[bytes] | None = None
        self._layouts: dict[str, str] | None = None

    def start(self) -> None:
        with self._lock:
            if self._bytes is None:
                self._bytes = self.aside.submit(self._compile)

    def _compile(self) -> bytes:
        error = compile_source(self.compiler, self.flags, self.kit_dir, TU, self.obj)
        if error:
            raise uncompilable(error)
        return debug_bytes(self.obj)

    def changed(self, obj: Path) -> list[str]:
        """The types of uwsgi.h that ``obj`` lays out otherwise."""
        self.start()
        assert self._bytes is not None
        if debug_bytes(obj) == self._bytes.result():
            return []
        with self._lock:
            if self._layouts is None:
                self._layouts = read_layouts(self.obj)
        return differs(self._layouts, read_layouts(obj))


def uncompilable(error: str) -> BackendError:
    return BackendError(f"cannot compile uwsgi.h with the binary's CFLAGS to learn its layouts:\n{error}"
                        + system_header_hint(error))


def _learn(compiler: list[str], flags: list[str], cflags: str, dot_h: bytes, kit_dir: Path, work: Path,
           pool: concurrent.futures.Executor, aside: concurrent.futures.Executor,
           by_text: bool) -> tuple[dict, dict[str, list[str]]]:
    """LearnedAbi's fields but the platform, and for each relevant candidate the
    types it changes (or why it counts)."""
    source = work / "tu.c"
    source.write_text(TU)
    base = _Base(compiler, flags, kit_dir, work / "base.o", aside)
    consulted_run = pool.submit(_consulted, compiler, flags, kit_dir, source)
    base_text = _preprocess(compiler, flags, kit_dir, source)
    if base_text is None:
        raise uncompilable(compile_source(compiler, flags, kit_dir, TU, work / "base.o")
                           or "the preprocessor failed, the compiler did not")
    # Whether uwsgi.h compiles with the CFLAGS at all: its text compiled and linked as the base
    # compile is, but without debug information (its cost): code generation and the assembler
    # refuse what a syntax-only compile passes (an asm, -Werror=return-type), and the full
    # method's toggles fail then too.
    base_error = pool.submit(_text_compile_error, compiler, flags, kit_dir, base_text, work / "base.i")
    base_split = layout_text.split(base_text) if by_text and layout_text.readable(flags) else None
    consulted, read, undefined_first = consulted_run.result()
    consulted_set = set(consulted)
    toggles = candidate_toggles(cflags, dot_h)
    defines = read_flags(cflags)[0]
    traced: dict[str, bytes] = {}
    if base_split is not None:  # the texts one instrumented run gives
        untried = {candidate: (candidate[2:], defines.get(candidate[2:])) for candidate in toggles
                   if candidate.startswith("+D") or candidate[2:] in consulted_set}
        traced = layout_trace.toggled_texts(compiler, flags, kit_dir, work, dot_h, untried,
                                            [path for path in read if os.path.basename(path) != "uwsgi.h"],
                                            base_text, base_split, undefined_first)

    def settle(item: tuple[int, tuple[str, list[str]]]) -> list[str] | None:
        """Why the candidate counts; None when it is neutral."""
        index, (candidate, toggled) = item
        # A macro the CFLAGS define that the preprocessor never looked at cannot change its
        # text when it alone is undone (one it never saw undefined may still be tested by
        # value: those are preprocessed).
        if candidate.startswith("-D") and candidate[2:] not in consulted_set:
            return None
        text = traced.get(candidate) or _preprocess(compiler, toggled, kit_dir, source)
        if text == base_text:
            return None
        if base_split is not None:  # the text rules; learn_fully compiles instead
            if text is None:  # the compile would fail there too
                return ["(the toggled preprocessing failed)"]
            found = layout_text.verdict(base_split, layout_text.split(text))
            if found == layout_text.NEUTRAL:
                return None
            if found == layout_text.RELEVANT:
                return ["(a struct of uwsgi.h has other members)"]
            if found == layout_text.CHECK:
                # Compiled and linked as the full method's toggle, without debug information: an
                # attribute only code generation reads (alias) fails there, not in a syntax check.
                if _text_compile_error(compiler, flags, kit_dir, text, work / f"toggle-{index}.i") is None:
                    return None
                return ["(the toggled text does not compile)"]
        obj = work / f"toggle-{index}.o"
        base.start()
        error = compile_source(compiler, toggled, kit_dir, TU, obj)
        return ["(the toggled compile failed)"] if error else (base.changed(obj) or None)

    # The candidates the trace gave no text go first: they are preprocessed, often compiled,
    # and the last of them would otherwise keep the other worker waiting at the end.
    items = sorted(enumerate(toggles.items()), key=lambda item: item[1][0] in traced)
    reasons = list(pool.map(settle, items))
    error = base_error.result()
    if error:
        raise uncompilable(error)
    why = {candidate: reason for (_, (candidate, _)), reason in zip(items, reasons) if reason is not None}
    fields = {
        "layout_macros": sorted({macro[2:] for macro in toggles if macro in why}),
        "neutral_macros": {macro[2:]: defines.get(macro[2:]) for macro in toggles if macro not in why},
        "consulted": consulted,
        "headers": _header_names(read),
    }
    return fields, why


def _text_compile_error(compiler: list[str], flags: list[str], kit_dir: Path, text: bytes, path: Path) -> str | None:
    """What compiling a preprocessed text says, linked as the base compile is but without
    debug information (its cost); None when it compiles. ``-x cpp-output`` after the
    CFLAGS: their own -x c would preprocess the text again (and -include a header twice)."""
    path.write_bytes(text)
    result = run_compiler([*compiler, *flags, "-x", "cpp-output", *LINK_FLAGS, "-o", str(path.with_suffix(".so")),
                           str(path)], cwd=kit_dir)
    return None if result.returncode == 0 else (result.stderr.decode(errors="replace").strip()
                                                or f"exit status {result.returncode}")


def _store(path: Path, entry: dict) -> None:
    """Written aside, then renamed; a cache that cannot be written is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(entry))
    except OSError:
        pass
