"""The build kit every uwsgi binary carries: ``--dot-h``, ``--config-py``,
``--cflags`` and ``--version``, read from the binary itself. What is computed
from it (the layouts, the ABI key) is target_uwsgi.abi's, by an explicit call."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import BackendError
from ..runtime_api import CannotAsk, abi_summary, ask, dot_h_hash
from ..settings import UWSGI_TIMEOUT_ENV as TIMEOUT_ENV

VERSION_PATTERN = re.compile(r"^\d+\.\d+(\.\d+)*\S*$")
# Compiler options whose argument is the next word: conda's toolchains write `-isystem /path`.
TWO_WORD_FLAGS = {"-isystem", "-idirafter", "-iquote", "-include", "-imacros", "-isysroot", "--sysroot", "-I", "-D", "-U", "-x"}
PLAIN_WORD = re.compile(r"^[A-Za-z0-9_./+=:,@%-]+$")


@dataclasses.dataclass(frozen=True)
class UwsgiKit:
    binary: Path
    version: str
    cflags: str
    dot_h: bytes
    config_py: bytes
    directory: Path | None = None  # where uwsgi.h and uwsgiconfig.py lie, once cached
    # FNV-1a of uwsgi.h, kept in the kit cache: in pure Python it costs ~10 ms a build.
    dot_h_hash: str = ""

    def __post_init__(self) -> None:
        if not self.dot_h_hash:
            object.__setattr__(self, "dot_h_hash", dot_h_hash(self.dot_h))

    @functools.cached_property
    def abi_summary(self) -> str:
        return abi_summary(self.version, self.cflags)

    def write(self, directory: Path) -> None:
        """Lay out the kit as ``uwsgi --build-plugin`` does in .uwsgi_plugins_builder/."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "uwsgi.h").write_bytes(self.dot_h)
        (directory / "uwsgiconfig.py").write_bytes(self.config_py)


@contextlib.contextmanager
def asking_uwsgi() -> Iterator[None]:
    """The backend's advice when a uwsgi binary does not answer a question."""
    try:
        yield
    except CannotAsk as error:
        raise BackendError(f"{error}; name a working uwsgi binary (-C uwsgi=PATH; ${TIMEOUT_ENV} sets the time limit)") from None


def _ask(binary: Path, flag: str, timeout: float) -> bytes:
    with asking_uwsgi():
        return ask(str(binary), flag, timeout)


def _not_uwsgi(binary: Path, flag: str, output: bytes) -> BackendError:
    lines = output.decode(errors="replace").strip().splitlines()
    shown = repr(lines[0][:120]) if lines else "nothing"
    return BackendError(
        f"{binary} is not a uwsgi binary: `{binary.name} {flag}` printed {shown}, "
        "not what uwsgi prints. Name a real uwsgi binary (pip install uwsgi; -C uwsgi=PATH)"
    )


def compiler_flags_only(cflags: str) -> bool:
    """Only compiler flags, which go into uwsgiconfig.py's shell command line: words
    that start with '-', and the plain argument (a path, no shell syntax) of a two-word flag."""
    words = cflags.split()
    index = 0
    while index < len(words):
        if words[index] in TWO_WORD_FLAGS:
            if index + 1 == len(words) or not PLAIN_WORD.match(words[index + 1]):
                return False
            index += 2
        elif words[index].startswith("-"):
            index += 1
        else:
            return False
    return bool(words)


def extract_kit(binary: Path, timeout: float) -> UwsgiKit:
    """Ask ``binary`` for its build kit, ``timeout`` seconds at most a question;
    fail clearly when it is no uwsgi."""
    version = _ask(binary, "--version", timeout).decode(errors="replace").strip()
    if not VERSION_PATTERN.match(version):
        raise _not_uwsgi(binary, "--version", version.encode())
    config_py = _ask(binary, "--config-py", timeout)
    if b"def build_plugin" not in config_py:
        raise _not_uwsgi(binary, "--config-py", config_py)
    dot_h = _ask(binary, "--dot-h", timeout)
    if b"struct uwsgi_plugin" not in dot_h:
        raise _not_uwsgi(binary, "--dot-h", dot_h)
    raw_cflags = _ask(binary, "--cflags", timeout)
    try:
        cflags = raw_cflags.decode().strip()
    except UnicodeDecodeError:
        raise _not_uwsgi(binary, "--cflags", raw_cflags) from None
    if not compiler_flags_only(cflags):
        raise _not_uwsgi(binary, "--cflags", raw_cflags)
    return UwsgiKit(binary=binary, version=version, cflags=cflags, dot_h=dot_h, config_py=config_py)
