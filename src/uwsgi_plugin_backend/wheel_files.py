"""Reading a wheel into memory and writing files back as a wheel, for the
few changes made after scikit-build-core wrote it (merge, pin-uwsgi).
The RECORD is written here (a few lines of zipfile): the wheel package's
WheelFile, used before, is not a public API."""

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
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

from .errors import BackendError


@contextlib.contextmanager
def written_aside(target: Path) -> Iterator[Path]:
    """A hidden file beside ``target`` for the block to write; renamed onto
    ``target`` when the block succeeds, removed when it fails: nobody ever sees
    ``target`` half written."""
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    try:
        yield Path(partial)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


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
    with written_aside(target) as partial:
        shutil.copyfile(source, partial)
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


def record_row(name: str, data: bytes) -> list[str]:
    """A RECORD row (PEP 376/427): the name, urlsafe base64 sha256 without padding, the size."""
    return [name, f"sha256={_record_digest(data, 'sha256')}", str(len(data))]


def record_text(rows: list[list[str]]) -> str:
    """RECORD rows as the CSV a RECORD is (names with commas or quotes are quoted)."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue()


def write_wheel(files: dict[str, bytes], target: Path, epoch: float) -> None:
    """Write ``files`` and a new RECORD, every entry dated ``epoch``, as the wheel
    ``target``, whole or not at all: files sorted, .dist-info last and RECORD
    at the very end, as wheel writers do."""
    [record] = {name.split("/")[0] + "/RECORD" for name in files if name.split("/")[0].endswith(".dist-info")}
    names = sorted(files, key=lambda name: (name.split("/")[0].endswith(".dist-info"), name))
    rows = [record_row(name, files[name]) for name in names] + [[record, "", ""]]
    date_time = time.gmtime(max(epoch, 315532800))[:6]  # zip cannot date before 1980
    with written_aside(target) as partial, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*((name, files[name]) for name in names), (record, record_text(rows).encode())]:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.external_attr = (0o644 | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
