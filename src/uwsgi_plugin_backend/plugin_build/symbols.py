"""After linking: every symbol the plugin leaves undefined must come from the
uwsgi that loads it, from a library the plugin or that uwsgi links, or from
the C library. uWSGI dlopen()s plugins with RTLD_NOW, so a symbol missing
there is a plugin that never loads; better to fail the build, naming it.

Weak symbols may stay undefined, and versioned ones (GLIBC_2.x, OPENSSL_3)
are bound to a library by the linker already: neither is checked.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import subprocess
import zlib
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerSymSection
from elftools.elf.sections import Section

from ..cache import cache_root
from ..errors import BackendError, log
from ..runtime_api import process_elf
from ..target_uwsgi.compiler import compiler
from ..target_uwsgi.kit import UwsgiKit
from ..target_uwsgi.pyuwsgi import find_pyuwsgi_module

SHN_UNDEF = 0
STB_WEAK = 2


class ElfSymbols:
    """What one ELF file defines and needs, from its dynamic section and .dynsym."""

    def __init__(self, path: Path):
        self.path = path
        self.defined: set[str] = set()
        self.undefined: set[str] = set()  # non-weak, unversioned
        self.needed: list[str] = []
        self.search_dirs: list[str] = []
        with path.open("rb") as f:
            elf = ELFFile(f)
            sections = list(elf.iter_sections())  # each walk parses every section header again
            for section in sections:
                if section["sh_type"] == "SHT_DYNSYM":
                    self._read_dynsym(elf, section, sections, os.fstat(f.fileno()).st_size)
                elif isinstance(section, DynamicSection):
                    for tag in section.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            self.needed.append(tag.needed)
                        elif tag.entry.d_tag in ("DT_RUNPATH", "DT_RPATH"):
                            path_list = tag.runpath if tag.entry.d_tag == "DT_RUNPATH" else tag.rpath
                            origin = str(path.resolve().parent)
                            self.search_dirs += [d.replace("$ORIGIN", origin) for d in path_list.split(":") if d]

    def _read_dynsym(self, elf: ELFFile, dynsym: Section, sections: list[Section], file_size: int) -> None:
        """Unpack .dynsym with struct: pyelftools parses each of a libc's or a
        libpython's thousands of symbols field by field, some 50 ms a library."""
        order = "<" if elf.little_endian else ">"
        # Both start with st_name, then order their fields differently.
        layout, info_at, shndx_at = ("IBBHQQ", 1, 3) if elf.elfclass == 64 else ("IIIBBH", 3, 5)
        entry = struct.Struct(order + layout)
        strings = _contents(sections[dynsym["sh_link"]], file_size)
        versions = next((_contents(s, file_size) for s in sections if isinstance(s, GNUVerSymSection)), b"")
        version_of = struct.Struct(order + "H")
        data = _contents(dynsym, file_size)
        for index, fields in enumerate(entry.iter_unpack(data[: len(data) - len(data) % entry.size])):
            start = fields[0]
            end = strings.find(b"\0", start)
            name = strings[start: end if end >= 0 else len(strings)].decode("utf-8", errors="replace")
            if not name:
                continue
            if fields[shndx_at] != SHN_UNDEF:
                self.defined.add(name)
            elif fields[info_at] >> 4 != STB_WEAK and not _versioned(versions, version_of, index):
                self.undefined.add(name)


def _contents(section: Section, file_size: int) -> bytes:
    """A section's bytes; one that claims more than the file holds is a damaged file."""
    if section["sh_size"] > file_size:
        raise ELFError(f"section {section.name} claims {section['sh_size']} bytes, more than the file holds")
    data: bytes = section.data()
    return data


def _versioned(versions: bytes, version_of: struct.Struct, index: int) -> bool:
    """Index 0 and 1 of .gnu.version mean local and global: no version."""
    offset = index * version_of.size
    return offset + version_of.size <= len(versions) and version_of.unpack_from(versions, offset)[0] not in (0, 1)


@functools.cache
def _read(path: Path) -> ElfSymbols | None:
    try:
        return ElfSymbols(path)
    except (OSError, ELFError, IndexError, zlib.error):  # a linker script (libc.so) or a missing file: provides nothing we can read
        return None


