"""The project's configuration: ``[project]`` and ``[tool.uwsgi-plugin]`` of
pyproject.toml, plus the backend's own config settings (``-C uwsgi=PATH``)."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from .errors import BackendError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - scikit-build-core depends on tomli there
    import tomli as tomllib

TABLE = "tool.uwsgi-plugin"
ConfigSettings = Mapping[str, Union[str, Sequence[str]]]


@dataclasses.dataclass(frozen=True)
class Option:
    """One key of ``[tool.uwsgi-plugin]``; the README's reference is made from these."""

    key: str
    kind: type  # str, bool, or list (a list of strings; a lone string is accepted where `one_or_more`)
    default: str
    help: str
    one_or_more: bool = False


OPTIONS = (
    Option("plugins", list, '`["."]`', "Directories (relative to pyproject.toml) holding a `uwsgiplugin.py`; each becomes `<NAME>_plugin.so` in the one wheel."),
    Option("package", str, "the project name, normalized (`uwsgi-plugin-hello` -> `uwsgi_plugin_hello`)", "The import package inside the wheel that holds the plugins and `plugin_dir()`."),
    Option("uwsgi", list, "the uwsgi beside the build's interpreter, then on PATH", "The uwsgi binary (or a list of them) to build for: a path (relative to pyproject.toml) or a command name looked up on PATH. The plugins are built once per distinct ABI key, into one wheel. `-C uwsgi=PATH` (may repeat) and `UWSGI_PLUGIN_BACKEND_UWSGI` take precedence.", one_or_more=True),
    Option("strip", bool, "`false`", "Strip debug information from the built plugins (`strip --strip-debug`); `-C strip=true` sets it for one build."),
    Option("allow-outside-sources", bool, "`false`", "Let `GCC_LIST` name files outside the plugin directory (`../common.c`, absolute paths); they are read where they are."),
    Option("ship-sources", bool, "`true`", "Carry the plugin sources and pyproject.toml in the wheel (`<package>/_sources/`), so that `uwsgi-plugin-backend build-missing <distribution>` can build for a uwsgi the wheel has no build for."),
    Option("pin-uwsgi", bool, "`false`", "Add `Requires-Dist` on the exact `uwsgi` or `pyuwsgi` release the plugins are built against (when the target binary belongs to one); needs `dynamic = [\"dependencies\"]` in `[project]`."),
)

# Config settings (-C KEY=VALUE) this backend reads itself; all others go to scikit-build-core.
OWN_SETTINGS = ("uwsgi", "strip", "jobs", "build-dir")
JOBS_ENV = "UWSGI_PLUGIN_BACKEND_JOBS"
KIND_NAMES = {str: "a string", list: "a list", bool: "a boolean", int: "an integer", float: "a number", dict: "a table"}


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
    root: Path
    pyproject: dict[str, Any]
    name: str
    package: str
    plugin_dirs: tuple[Path, ...]
    uwsgi: list[str]
    strip: bool
    pin_uwsgi: bool
    allow_outside_sources: bool
    ship_sources: bool = True

    @property
    def project(self) -> dict[str, Any]:
        return self.pyproject.get("project", {})


def load_pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise BackendError(f"no pyproject.toml in {root}") from None
    except tomllib.TOMLDecodeError as error:
        raise BackendError(f"{path} is not valid TOML: {error}") from None


def _describe(value: object) -> str:
    return f"{value!r} ({KIND_NAMES.get(type(value), type(value).__name__)})"


def _check_table(table: object) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise BackendError(f"[{TABLE}] must be a table, got {_describe(table)}")
    known = {option.key: option for option in OPTIONS}
    for key, value in table.items():
        option = known.get(key)
        if option is None:
            raise BackendError(
                f"unknown key {key!r} in [{TABLE}] of pyproject.toml; "
                f"known keys: {', '.join(sorted(known))}"
            )
        if option.kind is list:
            if option.one_or_more and isinstance(value, str):
                continue
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                either = "a string or " if option.one_or_more else ""
                raise BackendError(f"{TABLE}.{key} must be {either}a list of strings, got {_describe(value)}")
        elif type(value) is not option.kind:
            raise BackendError(f"{TABLE}.{key} must be {KIND_NAMES[option.kind]}, got {_describe(value)}")
    return table


