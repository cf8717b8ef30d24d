"""`merge` reads CI artifacts: wheels it must treat as untrusted. A hostile or
damaged input is refused with one error line, before anything is written;
nothing lands outside -o, or in it. Entries are read a chunk at a time with
a size bound: no input makes merge hold a file whole."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from conftest import SAMPLE, build_wheel, clean_env, copy_project, make_venv, plugin_answer, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_wheels(tmp_path_factory, pip_uwsgi, debian_uwsgi) -> tuple[Path, Path]:
    """The sample built for two uWSGI ABIs on two 'CI jobs': the honest inputs of a merge."""
    root = tmp_path_factory.mktemp("honest")
    wheels = []
    for uwsgi in (pip_uwsgi, debian_uwsgi):
        out = root / f"out-{uwsgi.name}"
        build_wheel(copy_project(SAMPLE, root / f"p-{uwsgi.name}"), out, f"-Cuwsgi={uwsgi}",
                    env=clean_env(SOURCE_DATE_EPOCH="1700000000"))
        [wheel] = out.glob("*.whl")
        wheels.append(wheel)
    return wheels[0], wheels[1]


def record_line(name: str, data: bytes, size: int | None = None) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data) if size is None else size}"


def entries(wheel: Path) -> tuple[list[tuple[zipfile.ZipInfo, bytes]], str]:
    """Every entry of ``wheel`` but its RECORD, and the RECORD's name."""
    with zipfile.ZipFile(wheel) as archive:
        [record] = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        return [(info, archive.read(info)) for info in archive.infolist() if info.filename != record], record


