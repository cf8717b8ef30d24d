"""After linking: every symbol the plugin leaves undefined must come from the
uwsgi that loads it, from a library the plugin or that uwsgi links, or from
the C library. uWSGI dlopen()s plugins with RTLD_NOW, so a symbol missing
there is a plugin that never loads; better to fail the build, naming it.

Weak symbols may stay undefined, and versioned ones (GLIBC_2.x, OPENSSL_3)
are bound to a library by the linker already: neither is checked.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import os
import struct
import zlib
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_E_MACHINE
from elftools.elf.gnuversions import GNUVerSymSection
from elftools.elf.sections import Section

from ..cache import CacheDir
from ..errors import BackendError, log
from ..runtime_api import elf_interpreter, libc_family, process_elf
from ..target_uwsgi.abi import VariantOf
from ..target_uwsgi.kit import UwsgiKit
from ..target_uwsgi.pyuwsgi import PyuwsgiModule
from .dynamic_loader import Loader, Unresolved, expand_origin

SHN_UNDEF = 0
STB_WEAK = 2
DF_1_NODEFLIB = 0x800
# Symbols of the C++ runtime (libstdc++): mangled names, the personality routine, the ABI's helpers.
CXX_RUNTIME_PREFIXES = ("_Z", "__gxx_", "__cxa_")


class ElfSymbols:
    """What one ELF file defines and needs, from its dynamic section and .dynsym."""

    def __init__(self, path: Path):
        self.path = path
        self.defined: set[str] = set()
        self.undefined: set[str] = set()  # non-weak, unversioned
        self.needed: list[str] = []
        self.soname: str | None = None
        self.rpath: list[str] = []
        self.runpath: list[str] | None = None
        self.nodeflib = False
        # $ORIGIN: the directory the object was opened from, as the loader has it (not through links)
        origin = str(Path(os.path.abspath(path)).parent)
        with path.open("rb") as f:
            elf = ELFFile(f)
            self.machine = (elf.header.e_machine if isinstance(elf.header.e_machine, int)
                            else ENUM_E_MACHINE[elf.header.e_machine], elf.elfclass // 32)
            sections = list(elf.iter_sections())  # each walk parses every section header again
            for section in sections:
                if section["sh_type"] == "SHT_DYNSYM":
                    self._read_dynsym(elf, section, sections, os.fstat(f.fileno()).st_size)
                elif isinstance(section, DynamicSection):
                    for tag in section.iter_tags():
                        kind = tag.entry.d_tag
                        if kind == "DT_NEEDED":
                            self.needed.append(tag.needed)
                        elif kind == "DT_SONAME":
                            self.soname = tag.soname
                        elif kind == "DT_RPATH":
                            self.rpath += expand_origin(tag.rpath, origin)
                        elif kind == "DT_RUNPATH":
                            self.runpath = [*(self.runpath or []), *expand_origin(tag.runpath, origin)]
                        elif kind == "DT_FLAGS_1":
                            self.nodeflib = bool(tag.entry.d_val & DF_1_NODEFLIB)

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


def _hosts(kit: UwsgiKit, module: PyuwsgiModule | None) -> list[Path]:
    """The ELF files that make the process before the plugin is opened: the
    executable first (the binary; for pyuwsgi the Python that runs it), then
    what it opens itself (pyuwsgi's extension ``module``)."""
    if module is not None:
        return [Path(process_elf(str(kit.binary))), module.path]
    return [kit.binary.resolve()]  # the loader's $ORIGIN of an executable is where its links lead


@dataclasses.dataclass
class Provided:
    symbols: set[str]
    unresolved: list[Unresolved]  # libraries the loader would not find
    libraries: list[Path]  # the libraries the loader brings in, in load order


def provided_symbols(plugin: ElfSymbols, kit: UwsgiKit, pyuwsgi: PyuwsgiModule | None,
                     unlinked: frozenset[str] = frozenset()) -> Provided | None:
    """Every symbol the loading process offers the plugin: of uwsgi (and the
    ``pyuwsgi`` module it runs), of the plugin, and of every library the loader
    brings in for either, but for the libraries uwsgi needs whose names start with
    one of ``unlinked`` (another library may still bring them in); None when the
    uwsgi binary cannot be read (then nothing is checked)."""
    hosts = [_read(path) for path in _hosts(kit, pyuwsgi)]
    if hosts[0] is None:
        return None
    if unlinked and hosts[-1] is not None:  # a copy: _read's objects are shared
        hosts[-1] = copy.copy(hosts[-1])
        hosts[-1].needed = [name for name in hosts[-1].needed if not name.startswith(tuple(unlinked))]
    try:
        libc = libc_family(elf_interpreter(hosts[0].path)[1])
    except (OSError, ValueError, struct.error):
        libc = "glibc"
    roots = [host for host in hosts if host is not None]
    loaded, unresolved = Loader(libc).load_order([*roots, plugin], _read)
    symbols: set[str] = set()
    for item in loaded:
        symbols |= item.elf.defined  # type: ignore[attr-defined]  # _read gives ElfSymbols
    return Provided(symbols, unresolved, [item.elf.path for item in loaded if not any(item.elf is root for root in [*roots, plugin])])


def check_symbols(shared_object: Path, plugin: str, kit: UwsgiKit, pyuwsgi: PyuwsgiModule | None, cache: CacheDir,
                  variant: VariantOf | None = None) -> None:
    """Fail the build when ``shared_object`` leaves a symbol undefined that the
    loading uwsgi (running ``pyuwsgi``, for a pyuwsgi build) cannot provide. The
    result is remembered in ``cache`` per plugin and binary. For a ``variant`` of
    the binary, the functions uwsgi.h declares only with a feature the variant
    lacks are not provided, and those only the variant has are."""
    unlinked = variant.unlinked if variant else frozenset()
    digest = hashlib.sha256(shared_object.read_bytes() + str(kit.binary.resolve()).encode() + kit.cflags.encode()
                            + " ".join(sorted(unlinked)).encode())
    marker = cache.path() / "symbol-checks" / digest.hexdigest()[:32]
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
    provided = provided_symbols(symbols, kit, pyuwsgi, unlinked)
    if provided is None:
        log(f"  symbol check skipped: cannot read the symbols of {kit.binary}")
        return
    if variant is not None:
        # Of what only the binary's feature set declares, what the binary itself defines (not a library's).
        binary = _read(_hosts(kit, pyuwsgi)[-1])
        lacking = sorted(symbols.undefined & variant.removed & (binary.defined if binary else variant.removed))
        if lacking:
            raise BackendError(f"plugin {plugin} calls {', '.join(lacking)}, which a uWSGI built with {variant.label} "
                               "does not have (it comes with the feature)")
        provided.symbols |= variant.added
    missing = sorted(symbols.undefined - provided.symbols)
    uwsgi_missing = [name for name in missing if name.startswith("uwsgi_")]
    if uwsgi_missing:
        raise BackendError(
            f"plugin {plugin} calls {', '.join(uwsgi_missing)}, which this uWSGI ({kit.abi_summary.split(' +')[0]}, "
            f"{kit.binary}) does not have: uwsgi would refuse to load the plugin. The function may come from another "
            "uWSGI release (such as 2.1): build for a uwsgi that has it, or do without it"
        )
    if missing:
        lost = "".join(f"; the loader finds no {item.name} (needed by {item.needed_by.name})" for item in provided.unresolved)
        cxx = any(name.startswith(CXX_RUNTIME_PREFIXES) for name in missing) and not any(
            name.startswith("libstdc++") for name in symbols.needed)
        fix = ("link the C++ runtime: LIBS = ['-lstdc++'] in uwsgiplugin.py (C++ code in a .o or .a entry of "
               "GCC_LIST; .cc sources get it without asking)" if cxx else
               "link the library that has them (LIBS in uwsgiplugin.py, e.g. LIBS = ['-lfoo'])")
        raise BackendError(
            f"plugin {plugin} uses {', '.join(missing)}, which neither {kit.binary} nor the libraries the loader "
            f"brings in for it and the plugin ({len(provided.libraries)} of them) provide{lost}: uwsgi would "
            f"refuse to load the plugin. To fix, {fix}"
        )
    try:  # an empty file: nothing half-written to guard against; a cache we cannot write is no error
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass
