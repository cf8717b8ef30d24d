"""The target ABI: what is computed from a uwsgi's kit, by one explicit call.

``target_abi(kit)`` learns, with the compiler, which macros and options of the
binary's CFLAGS change a layout of its uwsgi.h (target_uwsgi.layouts; cached
on disk, seconds on a first build), and from that the lines, hash and key the
runtime module and the load-time guard compute alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..cache import CacheDir
from ..errors import BackendError
from ..runtime_api import KEY_FORMAT, NoMatchingBuild, abi_lines, hash_of_parts, platform_of
from .compiler import compiler_program
from .kit import UwsgiKit
from .layouts import LearnedAbi, learn

# What decides which uwsgi binaries a build serves (the runtime's abi_fits reads them).
FIT_FIELDS = ("abi_key", "dot_h_hash", "platform", "layout_macros", "neutral_macros", "consulted", "abi_lines")


def fit_digest(record: Mapping[str, object]) -> str:
    """8 hex digits of a build record's FIT_FIELDS. Two builds with one ABI key
    can serve different binaries (one learned a macro the other's CFLAGS lack:
    pyuwsgi 2.0.30 and pip's 2.0.31 without SSL and libcap); then both are kept,
    the second in a directory named with this digest."""
    return hashlib.sha256(json.dumps({f: record.get(f) for f in FIT_FIELDS}, sort_keys=True).encode()).hexdigest()[:8]


def build_dir_name(key: str, digest: str = "") -> str:
    """A build's directory: its key (and the digest that sets it apart), importable (check-wheel-contents W004)."""
    return "abi_" + re.sub(r"\W", "_", key) + (f"_{digest}" if digest else "")


@dataclasses.dataclass(frozen=True)
class VariantOf:
    """A target ABI made from a binary's kit with feature macros changed (target_uwsgi.variants)."""

    label: str  # "-UWSGI_SSL +UWSGI_ZLIB": the macros taken out of and put into the binary's CFLAGS
    binary_key: str  # the ABI key of the binary it is made from
    removed: frozenset[str]  # functions the binary has that a uWSGI of the variant lacks (not declared, or not defined)
    added: frozenset[str]  # and the other way round
    # The libraries the binary links for a feature the variant lacks (variants.FEATURE_LIBRARIES):
    # a uWSGI without the feature does not bring them in for its plugins.
    unlinked: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class TargetAbi:
    kit: UwsgiKit
    learned: LearnedAbi
    lines: list[str]  # runtime.abi_lines of the kit's CFLAGS with what was learned
    hash: str  # 16 hex digits: what the load-time guard compares
    variant: VariantOf | None = None  # None: the ABI of the binary itself
    beside: bool = False  # another build has this key but serves other binaries: name the directory apart

    @property
    def key(self) -> str:
        return f"{KEY_FORMAT}-{self.hash}"

    @property
    def platform(self) -> str:
        return self.learned.platform

    @property
    def summary(self) -> str:
        return self.kit.abi_summary

    @property
    def build_dir_name(self) -> str:
        """The key as an importable directory name (check-wheel-contents W004)."""
        return build_dir_name(self.key, fit_digest(self.record()) if self.beside else "")

    def record(self) -> dict[str, object]:
        """What build.json carries of the ABI: what the runtime module's record_fits compares."""
        variant = {"variant": self.variant.label, "variant_of": self.variant.binary_key} if self.variant else {}
        return {"abi_key": self.key, "dot_h_hash": self.kit.dot_h_hash, "platform": self.platform,
                **self.learned.record(), "abi_lines": self.lines, "summary": self.summary, **variant}

    def fits(self, other: UwsgiKit) -> bool:
        """Would a build for this ABI fit ``other`` (the runtime module's rule)?"""
        return (other.dot_h_hash == self.kit.dot_h_hash
                and abi_lines(other.cflags, self.learned.record()) == self.lines)


def target_abi(kit: UwsgiKit, cache: CacheDir, announce: bool = True) -> TargetAbi:
    """Learn ``kit``'s layouts (the compiler runs unless cached in ``cache``; ``announce``:
    say so in the log first) and compute its key."""
    try:
        elf_part = platform_of(str(kit.binary))
    except NoMatchingBuild as error:
        raise BackendError(f"{error}; name a uwsgi binary or pyuwsgi's uwsgi script") from None
    if kit.directory is not None:
        learned = learn(elf_part, kit.dot_h, kit.cflags, kit.directory, compiler_program(), cache, announce)
    else:
        with tempfile.TemporaryDirectory(prefix="uwsgi-kit-") as tmp:
            kit.write(Path(tmp))
            learned = learn(elf_part, kit.dot_h, kit.cflags, Path(tmp), compiler_program(), cache, announce)
    lines = abi_lines(kit.cflags, learned.record())
    return TargetAbi(kit=kit, learned=learned, lines=lines, hash=hash_of_parts(kit.dot_h_hash, learned.platform, lines))