@functools.cache
def _compiler_finds(name: str) -> Path | None:
    try:
        found = subprocess.run([*compiler(), f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return None
    return Path(found) if os.path.isabs(found) and os.path.exists(found) else None


def _resolve(name: str, search_dirs: list[str], known: dict[str, Path]) -> Path | None:
    if name in known:
        return known[name]
    for directory in search_dirs:
        candidate = Path(directory) / name
        if candidate.exists():
            return candidate
    return _compiler_finds(name)


def _hosts(kit: UwsgiKit) -> tuple[list[Path], dict[str, Path]]:
    """The ELF files that provide uWSGI's symbols (the binary; for pyuwsgi its
    extension module and the Python that loads it), and libraries known by
    name (that module)."""
    try:
        module = find_pyuwsgi_module(kit)
    except BackendError as error:  # checked where pyuwsgi builds are set up; here, be tolerant
        log(f"  symbol check: {error}")
        module = None
    if module is not None:
        return [module.path, Path(process_elf(str(kit.binary)))], {module.path.name: module.path}
    return ([kit.binary] if _read(kit.binary.resolve()) else []), {}


def provided_symbols(plugin: ElfSymbols, kit: UwsgiKit) -> set[str] | None:
    """Every symbol the loading process offers the plugin; None when the uwsgi
    binary cannot be read (then nothing is checked)."""
    paths, known = _hosts(kit)
    hosts = [host for host in (_read(path.resolve()) for path in paths) if host is not None]
    if not hosts:
        return None
    provided: set[str] = set()
    libraries = [(name, plugin.search_dirs) for name in plugin.needed]
    for host in hosts:
        provided |= host.defined
        libraries += [(name, host.search_dirs) for name in host.needed]
    libraries.append(("libc.so.6", []))
    for name, dirs in libraries:
        path = _resolve(name, dirs, known)
        library = _read(path.resolve()) if path else None
        if library is not None:
            provided |= library.defined
    return provided


def check_symbols(shared_object: Path, plugin: str, kit: UwsgiKit) -> None:
    """Fail the build when ``shared_object`` leaves a symbol undefined that the
    loading uwsgi cannot provide. The result is remembered per plugin and binary."""
    digest = hashlib.sha256(shared_object.read_bytes() + str(kit.binary.resolve()).encode() + kit.cflags.encode())
    marker = cache_root() / "symbol-checks" / digest.hexdigest()[:32]
    if marker.exists():
        return
    symbols = ElfSymbols(shared_object)
    struct_name = f"{plugin}_plugin"
    if struct_name not in symbols.defined:
        raise BackendError(
            f"{shared_object.name} does not define `struct uwsgi_plugin {struct_name}`: uWSGI looks the plugin up by "
            f"that name and would refuse to load it. Name the plugin's struct {struct_name} (NAME in uwsgiplugin.py "
            f"is {plugin!r})"
        )
    provided = provided_symbols(symbols, kit)
    if provided is None:
        log(f"  symbol check skipped: cannot read the symbols of {kit.binary}")
        return
    missing = sorted(symbols.undefined - provided)
    uwsgi_missing = [name for name in missing if name.startswith("uwsgi_")]
    if uwsgi_missing:
        raise BackendError(
            f"plugin {plugin} calls {', '.join(uwsgi_missing)}, which this uWSGI ({kit.abi_summary.split(' +')[0]}, "
            f"{kit.binary}) does not have: uwsgi would refuse to load the plugin. The function may come from another "
            "uWSGI release (such as 2.1): build for a uwsgi that has it, or do without it"
        )
    if missing:
        raise BackendError(
            f"plugin {plugin} uses {', '.join(missing)}, which neither {kit.binary} nor the libraries it or the plugin "
            "link provide: uwsgi would refuse to load the plugin. Link the library that has them "
            "(LIBS in uwsgiplugin.py, e.g. LIBS = ['-lfoo'])"
        )
    try:  # an empty file: nothing half-written to guard against; a cache we cannot write is no error
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass
