"""Reading a wheel into memory and writing files back as a wheel, for the
few changes made after scikit-build-core wrote it (merge, pin-uwsgi).
wheel's WheelFile writes the RECORD; nothing here is a wheel writer of its own."""

from __future__ import annotations

import calendar
import contextlib
import os
import shutil
import tempfile
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
            from wheel.wheelfile import WheelFile

            with WheelFile(partial, "w") as wheel:
                wheel.write_files(str(tree))
        finally:
            if previous is None:
                del os.environ["SOURCE_DATE_EPOCH"]
            else:
                os.environ["SOURCE_DATE_EPOCH"] = previous
        os.replace(partial, target)
