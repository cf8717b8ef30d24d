"""Which libraries the dynamic loader brings into a uwsgi process, found as
the loader finds them.

A plugin's undefined symbols are resolved against every object in the
process: uwsgi, the libraries it needs, the libraries those need, and so on
(pip's uWSGI built with libxml2 reaches libstdc++ through libxml2 ->
libicuuc -> libstdc++). The loader loads them breadth first; each needed name
is looked up (glibc's ld.so, ``man ld.so``) in the DT_RPATH of the object
that needs it and of the objects that loaded that one, up to the executable
(only when the object has no DT_RUNPATH), then ``$LD_LIBRARY_PATH``, then the
object's DT_RUNPATH, then the loader's cache (/etc/ld.so.cache, as
``ldconfig -p`` lists it), then the default directories. A name with a slash
is a path. A name already loaded (by SONAME or by the name it was asked for)
is not looked up again. A file for another machine is passed over.

musl's loader has no cache: ``$LD_LIBRARY_PATH``, then the RPATH and RUNPATH
of the needing object and its loaders, then /etc/ld-musl-ARCH.path (else
/lib:/usr/local/lib:/usr/lib).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import struct
import subprocess
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

CACHE_FILE = "/etc/ld.so.cache"
CACHE_MAGIC_NEW = b"glibc-ld.so.cache1.1"
CACHE_MAGIC_OLD = b"ld.so-1.7.0"

# e_machine -> Debian's multiarch triplet, for the default directories of a 64-bit or 32-bit glibc.
TRIPLETS = {
    62: "x86_64-linux-gnu", 3: "i386-linux-gnu", 183: "aarch64-linux-gnu", 40: "arm-linux-gnueabihf",
    21: "powerpc64le-linux-gnu", 22: "s390x-linux-gnu", 243: "riscv64-linux-gnu", 258: "loongarch64-linux-gnu",
}
# musl's arch names (ld-musl-ARCH.so.1, /etc/ld-musl-ARCH.path).
MUSL_ARCHES = {62: "x86_64", 3: "i386", 183: "aarch64", 40: "armhf", 21: "powerpc64le", 22: "s390x", 243: "riscv64"}


class DynamicObject(Protocol):
    """What the search reads of an ELF file (symbol_check.ElfSymbols has it)."""

    path: Path
    needed: list[str]
    soname: str | None
    rpath: list[str]  # $ORIGIN expanded
    runpath: list[str] | None  # None: no DT_RUNPATH at all
    nodeflib: bool  # DF_1_NODEFLIB: no cache, no default directories
    machine: tuple[int, int]  # e_machine, ELF class


@dataclasses.dataclass
class Loaded:
    """One object in the process, and the objects that loaded it (nearest first)."""

    elf: DynamicObject
    loaders: list[DynamicObject]


@dataclasses.dataclass(frozen=True)
class Unresolved:
    name: str
    needed_by: Path


def elf_machine(path: Path) -> tuple[int, int] | None:
    """(e_machine, ELF class) of an ELF file; None when it is not one."""
    try:
        with path.open("rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)[0], head[4]


def expand_origin(entries: str, origin: str) -> list[str]:
    """The directories of an RPATH/RUNPATH value: $ORIGIN is the object's directory;
    $LIB and $PLATFORM, which this module cannot know, give every directory they may mean."""
    found: list[str] = []
    for entry in entries.split(":"):
        if not entry:
            continue
        entry = re.sub(r"\$(\{ORIGIN\}|ORIGIN\b)", lambda _: origin, entry)
        candidates = [entry]
        if "$" in entry:
            multiarch = sysconfig.get_config_var("MULTIARCH") or ""
            libs = ["lib64", "lib", *([f"lib/{multiarch}"] if multiarch else [])]
            candidates = [re.sub(r"\$(\{LIB\}|LIB\b)", lib, entry) for lib in libs]
            candidates = [c for c in candidates if "$" not in c]  # $PLATFORM: the loader's guess, not ours
        found += candidates
    return found


def _cache_entries(data: bytes) -> list[tuple[str, str]] | None:
    """(name, path) pairs of an ld.so.cache in either of glibc's formats, in the
    file's order (the loader takes the first that fits); None: not one."""
    start = 0
    if data.startswith(CACHE_MAGIC_OLD):
        (count,) = struct.unpack_from("=I", data, 12)
        start = 16 + count * 12
        start += -start % 8  # the new format follows, aligned
        if not data.startswith(CACHE_MAGIC_NEW, start):
            return None  # the old format alone: gone since glibc 2.32
    elif not data.startswith(CACHE_MAGIC_NEW):
        return None
    order = {2: "<", 3: ">"}.get(data[start + 28] & 3, "=")  # the flags say the byte order; unset: this machine's
    (count,) = struct.unpack_from(order + "I", data, start + 20)
    entries = []
    for index in range(count):
        _flags, key, value = struct.unpack_from(order + "iII", data, start + 48 + 24 * index)
        name = data[start + key: data.index(b"\0", start + key)].decode(errors="surrogateescape")
        path = data[start + value: data.index(b"\0", start + value)].decode(errors="surrogateescape")
        entries.append((name, path))
    return entries


