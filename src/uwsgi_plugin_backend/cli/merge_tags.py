"""The tags of a merged wheel. Its inputs may carry other tags (one CI job's
plugin needs a newer glibc, a pyuwsgi job's wheel is cp311), but one platform
family: one C library and one machine. The merged wheel takes the highest
floor among them, so that every build it carries can load where pip installs
it; and py3-none, unless a build calls one CPython's C API (cpXY-cpXY)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from packaging.tags import Tag

from ..errors import BackendError
from ..wheel.platform_tags import manylinux_tags

# PEP 600: the legacy names of manylinux_2_5, _2_12 and _2_17.
LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
POLICY = re.compile(r"(manylinux|musllinux)_(\d+)_(\d+)_(\w+)")
LEGACY_POLICY = re.compile(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)")
PLAIN = re.compile(r"linux_(\w+)")
CPYTHON = re.compile(r"cp\d+")
REFUSED = "merge only wheels this backend built"


@dataclasses.dataclass(frozen=True)
class Platform:
    family: str  # manylinux (glibc), musllinux, or linux: a plain tag, a library outside every policy
    arch: str
    floor: tuple[int, int]  # the lowest C library version the wheel's tags allow; (0, 0) for linux

    def tags(self) -> list[str]:
        if self.family == "manylinux":
            return manylinux_tags(*self.floor, self.arch)
        if self.family == "musllinux":
            return [f"musllinux_{self.floor[0]}_{self.floor[1]}_{self.arch}"]
        return [f"linux_{self.arch}"]

    def __str__(self) -> str:
        return f"{self.family} {self.arch}" if self.family == "linux" else f"{self.family}_{self.floor[0]}_{self.floor[1]} {self.arch}"


def _platform(wheel: Path, tag: str) -> Platform:
    if match := POLICY.fullmatch(tag):
        return Platform(match[1], match[4], (int(match[2]), int(match[3])))
    if match := LEGACY_POLICY.fullmatch(tag):
        return Platform("manylinux", match[2], LEGACY[match[1]])
    if match := PLAIN.fullmatch(tag):
        return Platform("linux", match[1], (0, 0))
    raise BackendError(f"{wheel.name} is tagged for {tag}, not a Linux platform of this backend's wheels; refusing it: {REFUSED}")


def wheel_platform(wheel: Path, tags: frozenset[Tag]) -> Platform:
    """The platform family of one wheel, at its floor: the lowest of its tags (its aliases
    name one floor; more than one floor: the wheel loads from the lowest)."""
    platforms = {_platform(wheel, tag.platform) for tag in tags}
    if len({(p.family, p.arch) for p in platforms}) > 1:
        raise BackendError(f"{wheel.name} is tagged for several platforms ({', '.join(sorted(map(str, platforms)))}); "
                           f"refusing it: {REFUSED}")
    return min(platforms, key=lambda p: p.floor)


def interpreter(wheel: Path, tags: frozenset[Tag]) -> str:
    """``py3-none``, or ``cp311-cp311`` for a wheel with a build that calls that CPython's C API."""
    pairs = sorted({f"{tag.interpreter}-{tag.abi}" for tag in tags})
    pair = ", ".join(pairs)
    python, _, abi = pair.partition("-")
    if pair != "py3-none" and not (CPYTHON.fullmatch(python) and abi == python):
        raise BackendError(f"{wheel.name} is tagged for {pair}, where this backend's wheels are py3-none or cpXY-cpXY; "
                           f"refusing it: {REFUSED}")
    return pair


def merged_tags(wheels: dict[Path, frozenset[Tag]]) -> tuple[str, list[str]]:
    """The merged wheel's tags as its file name has them (``py3-none-manylinux1_x86_64.manylinux_2_5_x86_64``)
    and one by one, for its WHEEL file."""
    platforms = {wheel: wheel_platform(wheel, tags) for wheel, tags in wheels.items()}
    first, *others = wheels
    for wheel in others:
        mine, theirs = platforms[first], platforms[wheel]
        if (mine.family, mine.arch) != (theirs.family, theirs.arch):
            plain = next((w for w in (first, wheel) if platforms[w].family == "linux"), None)
            hint = (f" ({plain.name} needs a library outside every policy: `auditwheel repair` it first)" if plain else "")
            raise BackendError(
                f"cannot merge {first.name} and {wheel.name}: one is for {mine}, the other for {theirs}{hint}; "
                "merge only wheels of one platform family (one C library and machine), one merged wheel for each"
            )
    highest = max(platforms.values(), key=lambda p: p.floor)
    pairs = {wheel: interpreter(wheel, tags) for wheel, tags in wheels.items()}
    cpython = sorted({pair for pair in pairs.values() if pair != "py3-none"})
    if len(cpython) > 1:
        named = ", ".join(f"{wheel.name} ({pair})" for wheel, pair in pairs.items() if pair != "py3-none")
        raise BackendError(
            f"cannot merge {named}: their builds call the Python C API of different Pythons, and a wheel is "
            "installed under one interpreter tag; merge each Python's wheel (with the py3-none ones) into a wheel of its own"
        )
    # A cpXY build serves that CPython alone; the py3 builds serve there too, so the wheel is for it (never wider).
    pair = cpython[0] if cpython else "py3-none"
    platform_tags = highest.tags()
    return f"{pair}-{'.'.join(platform_tags)}", [f"{pair}-{tag}" for tag in platform_tags]