def write(target: Path, items: list[tuple[zipfile.ZipInfo | str, bytes]], record_name: str | None,
          record: list[str]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), zipfile.ZipFile(target, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name written on purpose
        for info, data in items:
            archive.writestr(info, data)
        if record_name:
            archive.writestr(record_name, "\n".join([*record, f"{record_name},,"]) + "\n")
    return target


def hostile(honest: Path, target: Path, case: str, root: Path) -> Path:
    """A copy of ``honest`` made hostile or damaged in one way, its RECORD right in every other."""
    items, record_name = entries(honest)
    [shared_object] = [info.filename for info, _ in items if info.filename.endswith("hello_plugin.so")]
    build = shared_object.rsplit("/", 1)[0]
    extra: list[tuple[zipfile.ZipInfo | str, bytes]] = []
    if case == "dot-dot":
        extra = [(f"{build}/" + "../" * 40 + str(root / "PWNED").lstrip("/"), b"pwned")]
    elif case == "absolute":
        extra = [(str(root / "PWNED"), b"pwned")]
    elif case == "symlink":
        link = zipfile.ZipInfo(f"{build}/evil_plugin.so")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        extra = [(link, b"/etc/passwd")]
    elif case == "duplicate":
        extra = [(shared_object, b"\x7fELF another")]
    elif case == "other package's builds":
        extra = [("evil/uwsgi_builds/abi_x/evil_plugin.so", b"\x7fELF")]
    elif case == "not a build file":
        extra = [(f"{build}/sitecustomize.py", b"import os")]
    elif case == "nested in a build":
        extra = [(f"{build}/sub/evil_plugin.so", b"\x7fELF")]
    elif case == "real plugin without its loader":
        extra = [(f"{build}/evil_plugin.real.so", b"\x7fELF")]
    elif case == "two .dist-info directories":
        extra = [("uwsgi_plugin_hello-1.0.1.dist-info/METADATA", b"Metadata-Version: 2.1\nName: uwsgi-plugin-hello\n")]
    record = [record_line(info if isinstance(info, str) else info.filename, data) for info, data in [*items, *extra]]
    if case == "hash":
        items = [(info, data + b"\0" if info.filename == shared_object else data) for info, data in items]
    elif case == "size":
        record = [record_line(shared_object, dict((i.filename, d) for i, d in items)[shared_object], size=1)
                  if line.startswith(shared_object + ",") else line for line in record]
    elif case == "not in RECORD":
        record = [line for line in record if not line.startswith(shared_object + ",")]
    elif case == "RECORD names a missing file":
        record.append(record_line("uwsgi_plugin_hello/gone.py", b"gone"))
    write(target, [*items, *extra], None if case == "no RECORD" else record_name, record)
    if case == "encrypted":
        patch_entry(target, shared_object, flag_bits=0x1)
    elif case == "compression method 93":
        patch_entry(target, shared_object, method=93)  # zstd, which zipfile reads from Python 3.14 on
    elif case == "corrupt deflate data":
        assert dict((i.filename, i) for i, _ in items)[shared_object].compress_type == zipfile.ZIP_DEFLATED
        patch_entry(target, shared_object, first_data_byte=0b111)  # a last block of the reserved type 3
    elif case == "over 2 GiB in all":
        for info, _ in items[:5]:  # each below the bound for one file
            patch_entry(target, info.filename, file_size=480 * 2**20)
    return target


def patch_entry(wheel: Path, name: str, flag_bits: int = 0, method: int | None = None,
                first_data_byte: int | None = None, file_size: int | None = None) -> None:
    """Change the zip headers of ``name`` by hand, in its central directory record and its local
    header alike (zipfile writes no such entry): add general purpose flag bits, set the
    compression method or the size it claims to unpack to, or overwrite the first byte of its
    compressed data."""
    raw = bytearray(wheel.read_bytes())
    end = raw.rindex(b"PK\x05\x06")
    count, _, offset = struct.unpack_from("<HII", raw, end + 10)
    for _ in range(count):
        assert raw[offset:offset + 4] == b"PK\x01\x02"
        flags, compression = struct.unpack_from("<HH", raw, offset + 8)
        name_size, extra_size, comment_size = struct.unpack_from("<HHH", raw, offset + 28)
        [local] = struct.unpack_from("<I", raw, offset + 42)
        if raw[offset + 46:offset + 46 + name_size].decode() == name:
            new = (flags | flag_bits, compression if method is None else method)
            struct.pack_into("<HH", raw, offset + 8, *new)
            struct.pack_into("<HH", raw, local + 6, *new)
            if file_size is not None:
                struct.pack_into("<I", raw, offset + 24, file_size)
                struct.pack_into("<I", raw, local + 22, file_size)
            if first_data_byte is not None:
                local_name_size, local_extra_size = struct.unpack_from("<HH", raw, local + 26)
                raw[local + 30 + local_name_size + local_extra_size] = first_data_byte
            break
        offset += 46 + name_size + extra_size + comment_size
    else:
        raise AssertionError(f"{wheel.name} has no {name}")
    wheel.write_bytes(raw)


CASES = {
    "dot-dot": "leaves the wheel",
    "absolute": "leaves the wheel",
    "symlink": "is a symbolic link",
    "duplicate": "twice",
    "other package's builds": "differs between them",
    "not a build file": "only <NAME>_plugin.so, its <NAME>_plugin.real.so and build.json belong",
    "nested in a build": "only <NAME>_plugin.so, its <NAME>_plugin.real.so and build.json belong",
    "real plugin without its loader": "evil_plugin.real.so without the evil_plugin.so that loads it",
    "two .dist-info directories": "holds 2 .dist-info directories (uwsgi_plugin_hello-1.0.0.dist-info, uwsgi_plugin_hello-1.0.1.dist-info)",
    "encrypted": "hello_plugin.so is encrypted or patched (zip flag bits 0x0001)",
    "compression method 93": "hello_plugin.so is compressed with zip method 93; wheels are stored or deflated",
    "corrupt deflate data": "hello_plugin.so cannot be unpacked (Error -3 while decompressing data: invalid block type)",
    "over 2 GiB in all": "unpacks to more than the 2 GiB a plugin wheel may have; refusing it",
    "hash": "does not match the hash in its RECORD",
    "size": "does not match the size in its RECORD",
    "not in RECORD": "is not in its RECORD",
    "RECORD names a missing file": "names uwsgi_plugin_hello/gone.py, which the wheel does not hold",
    "no RECORD": "has no RECORD",
}


def merge(*args: Path | str) -> str:
    result = run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", *args], check=False, env=clean_env())
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("uwsgi-plugin-backend: error: "), result.stdout
    assert result.stdout.count("uwsgi-plugin-backend: error:") == 1 and "Traceback" not in result.stdout
    return result.stdout


@pytest.mark.parametrize("case", CASES)
def test_merge_refuses_a_hostile_or_damaged_input(tmp_path, two_wheels, case):
    honest, other = two_wheels
    evil = hostile(other, tmp_path / "evil" / other.name, case, tmp_path)
    for inputs in ((honest, evil), (evil, honest)):
        out = tmp_path / "merged"
        message = merge(*inputs, "-o", out)
        assert CASES[case] in message, message
        assert not out.exists() or not list(out.iterdir())
        assert not list(tmp_path.rglob("PWNED"))
    # The honest wheels still merge.
    merged = tmp_path / "honest-merged"
    run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", honest, other, "-o", merged], env=clean_env())
    assert len([n for n in zipfile.ZipFile(next(merged.glob("*.whl"))).namelist() if n.endswith("_plugin.so")]) == 2


def test_merge_output_below_a_file(tmp_path, two_wheels):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    message = merge(*two_wheels, "-o", afile / "sub")
    assert f"cannot write the output directory {afile / 'sub'}: Not a directory; {afile} is a file: -o names the directory" in message
    assert afile.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


# Two pyuwsgi releases with other ABI keys and one wheel tag under a given Python
# (2.0.30's wheels are manylinux_2_28, these are manylinux2014): the CI jobs of one release each.
PYUWSGI_RELEASES = ("2.0.28.post1", "2.0.29")


def test_merged_pyuwsgi_wheels_serve_from_each_pyuwsgi(tmp_path):
    """A pyuwsgi build ships a loader as hello_plugin.so and the plugin as hello_plugin.real.so:
    both of each build land in the merged wheel, and each pyuwsgi is served by its own."""
    venvs, wheels = [], []
    for release in PYUWSGI_RELEASES:
        venvs.append(make_venv(tmp_path / f"py uwsgi {release}", f"pyuwsgi=={release}"))
        out = tmp_path / f"out-{release}"
        build_wheel(copy_project(SAMPLE, tmp_path / f"p-{release}"), out, f"-Cuwsgi={venvs[-1].uwsgi}",
                    env=clean_env(SOURCE_DATE_EPOCH="1700000000"))
        [wheel] = out.glob("*.whl")
        wheels.append(wheel)
    run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", *wheels, "-o", tmp_path / "merged"], env=clean_env())
    [merged] = (tmp_path / "merged").glob("*.whl")
    assert merged.name == wheels[0].name
    names = zipfile.ZipFile(merged).namelist()
    builds = {name.rsplit("/", 1)[0] for name in names if name.startswith("uwsgi_plugin_hello/uwsgi_builds/")}
    assert len(builds) == 2
    for build in builds:
        assert sorted(name for name in names if name.startswith(build + "/")) == [
            f"{build}/build.json", f"{build}/hello_plugin.real.so", f"{build}/hello_plugin.so"]
    site = tmp_path / "site"
    run([sys.executable, "-m", "zipfile", "-e", merged, site])
    served_from = set()
    for release, venv in zip(PYUWSGI_RELEASES, venvs):
        directory = run([venv.python, "-m", "uwsgi_plugin_hello", "--uwsgi", venv.uwsgi],
                        env=clean_env(PYTHONPATH=str(site))).stdout.strip()
        served_from.add(directory)
        greeting = f"Hello merged, pyuwsgi {release}"
        assert plugin_answer(venv.uwsgi, directory, "hello", 250, tmp_path / f"log-{release}", "--hello-greeting", greeting) == greeting
    assert {str(site / build) for build in builds} == served_from


def with_zeros(honest: Path, target: Path, size: int) -> Path:
    """A copy of ``honest`` with one more file of ``size`` zero bytes, deflated (1 GiB
    makes a 1 MB wheel) and rightly in its RECORD, written a chunk at a time."""
    items, record_name = entries(honest)
    zeros, digest = bytes(2**20), hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        for info, data in items:
            archive.writestr(info, data)
        big = zipfile.ZipInfo("uwsgi_plugin_hello/zeros.bin", date_time=items[0][0].date_time)
        big.compress_type, big.file_size = zipfile.ZIP_DEFLATED, size
        with archive.open(big, "w") as out:
            for _ in range(size // len(zeros)):
                out.write(zeros)
                digest.update(zeros)
        hashed = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
        record = [*(record_line(info.filename, data) for info, data in items),
                  f"uwsgi_plugin_hello/zeros.bin,sha256={hashed},{size}", f"{record_name},,"]
        archive.writestr(record_name, "\n".join(record) + "\n")
    return target


def merge_peak_memory(*args: Path | str) -> tuple[int, str, int]:
    """Run merge; its exit status, output and peak resident memory in bytes (its own, by wait4)."""
    process = subprocess.Popen([sys.executable, "-m", "uwsgi_plugin_backend", "merge", *map(str, args)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env())
    with process.stdout:
        output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, output, usage.ru_maxrss * 1024  # Linux counts KiB


def test_merge_refuses_a_1_gib_entry_within_100_mb(tmp_path, two_wheels):
    honest, other = two_wheels
    bomb = with_zeros(other, tmp_path / "bomb" / other.name, 2**30)
    assert bomb.stat().st_size < 2 * 2**20
    status, output, peak = merge_peak_memory(honest, bomb, "-o", tmp_path / "merged")
    assert status == 1 and output.count("uwsgi-plugin-backend: error:") == 1 and "Traceback" not in output, output
    assert ("uwsgi-plugin-backend: error: " + f"{other.name}: uwsgi_plugin_hello/zeros.bin unpacks to 1073741824 bytes, "
            "more than the 512 MiB a file of a plugin wheel may have; refusing the wheel\n") == output
    assert peak < 100 * 2**20, peak
    assert not (tmp_path / "merged").exists()


def test_merge_streams_a_large_entry_within_100_mb(tmp_path, two_wheels):
    """An entry below the bound is hashed and copied a chunk at a time, never held whole."""
    size = 256 * 2**20
    large = [with_zeros(wheel, tmp_path / f"large-{index}" / wheel.name, size) for index, wheel in enumerate(two_wheels)]
    status, output, peak = merge_peak_memory(*large, "-o", tmp_path / "merged")
    assert status == 0, output
    assert peak < 100 * 2**20, peak
    with zipfile.ZipFile(tmp_path / "merged" / large[0].name) as merged:
        assert merged.getinfo("uwsgi_plugin_hello/zeros.bin").file_size == size
        record = merged.read("uwsgi_plugin_hello-1.0.0.dist-info/RECORD").decode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(bytes(size)).digest()).rstrip(b"=").decode()
    assert f"uwsgi_plugin_hello/zeros.bin,sha256={expected},{size}\n" in record
