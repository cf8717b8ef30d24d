"""Reading a wheel into memory and writing files back as a wheel, for the
few changes made after scikit-build-core wrote it (merge, pin-uwsgi).
wheel's WheelFile writes the RECORD; nothing here is a wheel writer of its own."""

from __future__ import annotations

import base64
import calendar
import contextlib
import csv
import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path

from wheel.wheelfile import WheelFile

from .errors import BackendError


def place(source: Path, directory: Path) -> Path:
    """Move a finished file into ``directory`` so that nobody ever sees it half
    written: one rename on the same file system, else a hidden copy renamed."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / source.name
    try:
        os.replace(source, target)
        return target
    except OSError:
        pass
    fd, partial = tempfile.mkstemp(dir=directory, prefix=f".{source.name}.", suffix=".partial")
    os.close(fd)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return target


def _safe_entry(wheel: Path, info: zipfile.ZipInfo) -> None:
    """Refuse a name that could leave the directory it is unpacked into, and links."""
    name = info.filename
    parts = name.rstrip("/").split("/")
    if name.startswith("/") or "\\" in name or ":" in parts[0] or any(part in ("", ".", "..") for part in parts):
        raise BackendError(
            f"{wheel.name} holds an entry named {name!r}, which leaves the wheel ('..', an absolute or odd path); "
            "refusing it: merge only wheels this backend built"
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise BackendError(f"{wheel.name}: {name} is a symbolic link, which no plugin wheel holds; refusing the wheel")


def _record_digest(data: bytes, algorithm: str) -> str:
    return base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=").decode()


def _check_record(wheel: Path, files: dict[str, bytes]) -> str:
    """Every file listed in the wheel's RECORD with its hash and size, and nothing
    else listed; return the RECORD's name."""
    records = [name for name in files if re.fullmatch(r"[^/]+\.dist-info/RECORD", name)]
    if len(records) != 1:
        raise BackendError(f"{wheel.name} has no RECORD (or several); it is no complete wheel: rebuild it")
    record = records[0]
    unhashed = {record, record + ".jws", record + ".p7s"}  # RECORD and its signatures carry no hash
    listed: set[str] = set()
    damaged = f"was {wheel.name} changed after it was built? Rebuild it"
    try:
        rows = list(csv.reader(io.StringIO(files[record].decode())))
    except (UnicodeDecodeError, csv.Error) as error:
        raise BackendError(f"{wheel.name}: its RECORD cannot be read ({error}); {damaged}") from None
    for row in filter(None, rows):
        name, hash_text, size = (row + ["", ""])[:3]
        if name in listed:
            raise BackendError(f"{wheel.name}: its RECORD lists {name} twice; {damaged}")
        listed.add(name)
        if name not in files:
            raise BackendError(f"{wheel.name}: its RECORD names {name}, which the wheel does not hold; {damaged}")
        if name in unhashed:
            continue
        algorithm, _, digest = hash_text.partition("=")
        if algorithm not in ("sha256", "sha384", "sha512") or _record_digest(files[name], algorithm) != digest:
            raise BackendError(f"{wheel.name}: {name} does not match the hash in its RECORD; {damaged}")
        if size != str(len(files[name])):
            raise BackendError(f"{wheel.name}: {name} does not match the size in its RECORD; {damaged}")
    for name in files:
        if name not in listed and name not in unhashed:
            raise BackendError(f"{wheel.name}: {name} is not in its RECORD; {damaged}")
    return record


def read_wheel(path: Path) -> dict[str, bytes]:
    """Every file of the wheel but its RECORD, which is written anew. The wheel is
    untrusted (merge reads CI artifacts): unsafe names, links, duplicates and files
    that do not match its RECORD are refused before anything is written."""
    files: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                _safe_entry(path, info)
                if info.filename in files:
                    raise BackendError(f"{path.name} holds {info.filename} twice; refusing it (which one would count?)")
                if not info.is_dir():
                    files[info.filename] = archive.read(info)
    except (OSError, zipfile.BadZipFile) as error:
        raise BackendError(f"cannot read {path}: {error}") from None
    record = _check_record(path, files)
    return {name: data for name, data in files.items() if name != record}


def wheel_epoch(path: Path) -> float:
    """The newest timestamp inside a wheel, so a rewritten wheel keeps it
    (a reproducible input stays reproducible)."""
    with zipfile.ZipFile(path) as archive:
        # wheel dates its entries in UTC (time.gmtime); timegm is the inverse.
        return max(calendar.timegm((*info.date_time, 0, 0, 0)) for info in archive.infolist())


def write_wheel(files: dict[str, bytes], target: Path, epoch: float) -> None:
    """Write ``files``, all dated ``epoch``, as the wheel ``target``, whole or not at all."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".wheel-") as tmp:
        tree = Path(tmp) / "tree"
        for name, data in files.items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_bytes(data)
        partial = Path(tmp) / target.name
        # WheelFile dates every entry, RECORD too, by SOURCE_DATE_EPOCH when it is set.
        previous = os.environ.get("SOURCE_DATE_EPOCH")
        os.environ["SOURCE_DATE_EPOCH"] = str(int(epoch))
        try:
            with WheelFile(partial, "w") as wheel:
                wheel.write_files(str(tree))
        finally:
            if previous is None:
                del os.environ["SOURCE_DATE_EPOCH"]
            else:
                os.environ["SOURCE_DATE_EPOCH"] = previous
        os.replace(partial, target)
