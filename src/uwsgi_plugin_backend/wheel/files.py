"""Reading a wheel (checked, and hashed a chunk at a time) and writing files
back as a wheel, for the few changes made after scikit-build-core wrote it
(merge, pin-uwsgi).
The RECORD is written here (a few lines of zipfile): the wheel package's
WheelFile, used before, is not a public API."""

from __future__ import annotations

import base64
import calendar
import contextlib
import csv
import dataclasses
import hashlib
import io
import os
import re
import shutil
import stat
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ..cache import written_aside
from ..errors import BackendError


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


# Bounds on what an untrusted wheel may make merge read: a plugin wheel holds a
# few megabytes, and a zip of a few megabytes can unpack to gigabytes.
MAX_ENTRY_SIZE = 512 * 2**20  # one file, uncompressed
MAX_WHEEL_SIZE = 2 * 2**30  # all of a wheel's files, uncompressed
MAX_RECORD_SIZE = 8 * 2**20  # RECORD is parsed whole
CHUNK_SIZE = 2**20
COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}  # what wheel writers use
ENCRYPTED, PATCHED, STRONGLY_ENCRYPTED = 0x1, 0x20, 0x40  # zip general purpose flag bits
DAMAGED = "was it changed after it was built? Rebuild it"


@dataclasses.dataclass(frozen=True)
class WheelEntry:
    """A file of a checked wheel: where it lies and what it holds (its size and
    sha256), so that wheels are compared and copied without holding their files
    in memory. Two entries are equal when they hold the same bytes."""

    wheel: Path = dataclasses.field(compare=False)
    info: zipfile.ZipInfo = dataclasses.field(compare=False)
    size: int
    sha256: bytes


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


def _readable_entry(wheel: Path, info: zipfile.ZipInfo) -> None:
    """Refuse what zipfile cannot unpack, or only with a password, before it is
    read, and files too large to be a plugin wheel's (a zip bomb)."""
    name = info.filename
    if info.flag_bits & (ENCRYPTED | STRONGLY_ENCRYPTED | PATCHED):
        raise BackendError(f"{wheel.name}: {name} is encrypted or patched (zip flag bits {info.flag_bits:#06x}), "
                           "which no wheel is; refusing the wheel: merge only wheels this backend built")
    if info.compress_type not in COMPRESSIONS:
        raise BackendError(f"{wheel.name}: {name} is compressed with zip method {info.compress_type}; wheels are "
                           f"{' or '.join(COMPRESSIONS.values())}: refusing the wheel, merge only wheels this backend built")
    if info.file_size > MAX_ENTRY_SIZE:
        raise BackendError(f"{wheel.name}: {name} unpacks to {info.file_size} bytes, more than the "
                           f"{MAX_ENTRY_SIZE // 2**20} MiB a file of a plugin wheel may have; refusing the wheel")


