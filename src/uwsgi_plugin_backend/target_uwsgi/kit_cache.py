"""The kit read from a uwsgi binary, cached by what the binary is (its bytes;
a wrapper script's answers to --version, --cflags and --dot-h), so a rebuild
asks little or nothing.

An entry is a directory holding uwsgi.h, uwsgiconfig.py and kit.json (the
version, the CFLAGS, the sha256 of both files and uwsgi.h's FNV-1a). It is written aside and
renamed into place whole; an entry whose files do not match their checksums
is not trusted and is extracted again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

from ..cache import directory_aside
from ..errors import log
from ..locking import locked
from ..runtime_api import binary_identity as runtime_identity
from ..settings import MachineSettings
from .kit import UwsgiKit, asking_uwsgi, extract_kit

FILES = ("uwsgi.h", "uwsgiconfig.py")


def binary_identity(binary: Path, timeout: float) -> str:
    """What the binary is (the runtime module's identity: its bytes, or a script's answers)."""
    with asking_uwsgi():
        return runtime_identity(str(binary), timeout)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load(entry: Path, binary: Path) -> UwsgiKit | None:
    """The cached kit in ``entry``, or None when it is missing or does not check out."""
    try:
        record = json.loads((entry / "kit.json").read_text())
        contents = {name: (entry / name).read_bytes() for name in FILES}
    except (OSError, ValueError):
        return None
    if "uwsgi.h fnv1a64" not in record:  # written by an older backend: extract again, once
        return None
    if any(record.get(name) != _sha256(data) for name, data in contents.items()):
        log(f"the cached kit in {entry} does not match its checksums; extracting it again")
        return None
    return UwsgiKit(
        binary=binary,
        version=record["version"],
        cflags=record["cflags"],
        dot_h=contents["uwsgi.h"],
        config_py=contents["uwsgiconfig.py"],
        directory=entry,
        dot_h_hash=record["uwsgi.h fnv1a64"],
    )


def _store(kit: UwsgiKit, entry: Path) -> Path | None:
    """Write the kit aside, then rename it into place; None if the cache is not writable."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with directory_aside(entry) as staging:
            kit.write(staging)
            record = {"binary": str(kit.binary), "version": kit.version, "cflags": kit.cflags,
                      "uwsgi.h": _sha256(kit.dot_h), "uwsgiconfig.py": _sha256(kit.config_py),
                      "uwsgi.h fnv1a64": kit.dot_h_hash}
            (staging / "kit.json").write_text(json.dumps(record, indent=2))
            if entry.exists():  # a corrupt entry, or one another build just wrote
                shutil.rmtree(entry, ignore_errors=True)
    except OSError:
        return entry if _load(entry, kit.binary) else None
    return entry


def kit_entry(binary: Path, machine: MachineSettings) -> Path:
    """Where the kit of ``binary`` is cached."""
    return machine.cache_dir.path() / "kits" / binary_identity(binary, machine.uwsgi_timeout)


def read_kit(binary: Path, machine: MachineSettings) -> UwsgiKit:
    """The build kit of ``binary``, from the cache when the binary is unchanged."""
    entry = kit_entry(binary, machine)
    try:
        lock = locked(entry.with_suffix(".lock"), f"the cached kit of {binary}", machine.lock_timeout)
        with lock:
            return _read_kit(binary, entry, machine.uwsgi_timeout)
    except OSError:  # no writable cache: extract for this build only
        return extract_kit(binary, machine.uwsgi_timeout)


def _read_kit(binary: Path, entry: Path, timeout: float) -> UwsgiKit:
    cached = _load(entry, binary)
    if cached is not None:
        log(f"  build kit cached in {entry}")
        return cached
    kit = extract_kit(binary, timeout)
    stored = _store(kit, entry)
    if stored is None:
        return kit
    log(f"  build kit extracted into {stored}")
    return dataclasses.replace(kit, directory=stored)