def _ldconfig_entries() -> list[tuple[str, str]]:
    """``ldconfig -p``: the cache as the C library reads it, for a format this module does not know."""
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            listing = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, errors="surrogateescape",
                                     timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        return re.findall(r"^\s+(\S+) \(.*\) => (.+)$", listing, re.M)
    return []


@functools.cache
def ld_so_cache(path: str = CACHE_FILE) -> dict[str, list[str]]:
    """Library name -> the files the loader's cache lists for it, in order."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return {}  # no cache (musl, a minimal container): the default directories remain
    try:
        entries = _cache_entries(data)
    except (struct.error, ValueError, IndexError):
        entries = None
    if entries is None:
        entries = _ldconfig_entries()
    cache: dict[str, list[str]] = {}
    for name, file in entries:
        cache.setdefault(name, []).append(file)
    return cache


def system_dirs(machine: tuple[int, int]) -> list[str]:
    """glibc's default directories: Debian's multiarch ones (``ld.so --list-diagnostics``
    there: /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib, /usr/lib), the
    lib64 ones of other distributions; a file for another machine is passed over anyway."""
    triplet = TRIPLETS.get(machine[0])
    multiarch = [f"/lib/{triplet}", f"/usr/lib/{triplet}"] if triplet else []
    return [*multiarch, *(["/lib64", "/usr/lib64"] if machine[1] == 2 else []), "/lib", "/usr/lib"]


def musl_dirs(machine: tuple[int, int]) -> list[str]:
    arch = MUSL_ARCHES.get(machine[0], "")
    try:
        text = Path(f"/etc/ld-musl-{arch}.path").read_text()
    except OSError:
        return ["/lib", "/usr/local/lib", "/usr/lib"]
    return [d for d in re.split(r"[:\n]", text) if d.strip()]


class Loader:
    """Finds the files a process loads, as its loader does (``libc``: glibc or musl)."""

    def __init__(self, libc: str = "glibc", environ: Mapping[str, str] = os.environ):
        self.libc = libc
        # The build's own: the uwsgi a build is for usually runs with it (a service manager may differ).
        self.library_path = [d for d in re.split(r"[:;]", environ.get("LD_LIBRARY_PATH", "")) if d]

    def directories(self, needing: DynamicObject, loaders: Sequence[DynamicObject], main: DynamicObject) -> list[str]:
        """Where a name ``needing`` needs is looked for, before the cache."""
        chain = [needing, *loaders]
        if self.libc == "musl":
            return [*self.library_path, *(d for elf in chain for d in [*elf.rpath, *(elf.runpath or [])])]
        dirs: list[str] = []
        if needing.runpath is None:
            for elf in [*chain, *([main] if main not in chain else [])]:
                if elf.runpath is None:  # an object with a RUNPATH has its RPATH ignored
                    dirs += elf.rpath
        return [*dirs, *self.library_path, *(needing.runpath or [])]

    def find(self, name: str, needing: DynamicObject, loaders: Sequence[DynamicObject], main: DynamicObject) -> Path | None:
        """The file the loader would open for ``name``, needed by ``needing``."""
        if "/" in name:
            path = Path(name) if os.path.isabs(name) else Path.cwd() / name
            return path if elf_machine(path) == needing.machine else None
        candidates = [Path(d, name) for d in self.directories(needing, loaders, main)]
        if self.libc == "musl":
            candidates += [Path(d, name) for d in musl_dirs(needing.machine)]
        elif not needing.nodeflib:
            candidates += [Path(f) for f in ld_so_cache().get(name, [])]
            candidates += [Path(d, name) for d in system_dirs(needing.machine)]
        return next((path for path in candidates if elf_machine(path) == needing.machine), None)

    def load_order(self, roots: Sequence[DynamicObject], read: Callable[[Path], DynamicObject | None]
                   ) -> tuple[list[Loaded], list[Unresolved]]:
        """Every object a process holds: ``roots`` (the executable first, then what it
        opens with dlopen(), such as the plugin) and, breadth first, what they need;
        with the names no file was found for."""
        main = roots[0]
        loaded: list[Loaded] = []
        names: set[str] = set()
        files: set[Path] = set()
        unresolved: list[Unresolved] = []

        def add(elf: DynamicObject, loaders: list[DynamicObject], *aliases: str) -> None:
            names.update(alias for alias in (*aliases, elf.soname, elf.path.name) if alias)
            real = elf.path.resolve()
            if real not in files:
                files.add(real)
                loaded.append(Loaded(elf, loaders))

        for index, root in enumerate(roots):
            add(root, [] if index == 0 else [main])
            position = len(loaded) - 1
            while position < len(loaded):  # breadth first: a library's needs after all of its level
                current = loaded[position]
                position += 1
                for name in current.elf.needed:
                    if name in names:
                        continue
                    path = self.find(name, current.elf, current.loaders, main)
                    library = read(path) if path is not None else None
                    if library is None:
                        unresolved.append(Unresolved(name, current.elf.path))
                        names.add(name)  # the loader would stop here; report it once
                        continue
                    add(library, [current.elf, *current.loaders], name)
        return loaded, unresolved