def default_package(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _plugin_dirs(root: Path, entries: list[str]) -> tuple[Path, ...]:
    if not entries:
        raise BackendError(f"{TABLE}.plugins is empty; list at least one directory holding uwsgiplugin.py")
    dirs = []
    for entry in entries:
        path = (root / entry).resolve()
        if Path(entry).is_absolute() or not path.is_relative_to(root.resolve()):
            raise BackendError(
                f"{TABLE}.plugins entry {entry!r} is outside the project; "
                "give a directory relative to pyproject.toml, inside the project"
            )
        if not path.is_dir():
            raise BackendError(f"{TABLE}.plugins entry {entry!r}: no such directory {path}")
        dirs.append(path)
    return tuple(dirs)


def load_config(root: Path) -> ProjectConfig:
    """Read and validate pyproject.toml in ``root``."""
    pyproject = load_pyproject(root)
    project = pyproject.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise BackendError("pyproject.toml has no [project] table with a name; add [project] name = \"...\"")
    table = _check_table(pyproject.get("tool", {}).get("uwsgi-plugin", {}))
    package = table.get("package") or default_package(project["name"])
    if not package.isidentifier():
        raise BackendError(
            f"{TABLE}.package {package!r} is not a valid Python package name; "
            "set package = \"some_name\" in [tool.uwsgi-plugin]"
        )
    return ProjectConfig(
        root=root,
        pyproject=pyproject,
        name=project["name"],
        package=package,
        plugin_dirs=_plugin_dirs(root, table.get("plugins", ["."])),
        uwsgi=[table["uwsgi"]] if isinstance(table.get("uwsgi"), str) else table.get("uwsgi", []),
        strip=table.get("strip", False),
        pin_uwsgi=table.get("pin-uwsgi", False),
        allow_outside_sources=table.get("allow-outside-sources", False),
        ship_sources=table.get("ship-sources", True),
    )


def setting_values(config_settings: ConfigSettings | None, key: str) -> list[str]:
    """All values given for one config setting (-C KEY=V may repeat)."""
    value = (config_settings or {}).get(key)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def setting_flag(config_settings: ConfigSettings | None, key: str, default: bool) -> bool:
    """A yes/no config setting (-C strip=true), or ``default`` when not given."""
    values = setting_values(config_settings, key)
    if not values:
        return default
    value = values[-1].strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise BackendError(f"-C {key}={values[-1]} is not a yes/no value; use -C {key}=true or -C {key}=false")


def verbose_setting(config_settings: ConfigSettings | None) -> bool:
    """Every compiler command in the log: -C build.verbose=true (scikit-build-core's
    name) or $UWSGI_PLUGIN_BACKEND_VERBOSE."""
    return setting_flag(config_settings, "build.verbose", bool(os.environ.get("UWSGI_PLUGIN_BACKEND_VERBOSE")))


def jobs_setting(config_settings: ConfigSettings | None) -> int:
    """How many compilers run at once: -C jobs=N, $UWSGI_PLUGIN_BACKEND_JOBS, else the usable cores."""
    values = setting_values(config_settings, "jobs")
    text = values[-1] if values else os.environ.get(JOBS_ENV)
    if not text:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not text.strip().isdecimal() or int(text) < 1:
        source = "-C jobs" if values else f"${JOBS_ENV}"
        raise BackendError(f"{source}={text!r} is not a number of jobs; give a whole number of at least 1")
    return int(text)


def foreign_settings(config_settings: ConfigSettings | None) -> dict[str, str | list[str]]:
    """The config settings meant for scikit-build-core (all but ours)."""
    return {
        key: value if isinstance(value, str) else list(value)
        for key, value in (config_settings or {}).items()
        if key not in OWN_SETTINGS
    }


def reference_table() -> str:
    """The README's `[tool.uwsgi-plugin]` reference, made from OPTIONS (a test keeps them equal)."""
    kinds = {str: "string", bool: "boolean", list: "list of strings"}
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for option in OPTIONS:
        kind = "string or list of strings" if option.one_or_more else kinds[option.kind]
        rows.append(f"| `{option.key}` | {kind} | {option.default} | {option.help} |")
    return "\n".join(rows) + "\n"
