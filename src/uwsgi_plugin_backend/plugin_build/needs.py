"""What a build needs of the machine that runs it, read from its own ELF files
(not from the uwsgi it was built for, which says nothing of the user's): the
newest glibc symbol version any of them names, its glibc floor; and whether a
plugin calls the Python C API, which ties a pyuwsgi build to one CPython."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from ..errors import BackendError, log
from ..target_uwsgi.abi import TargetAbi
from ..target_uwsgi.pyuwsgi import PyuwsgiModule
from .symbols import ElfSymbols

GLIBC_VERSION = re.compile(r"GLIBC_(\d+(?:\.\d+)+)")  # GLIBC_2.3.3; not GLIBC_PRIVATE nor GLIBC_ABI_DT_RELR
PYTHON_C_API = ("Py", "_Py")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def glibc_floor(shared_objects: Iterable[Path]) -> str | None:
    """The newest ``GLIBC_x.y`` symbol version that any of ``shared_objects``
    needs, as ``"2.14"``; None when none names one."""
    versions: set[str] = set()
    for path in shared_objects:
        try:
            with path.open("rb") as f:
                for section in ELFFile(f).iter_sections():
                    if isinstance(section, GNUVerNeedSection):
                        for _, auxiliaries in section.iter_versions():
                            versions.update(m.group(1) for aux in auxiliaries if (m := GLIBC_VERSION.fullmatch(aux.name)))
        except (OSError, ValueError) as error:
            raise BackendError(f"cannot read the symbol versions of {path}: {error}") from None
    return max(versions, key=_version, default=None)


def python_c_api_use(shared_object: Path) -> str | None:
    """How the plugin uses the Python C API, for the log: the ``Py*`` symbols it
    leaves undefined, or the libpython it links; None when it does not."""
    symbols = ElfSymbols(shared_object)
    called = sorted(name for name in symbols.undefined if name.startswith(PYTHON_C_API))
    linked = [name for name in symbols.needed if name.startswith("libpython")]
    if not called and not linked:
        return None
    calls = f"calls {', '.join(called[:3])}{' ...' if len(called) > 3 else ''}" if called else ""
    return " and ".join(filter(None, [calls, f"links {', '.join(linked)}" if linked else ""]))


def machine_needs(abi: TargetAbi, plugins: list[Path], loaders: list[Path],
                  pyuwsgi: PyuwsgiModule | None) -> tuple[str | None, str | None]:
    """A build's glibc floor (None off glibc), and the CPython it is tied to (cp311): a
    pyuwsgi build is the same bytes under every Python, as its ABI key is, unless a
    plugin calls the Python C API."""
    glibc = glibc_floor([*plugins, *loaders]) if "libc=glibc" in abi.platform.split() else None
    if glibc:
        log(f"  the plugins and their loaders need glibc {glibc} or newer (read from their ELF)")
    if pyuwsgi is None:
        return glibc, None
    uses = [f"{path.name} {use}" for path in plugins if (use := python_c_api_use(path))]
    if not uses:
        log("  the plugins call no Python C API: the build serves pyuwsgi under every Python")
        return glibc, None
    log(f"  {'; '.join(uses)} (the Python C API): the build serves pyuwsgi under {pyuwsgi.python_tag} only")
    return glibc, pyuwsgi.python_tag