def _chunks(wheel: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """An entry's bytes, a chunk at a time; data that cannot be unpacked is one
    error naming the entry."""
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as error:
        raise BackendError(f"{wheel.name}: {info.filename} cannot be unpacked ({error}); {DAMAGED}") from None


def _checked_chunks(archive: zipfile.ZipFile, entry: WheelEntry) -> Iterator[bytes]:
    """An entry's bytes a chunk at a time, proven at the end to be the ones its
    wheel was checked with (a file replaced in between is refused)."""
    digest = hashlib.sha256()
    for chunk in _chunks(entry.wheel, archive, entry.info):
        digest.update(chunk)
        yield chunk
    if digest.digest() != entry.sha256:
        raise BackendError(f"{entry.wheel.name}: {entry.info.filename} changed while it was read; run the command again")


def _record_digest(data: bytes, algorithm: str) -> str:
    return _encoded(hashlib.new(algorithm, data).digest())


def _encoded(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _only_dist_info(wheel: Path, names: Iterable[str]) -> None:
    """One .dist-info directory: which one would the merged wheel's metadata be?"""
    dist_infos = sorted({name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info") and "/" in name})
    if len(dist_infos) != 1:
        raise BackendError(f"{wheel.name} holds {len(dist_infos)} .dist-info directories ({', '.join(dist_infos)}); "
                           "a wheel holds exactly one: refusing it, merge only wheels this backend built")


def _record_rows(wheel: Path, archive: zipfile.ZipFile, record: zipfile.ZipInfo) -> dict[str, tuple[str, str]]:
    """RECORD as name -> (hash, size)."""
    if record.file_size > MAX_RECORD_SIZE:
        raise BackendError(f"{wheel.name}: its RECORD has {record.file_size} bytes, more than the "
                           f"{MAX_RECORD_SIZE // 2**20} MiB any plugin wheel's has; {DAMAGED}")
    try:
        rows = list(csv.reader(io.StringIO(b"".join(_chunks(wheel, archive, record)).decode())))
    except (UnicodeDecodeError, csv.Error) as error:
        raise BackendError(f"{wheel.name}: its RECORD cannot be read ({error}); {DAMAGED}") from None
    listed: dict[str, tuple[str, str]] = {}
    for row in filter(None, rows):
        name, hash_text, size = (row + ["", ""])[:3]
        if name in listed:
            raise BackendError(f"{wheel.name}: its RECORD lists {name} twice; {DAMAGED}")
        listed[name] = (hash_text, size)
    return listed


def _hashed(wheel: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, listed: tuple[str, str] | None) -> WheelEntry:
    """Read an entry through, checking it against its RECORD row (``None``: a file
    RECORD lists without a hash, its signatures)."""
    algorithm, _, expected = (listed or ("sha256=", ""))[0].partition("=")
    if listed and algorithm not in ("sha256", "sha384", "sha512"):
        raise BackendError(f"{wheel.name}: {info.filename} does not match the hash in its RECORD; {DAMAGED}")
    hashes = {"sha256": hashlib.sha256(), algorithm: hashlib.new(algorithm)}
    size = 0
    for chunk in _chunks(wheel, archive, info):
        size += len(chunk)
        for digest in hashes.values():
            digest.update(chunk)
    if listed and _encoded(hashes[algorithm].digest()) != expected:
        raise BackendError(f"{wheel.name}: {info.filename} does not match the hash in its RECORD; {DAMAGED}")
    if listed and listed[1] != str(size):
        raise BackendError(f"{wheel.name}: {info.filename} does not match the size in its RECORD; {DAMAGED}")
    return WheelEntry(wheel, info, size, hashes["sha256"].digest())


def wheel_entries(path: Path) -> dict[str, WheelEntry]:
    """Every file of the wheel but its RECORD, which is written anew, checked and
    hashed a chunk at a time. The wheel is untrusted (merge reads CI artifacts):
    unsafe names, links, duplicates, encrypted or oversized entries, data that
    cannot be unpacked and files that do not match its RECORD are refused before
    anything is written."""
    infos: dict[str, zipfile.ZipInfo] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                _safe_entry(path, info)
                if info.filename in infos:
                    raise BackendError(f"{path.name} holds {info.filename} twice; refusing it (which one would count?)")
                if not info.is_dir():
                    _readable_entry(path, info)
                    infos[info.filename] = info
            if sum(info.file_size for info in infos.values()) > MAX_WHEEL_SIZE:
                raise BackendError(f"{path.name} unpacks to more than the {MAX_WHEEL_SIZE // 2**30} GiB "
                                   "a plugin wheel may have; refusing it")
            _only_dist_info(path, infos)
            records = [name for name in infos if re.fullmatch(r"[^/]+\.dist-info/RECORD", name)]
            if len(records) != 1:
                raise BackendError(f"{path.name} has no RECORD (or several); it is no complete wheel: rebuild it")
            [record] = records
            listed = _record_rows(path, archive, infos[record])
            for name in listed:
                if name not in infos:
                    raise BackendError(f"{path.name}: its RECORD names {name}, which the wheel does not hold; {DAMAGED}")
            unhashed = {record, record + ".jws", record + ".p7s"}  # RECORD and its signatures carry no hash
            for name in infos:
                if name not in listed and name not in unhashed:
                    raise BackendError(f"{path.name}: {name} is not in its RECORD; {DAMAGED}")
            return {name: _hashed(path, archive, info, None if name in unhashed else listed[name])
                    for name, info in infos.items() if name != record}
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as error:
        raise BackendError(f"cannot read {path}: {error}") from None


def entry_bytes(entry: WheelEntry, limit: int) -> bytes:
    """A small file of a checked wheel (its WHEEL), read whole and proven to be the
    bytes it was checked with; one larger than ``limit`` is refused."""
    if entry.size > limit:
        raise BackendError(f"{entry.wheel.name}: {entry.info.filename} has {entry.size} bytes, more than the "
                           f"{limit} such a file of a wheel may have; {DAMAGED}")
    with zipfile.ZipFile(entry.wheel) as archive:
        return b"".join(_checked_chunks(archive, entry))


def read_wheel(path: Path) -> dict[str, bytes]:
    """Every file of the wheel but its RECORD, checked as wheel_entries() does and
    read whole: for the small changes made to a wheel this backend just wrote."""
    entries = wheel_entries(path)
    with zipfile.ZipFile(path) as archive:
        return {name: b"".join(_checked_chunks(archive, entry)) for name, entry in entries.items()}


def _entry_time(info: zipfile.ZipInfo) -> float:
    try:
        # wheel dates its entries in UTC (time.gmtime); timegm is the inverse.
        return calendar.timegm((*info.date_time, 0, 0, 0))
    except ValueError:  # month 0 or 13: a date no wheel writer sets, taken as zip's earliest
        return 315532800


def wheel_epoch(path: Path) -> float:
    """The newest timestamp inside a wheel, so a rewritten wheel keeps it
    (a reproducible input stays reproducible)."""
    with zipfile.ZipFile(path) as archive:
        return max(_entry_time(info) for info in archive.infolist())


def record_row(name: str, data: bytes) -> list[str]:
    """A RECORD row (PEP 376/427): the name, urlsafe base64 sha256 without padding, the size."""
    return [name, f"sha256={_record_digest(data, 'sha256')}", str(len(data))]


def record_text(rows: list[list[str]]) -> str:
    """RECORD rows as the CSV a RECORD is (names with commas or quotes are quoted)."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue()


def write_wheel(files: Mapping[str, bytes | WheelEntry], target: Path, epoch: float) -> None:
    """Write ``files`` (bytes, or entries of checked wheels, copied a chunk at a
    time) and a new RECORD, every entry dated ``epoch``, as the wheel ``target``,
    whole or not at all: files sorted, .dist-info last and RECORD at the very
    end, as wheel writers do."""
    [record] = {name.split("/")[0] + "/RECORD" for name in files if name.split("/")[0].endswith(".dist-info")}
    names = sorted(files, key=lambda name: (name.split("/")[0].endswith(".dist-info"), name))
    rows = [_row(name, files[name]) for name in names] + [[record, "", ""]]
    date_time = time.gmtime(max(epoch, 315532800))[:6]  # zip cannot date before 1980
    with written_aside(target) as partial, contextlib.ExitStack() as opened:
        archive = opened.enter_context(zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED))
        sources: dict[Path, zipfile.ZipFile] = {}
        for name, data in [*((name, files[name]) for name in names), (record, record_text(rows).encode())]:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.external_attr = (0o644 | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(data, bytes):
                archive.writestr(info, data)
                continue
            if data.wheel not in sources:
                sources[data.wheel] = opened.enter_context(zipfile.ZipFile(data.wheel))
            info.file_size = data.size  # as writestr sets it: the same bytes, and zip64 only when needed
            with archive.open(info, "w") as out:
                for chunk in _checked_chunks(sources[data.wheel], data):
                    out.write(chunk)


def _row(name: str, data: bytes | WheelEntry) -> list[str]:
    if isinstance(data, bytes):
        return record_row(name, data)
    return [name, f"sha256={_encoded(data.sha256)}", str(data.size)]
