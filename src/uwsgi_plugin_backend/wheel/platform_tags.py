"""The wheel's platform tag, read from the built plugins' ELF as auditwheel
would: the most compatible manylinux/musllinux policy whose symbol versions
and library list cover every .so, else the plain platform tag.

Undefined symbols without a version (those uWSGI provides when it loads the
plugin) say nothing about the platform and are ignored, as auditwheel does.

The C library family comes from the uwsgi binaries the plugins are built for
(their PT_INTERP; pyuwsgi: the interpreter's), not from the build host nor
the plugin: auditwheel takes a .so that names no versioned glibc symbol for
glibc, so a plugin for a musl uwsgi would otherwise be tagged manylinux. For
musl, the policy is the musllinux_1_x of the binary's own musl loader.
"""

from __future__ import annotations

import dataclasses
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from auditwheel.architecture import Architecture
from auditwheel.elfutils import (
    elf_find_versioned_symbols,
    elf_read_dt_needed,
    filter_undefined_symbols,
)
from auditwheel.libc import Libc, _get_musl_version
from auditwheel.policy import Policy, WheelPolicies

try:
    from auditwheel.error import InvalidLibcError
except ImportError:  # auditwheel 6.4.2, which pip installs on Python 3.9, names it InvalidLibc
    from auditwheel.error import InvalidLibc as InvalidLibcError
from elftools.elf.elffile import ELFFile

from ..errors import BackendError
from ..runtime_api import elf_interpreter, libc_family, process_elf

# (e_machine, ELF class, little endian) -> architecture; auditwheel's own table.
MACHINES = {
    ("EM_386", 32, True): Architecture.i686,
    ("EM_X86_64", 64, True): Architecture.x86_64,
    ("EM_PPC64", 64, True): Architecture.ppc64le,
    ("EM_PPC64", 64, False): Architecture.ppc64,
    ("EM_RISCV", 64, True): Architecture.riscv64,
    ("EM_AARCH64", 64, True): Architecture.aarch64,
    ("EM_S390", 64, False): Architecture.s390x,
    ("EM_ARM", 32, True): Architecture.armv7l,
    ("EM_LOONGARCH", 64, True): Architecture.loongarch64,
}


@dataclasses.dataclass(frozen=True)
class PlatformChoice:
    tags: list[str]  # platform tags, most specific last (manylinux1_x86_64, manylinux_2_5_x86_64)
    outside_policy: dict[str, list[str]]  # .so name -> libraries no policy allows; empty when tagged

    @property
    def is_portable(self) -> bool:
        return not self.outside_policy


def plain_platform_tag() -> str:
    return sysconfig.get_platform().replace("-", "_").replace(".", "_")


def _architecture(path: Path) -> Architecture:
    with path.open("rb") as f:
        elf = ELFFile(f)
        key = (elf["e_machine"], elf.elfclass, elf.little_endian)
    if key not in MACHINES:
        raise BackendError(f"{path.name} is built for an unknown machine {key}; cannot tag the wheel for it")
    return MACHINES[key]


def _versioned_symbols(path: Path) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = {}
    with path.open("rb") as f:
        for library, version in elf_find_versioned_symbols(ELFFile(f)):
            needed.setdefault(library, set()).add(version)
    return needed


def _outside(policy: Policy, path: Path, libraries: list[str]) -> list[str]:
    """The libraries ``path`` needs that ``policy`` does not allow."""
    outside = [lib for lib in libraries if lib not in policy.whitelist and not lib.startswith("ld-linux")]
    used_blacklisted = filter_undefined_symbols(path, {lib: policy.blacklist[lib] for lib in libraries if lib in policy.blacklist})
    return outside + sorted(used_blacklisted)


def host_libc(hosts: list[Path]) -> tuple[Libc, str | None]:
    """The C library of the processes that load the plugins, and for musl the
    musllinux policy of their musl (None: auditwheel's latest)."""
    interpreters = set()
    for host in hosts:
        try:
            interpreters.add(elf_interpreter(process_elf(str(host)))[1])
        except (OSError, ValueError) as error:
            raise BackendError(f"cannot read the C library of {host}: {error}") from None
    families = {libc_family(interpreter) for interpreter in interpreters} - {"none"}
    if len(families) > 1:
        raise BackendError(f"the uwsgi binaries use different C libraries ({', '.join(sorted(families))}); build one wheel for each")
    if families != {"musl"}:
        return Libc.GLIBC, None
    versions = set()
    for interpreter in interpreters:
        try:
            version = _get_musl_version(Path(interpreter.decode()))
            versions.add((version.major, version.minor))
        except (InvalidLibcError, OSError):  # the loader is not on this machine: the latest policy
            return Libc.MUSL, None
    major, minor = max(versions)
    return Libc.MUSL, f"musllinux_{major}_{minor}"


def choose_platform(shared_objects: list[Path], provided: frozenset[str] | set[str] = frozenset(),
                    hosts: Sequence[Path] = ()) -> PlatformChoice:
    """The most compatible platform tags every one of ``shared_objects`` fits;
    ``provided`` names libraries the loading process brings (pyuwsgi's module);
    ``hosts`` are the uwsgi binaries they are built for: their C library only.
    Their glibc floor does not count: a user's uwsgi is compiled on the user's
    machine (pip), so the build machine's binary says nothing about it."""
    architectures = {_architecture(path) for path in shared_objects}
    if len(architectures) != 1:
        raise BackendError(f"the plugins are built for different machines ({', '.join(map(str, architectures))})")
    libc, musl_policy = host_libc(list(hosts)) if hosts else (Libc.detect(), None)
    policies = WheelPolicies(libc=libc, arch=architectures.pop(), musl_policy=musl_policy)
    symbols: dict[str, set[str]] = {}
    for path in shared_objects:
        for library, versions in _versioned_symbols(path).items():
            symbols.setdefault(library, set()).update(versions)
    by_symbols = policies.versioned_symbols_policy(symbols)
    if libc == Libc.MUSL:  # musl's loader serves any libc.* itself (Debian's musl-gcc links "libc.so")
        provided = {*provided, "libc.so"}
    needed = {path: [lib for lib in elf_read_dt_needed(path) if lib not in provided] for path in shared_objects}
    outside: dict[str, list[str]] = {}
    # Most compatible first; a policy can only be as compatible as the symbol versions allow.
    for policy in sorted(policies, reverse=True):
        if policy == policies.linux or policy.priority > by_symbols.priority:
            continue
        outside = {path.name: libs for path in shared_objects if (libs := _outside(policy, path, needed[path]))}
        if not outside:
            return PlatformChoice(tags=sorted([policy.name, *policy.aliases]), outside_policy={})
    return PlatformChoice(tags=[plain_platform_tag()], outside_policy=outside)


def manylinux_tags(major: int, minor: int, arch: str) -> list[str]:
    """``manylinux_<major>_<minor>_<arch>`` with its legacy aliases, as auditwheel
    writes them (manylinux_2_5 also manylinux1): the tags of that floor."""
    name = f"manylinux_{major}_{minor}_{arch}"
    try:
        policies = WheelPolicies(libc=Libc.GLIBC, arch=Architecture(arch))
    except ValueError:  # a machine auditwheel does not know: the tag alone
        return [name]
    aliases = next((list(policy.aliases) for policy in policies if policy.name == name), [])
    return sorted([name, *aliases])
