"""Join plugin wheels built on different machines (one CI job per uWSGI
version, pyuwsgi or distribution) into one wheel that carries every build.
Their tags may differ within one platform family (merge_tags.py); the merged
WHEEL file's Tag lines and the RECORD are written anew."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from ..cache import writable_directory
from ..errors import BackendError
from ..runtime_api import BUILDS_DIR as RUNTIME_BUILDS_DIR
from ..target_uwsgi.abi import build_dir_name, fit_digest
from ..wheel.files import WheelEntry, entry_bytes, wheel_entries, wheel_epoch, write_wheel
from .merge_tags import merged_tags

BUILDS_DIR = RUNTIME_BUILDS_DIR.name  # the directory the runtime module reads
MAX_WHEEL_FILE = 64 * 2**10  # a WHEEL file has a few lines; it is read whole
MAX_BUILD_RECORD = 4 * 2**20  # a build.json: some kB


# A build holds build.json and each plugin as <NAME>_plugin.so; where that is a
# loader that opens the plugin itself (pyuwsgi builds; every build, issue 21),
# the plugin lies beside it as <NAME>_plugin.real.so.
BUILD_FILE = re.compile(r"^(build\.json|[A-Za-z_][A-Za-z0-9_]*_plugin(\.real)?\.so)$")


def _package(wheel: Path, files: dict[str, WheelEntry]) -> str:
    """The import package: the one directory holding the runtime module."""
    packages = [name.split("/")[0] for name in files if re.fullmatch(r"[^/]+/_uwsgi_plugin\.py", name)]
    if len(packages) != 1:
        raise BackendError(f"{wheel.name} is not a plugin wheel of this backend: it holds no one <package>/_uwsgi_plugin.py")
    return packages[0]


def _build_of(name: str, package: str) -> str | None:
    """``<package>/uwsgi_builds/<build>/<file>`` -> ``<package>/uwsgi_builds/<build>``, else None."""
    parts = PurePosixPath(name).parts
    return "/".join(parts[:3]) if parts[:2] == (package, BUILDS_DIR) else None


def _check_builds(wheel: Path, files: dict[str, WheelEntry], package: str) -> None:
    """A build directory holds build.json and <NAME>_plugin.so files, each perhaps
    with its <NAME>_plugin.real.so, nothing else."""
    for name in files:
        parts = PurePosixPath(name).parts
        if _build_of(name, package) and (
            len(parts) != 4 or not re.fullmatch(r"abi_\w+", parts[2]) or not BUILD_FILE.match(parts[3])
        ):
            raise BackendError(
                f"{wheel.name} holds {name}: only <NAME>_plugin.so, its <NAME>_plugin.real.so and build.json belong in "
                f"{package}/{BUILDS_DIR}/abi_<key>/; refusing it: merge only wheels this backend built"
            )
        loader = name.removesuffix(".real.so") + ".so"
        if name.endswith("_plugin.real.so") and _build_of(name, package) and loader not in files:
            raise BackendError(
                f"{wheel.name} holds {name} without the {PurePosixPath(loader).name} that loads it; "
                "refusing it: merge only wheels this backend built"
            )


def _identity(path: Path) -> tuple:
    try:
        name, version, build, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename as error:
        raise BackendError(f"{path} is not a wheel: {error}") from None
    return name, version, build, frozenset(tags)


def _files_of(files: dict[str, WheelEntry], build: str) -> dict[str, WheelEntry]:
    return {name: entry for name, entry in files.items() if name.startswith(build + "/")}


def _record(files: dict[str, WheelEntry], build: str) -> dict:
    entry = files.get(build + "/build.json")
    try:
        record = json.loads(entry_bytes(entry, MAX_BUILD_RECORD)) if entry else None
    except (ValueError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict):
        raise BackendError(f"{build}/build.json is missing or not a JSON object in {next(iter(files.values())).wheel.name}; "
                           "refusing it: merge only wheels this backend built")
    return record


def _beside(build: str, kept: dict[str, WheelEntry], incoming: dict[str, WheelEntry], path: Path) -> str:
    """Where ``incoming``, a build in ``build`` of ``path`` other than the one merged
    there, goes: a directory of its own when it is another ABI of the same key (it
    serves other binaries); the same ``build`` (and a refusal) when it is not."""
    ours, theirs = _record(kept, build), _record(incoming, build)
    if ours.get("abi_key") != theirs.get("abi_key") or fit_digest(ours) == fit_digest(theirs):
        return build
    return f"{build.rsplit('/', 1)[0]}/{build_dir_name(str(theirs['abi_key']), fit_digest(theirs))}"


def _real_over_variant(build: str, kept: dict[str, WheelEntry], incoming: dict[str, WheelEntry]) -> bool | None:
    """When one of two builds of ``build`` is an abi-variant and the other was made for
    a real uwsgi of that feature set (they serve the same binaries): whether ``incoming``
    is the real one, to keep. None when that is not the case."""
    ours, theirs = _record(kept, build), _record(incoming, build)
    if fit_digest(ours) != fit_digest(theirs) or ("variant" in ours) == ("variant" in theirs):
        return None
    return "variant" in ours


def merge_wheels(wheels: list[Path], output_dir: Path) -> Path:
    """Write one wheel holding every uWSGI build of ``wheels`` into ``output_dir``."""
    if len(wheels) < 2:
        raise BackendError("merge needs at least two wheels")
    identities = {path: _identity(path) for path in wheels}
    first = wheels[0]
    for path, identity in identities.items():
        for label, index in (("project", 0), ("version", 1), ("build tag", 2)):
            if identity[index] != identities[first][index]:
                raise BackendError(
                    f"cannot merge {first.name} and {path.name}: their {label} differ; "
                    "merge only builds of the same project version"
                )
    tag_text, tags = merged_tags({path: identity[3] for path, identity in identities.items()})
    # Every input is read through and checked before anything is compared or written;
    # the files stay in the inputs, known by size and hash, until they are copied.
    inputs = {path: wheel_entries(path) for path in wheels}
    package = _package(first, inputs[first])
    for path, files in inputs.items():
        _check_builds(path, files, package)
    # Its Tag lines differ between the inputs, and are written anew (wheel_entries() made sure of one .dist-info).
    wheel_file = next(name.split("/")[0] for name in inputs[first] if name.split("/")[0].endswith(".dist-info")) + "/WHEEL"
    merged = dict(inputs[first])
    for path in wheels[1:]:
        files = inputs[path]
        for name in sorted(set(merged) | set(files)):
            build = _build_of(name, package)
            if build is None and name != wheel_file and merged.get(name) != files.get(name):
                raise BackendError(
                    f"cannot merge {first} and {path}: {name} differs between them "
                    "(only their uwsgi_builds/ may differ; were they built from the same source?)"
                )
        for build in sorted({b for b in (_build_of(n, package) for n in files) if b}):
            incoming = _files_of(files, build)
            if any(n.startswith(build + "/") for n in merged) and _files_of(merged, build) != incoming:
                # One ABI key, other binaries served: kept beside, as a build keeps them (plugin_build.builds).
                beside = _beside(build, _files_of(merged, build), incoming, path)
                incoming = {beside + name[len(build):]: entry for name, entry in incoming.items()}
                build = beside
            if any(n.startswith(build + "/") for n in merged):
                kept = _files_of(merged, build)
                real = _real_over_variant(build, kept, incoming) if kept != incoming else False
                if real:
                    merged = {name: entry for name, entry in merged.items() if name not in kept}
                    merged.update(incoming)
                elif real is None:
                    raise BackendError(
                        f"cannot merge {path}: it carries {build} (the same ABI key) with other "
                        f"contents than {next(iter(kept.values())).wheel}; rebuild one of them"
                    )
                continue
            merged.update(incoming)
    named = {path: {str(tag) for tag in identity[3]} for path, identity in identities.items()}
    metadata = wheel_metadata({path: inputs[path].get(wheel_file) for path in wheels}, named, wheel_file, tags)
    target = output_dir / f"{first.name.removesuffix('.whl').rsplit('-', 3)[0]}-{tag_text}.whl"  # name-version[-build]
    if target.resolve() in {path.resolve() for path in wheels}:
        raise BackendError(f"the merged wheel would overwrite its input {target}; choose another -o directory")
    _output_directory(output_dir)
    try:
        write_wheel({**merged, wheel_file: metadata}, target, max(wheel_epoch(path) for path in wheels))
    except OSError as error:
        raise BackendError(f"cannot write {target}: {error.strerror or error}; pass -o a directory you can write") from None
    return target


def wheel_metadata(entries: dict[Path, WheelEntry | None], named: dict[Path, set[str]], name: str, tags: list[str]) -> bytes:
    """The merged wheel's WHEEL file: the inputs' (alike but for their Tag lines, which must
    be the tags ``named`` by each one's file name), with ``tags`` where their Tag lines were."""
    texts = {}
    for path, entry in entries.items():
        if entry is None:
            raise BackendError(f"{path.name} has no {name}; it is no complete wheel: rebuild it")
        try:
            texts[path] = entry_bytes(entry, MAX_WHEEL_FILE).decode()
        except UnicodeDecodeError:
            raise BackendError(f"{path.name}: its {name} is not UTF-8 text; refusing it: merge only wheels this backend built") from None
    others = {path: [line for line in text.splitlines(keepends=True) if not line.startswith("Tag:")] for path, text in texts.items()}
    for path, text in texts.items():
        listed = {line.removeprefix("Tag:").strip() for line in text.splitlines() if line.startswith("Tag:")}
        if listed != named[path]:
            raise BackendError(f"{path.name}: its {name} lists the tags {', '.join(sorted(listed)) or 'none'}, not those of "
                               "its file name (was it renamed?); refusing it: merge only wheels as this backend wrote them")
    first, *rest = entries
    for path in rest:
        if others[path] != others[first]:
            raise BackendError(f"cannot merge {first.name} and {path.name}: their {name} differ in more than their tags "
                               "(built by other versions of the backend?); build them with one version")
    lines = texts[first].splitlines(keepends=True)
    at = next((index for index, line in enumerate(lines) if line.startswith("Tag:")), len(lines))
    ending = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    return "".join([*others[first][:at], *(f"Tag: {tag}{ending}" for tag in tags), *others[first][at:]]).encode()


def _output_directory(output_dir: Path) -> None:
    """Make -o; a file in its way is named (-o afile/sub)."""
    in_the_way = next((p for p in [*reversed(output_dir.parents), output_dir] if p.exists() and not p.is_dir()), None)
    fix = (f"{in_the_way} is a file: " if in_the_way else "") + (
        "-o names the directory to write the merged wheel into (created if missing): pass a directory, e.g. -o dist")
    writable_directory(output_dir, f"cannot write the output directory {output_dir}", fix)
