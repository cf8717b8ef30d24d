"""Reading a wheel into memory and writing files back as a wheel, for the
few changes made after scikit-build-core wrote it (merge, pin-uwsgi).
The RECORD is written here (a few lines of zipfile): the wheel package's
WheelFile, used before, is not a public API."""

from __future__ import annotations

import base64
import calendar
import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import time
import zipfile
from pathlib import Path

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


def read_wheel(path: Path) -> dict[str, bytes]:
    """Every file of the wheel but its RECORD, which is written anew."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist() if not name.endswith(".dist-info/RECORD")}
    except (OSError, zipfile.BadZipFile) as error:
        raise BackendError(f"cannot read {path}: {error}") from None


def wheel_epoch(path: Path) -> float:
    """The newest timestamp inside a wheel, so a rewritten wheel keeps it
    (a reproducible input stays reproducible)."""
    with zipfile.ZipFile(path) as archive:
        # wheel dates its entries in UTC (time.gmtime); timegm is the inverse.
        return max(calendar.timegm((*info.date_time, 0, 0, 0)) for info in archive.infolist())


def record_line(name: str, data: bytes) -> str:
    """A RECORD row (PEP 376/427): urlsafe base64 sha256 without padding, and the size."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(files: dict[str, bytes], target: Path, epoch: float) -> None:
    """Write ``files`` and a new RECORD, every entry dated ``epoch``, as the wheel
    ``target``, whole or not at all: files sorted, .dist-info last and RECORD
    at the very end, as wheel writers do."""
    [record] = {name.split("/")[0] + "/RECORD" for name in files if name.split("/")[0].endswith(".dist-info")}
    names = sorted(files, key=lambda name: (name.split("/")[0].endswith(".dist-info"), name))
    rows = [record_line(name, files[name]) for name in names] + [f"{record},,"]
    date_time = time.gmtime(max(epoch, 315532800))[:6]  # zip cannot date before 1980
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in [*((name, files[name]) for name in names), (record, ("\n".join(rows) + "\n").encode())]:
                info = zipfile.ZipInfo(name, date_time=date_time)
                info.external_attr = (0o644 | stat.S_IFREG) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
