"""The backend's settings in one typed model: ``[tool.uwsgi-plugin]`` of
pyproject.toml, config settings (``-C KEY=VALUE``) and ``UWSGI_PLUGIN_BACKEND_*``
environment variables.

Precedence, the same for every option: ``-C KEY=VALUE``, then the environment
variable, then ``[tool.uwsgi-plugin]``, then the default. Each hook calls
``load_settings`` once, before anything is compiled, and hands the result
down; nothing below the hooks reads config settings, pyproject.toml or the
environment's settings again. Config settings that are not ours go to
scikit-build-core; a key known to neither is an error with the closest match.
An option is a field of the model (``option()`` says where it may be given),
and the docstring under the field is its help: the reference table in
docs/reference.md and the JSON schema are written from them,
``python -m uwsgi_plugin_backend.settings.reference``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from ..cache import CacheDir
from ..errors import BackendError
from ..locking import TIMEOUT_ENV as LOCK_TIMEOUT_ENV
from ..runtime_api import CACHE_ENV
from ..runtime_api import ENV_VAR as UWSGI_ENV

# How long a uwsgi binary may take to answer a question (the setting uwsgi-timeout).
UWSGI_TIMEOUT_ENV = "UWSGI_PLUGIN_BACKEND_UWSGI_TIMEOUT"

if sys.version_info >= (3, 11):
    import tomllib
else:  # a declared dependency there (pyproject.toml)
    import tomli as tomllib

TABLE = "tool.uwsgi-plugin"
ENTRY_POINT_GROUP = "uwsgi.plugins"
ConfigSettings = Mapping[str, Union[str, Sequence[str]]]
KIND_NAMES = {str: "a string", list: "a list", bool: "a boolean", int: "an integer", float: "a number", dict: "a table"}


class Described(str):
    """A default the build works out (from the project, the machine): how the reference describes it."""


@dataclasses.dataclass(frozen=True)
class Option:
    """One setting and where it may be given: a key of ``[tool.uwsgi-plugin]``,
    a ``-C`` key, an environment variable, or several of them."""

    key: str
    kind: type  # str, bool, int, float or list (of strings)
    default: object  # the value when nothing gives one, or Described: worked out by the build
    pyproject: bool = False
    config: str | None = None
    env: str | None = None
    one_or_more: bool = False  # a list where a lone string is accepted

    @property
    def shown_default(self) -> str:
        """The default as the reference table shows it."""
        if isinstance(self.default, Described):
            return str(self.default)
        return f"`{self.default:g}`" if isinstance(self.default, float) else f"`{json.dumps(self.default)}`"


def option(key: str, kind: type, default: object, **where: Any) -> Any:
    """A field of the model that a user sets, and where (an Option); the docstring under it is its help."""
    return dataclasses.field(metadata={"option": Option(key, kind, default, **where)})


@dataclasses.dataclass(frozen=True)
class MachineSettings:
    """What the environment alone sets, for every project and command on this
    machine: where the cache is, and how long to wait."""

    cache_dir: CacheDir = option(
        "cache-dir", str, Described("`$XDG_CACHE_HOME/uwsgi-plugin-backend`, else `~/.cache/uwsgi-plugin-backend`"),
        env=CACHE_ENV)
    """Where build kits, compiled loaders, ABI keys and editable builds are cached (also read by installed plugin wheels)."""
    uwsgi_timeout: float = option("uwsgi-timeout", float, 60.0, env=UWSGI_TIMEOUT_ENV)
    """Seconds a uwsgi binary may take to answer `--version`, `--cflags`, `--dot-h`, `--config-py`
    (and pyuwsgi's Python, where its module is)."""
    lock_timeout: float = option("lock-timeout", float, 600.0, env=LOCK_TIMEOUT_ENV)
    """Seconds a build waits for another build using the same build directory or cache entry."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a build needs to know, parsed and checked: what it reads of
    pyproject.toml besides its own table, what is worked out from the options,
    the machine's settings and scikit-build-core's; then the options, in the
    order of the reference (a field that is an option has no default, whatever
    a type checker reads into ``= option(...)``)."""

    root: Path
    name: str  # [project] name
    dynamic: tuple[str, ...]  # [project] dynamic: the fields a build provides
    entry_points: dict[str, str]  # [project.entry-points."uwsgi.plugins"]: plugin NAME -> object reference
    metadata_files: tuple[str, ...]  # the files that [project] readme and license name
    license_files: tuple[str, ...] | None  # [project] license-files; None: PEP 639's default patterns
    sdist_exclude: tuple[str, ...]  # [tool.scikit-build] sdist.exclude, which -C sdist.exclude replaces
    uwsgi_origin: str  # where `uwsgi` was given ("-C uwsgi", ...), "" for the default
    uwsgi_base: Path  # relative uwsgi paths are relative to this
    machine: MachineSettings  # the environment's own settings, which commands outside a project read too
    skbuild: dict[str, str | list[str]]  # config settings for scikit-build-core
    given: dict[str, str | list[str]]  # the config settings as given, for an editable install to remember
    plugin_dirs: tuple[Path, ...] = option("plugins", list, ["."], pyproject=True)
    """Directories (relative to pyproject.toml) holding a `uwsgiplugin.py`; each becomes `<NAME>_plugin.so` in the one wheel."""
    package: str = option(
        "package", str, Described("the project name, normalized (`uwsgi-plugin-hello` -> `uwsgi_plugin_hello`)"),
        pyproject=True)
    """The import package inside the wheel that holds the plugins and `plugin_dir()`."""
    uwsgi: tuple[str, ...] = option(
        "uwsgi", list, Described("the uwsgi beside the build's interpreter (or the one that started the build), then on PATH"),
        pyproject=True, config="uwsgi", env=UWSGI_ENV, one_or_more=True)
    """The uwsgi binary (or a list of them) to build for: an absolute path (best: frontends run the build in the
    project directory, so a relative one in `-C` or the environment is taken from pyproject.toml's directory too)
    or a command name looked up on PATH. The plugins are built once per distinct ABI key, into one wheel.
    `-C uwsgi` may repeat."""
    strip: bool = option("strip", bool, False, pyproject=True, config="strip")
    """Strip debug information from the built plugins (`strip --strip-debug`)."""
    allow_outside_sources: bool = option("allow-outside-sources", bool, False, pyproject=True)
    """Let `GCC_LIST` name files outside the project, the directory holding pyproject.toml (files beside the plugin
    directory but inside the project need nothing); they are read where they are."""
    ship_sources: bool = option("ship-sources", bool, True, pyproject=True)
    """Carry the plugin sources and pyproject.toml in the wheel (`<package>/_sources/`), so that
    `uwsgi-plugin-backend build-missing <distribution>` can build for a uwsgi the wheel has no build for."""
    pin_uwsgi: bool = option("pin-uwsgi", bool, False, pyproject=True)
    """Add `Requires-Dist` on the exact `uwsgi` or `pyuwsgi` release the plugins are built against (when the
    target binary belongs to one); needs `dynamic = ["dependencies"]` in `[project]`."""
    abi_variants: tuple[str, ...] = option("abi-variants", list, (), pyproject=True, config="abi-variants",
                                           env="UWSGI_PLUGIN_BACKEND_ABI_VARIANTS", one_or_more=True)
    """Also build the plugins for the other feature sets a uwsgi of the same release could have: `"all"` for those
    pip's uWSGI turns on by what is installed (`ssl`; `pcre`: PCRE or PCRE2 with routing, or neither; `zlib`;
    `libcap`), or a list of those names and of macros of uwsgi.h (`UWSGI_DEBUG_BUFFER`: with and without). Each
    feature set gets its own ABI key and build in the wheel; one that cannot be built here is skipped, with a log
    line saying why. `-C abi-variants=ssl,pcre`."""
    jobs: int = option("jobs", int, Described("the usable cores"), config="jobs", env="UWSGI_PLUGIN_BACKEND_JOBS")
    """How many compilers run at once."""
    build_dir: Path | None = option(
        "build-dir", str, Described("a temporary directory (editable installs: one per project in the cache)"),
        config="build-dir")
    """A build directory kept between builds: unchanged objects are reused, and the last wheel when nothing changed."""
    verbose: bool = option("verbose", bool, False, config="build.verbose", env="UWSGI_PLUGIN_BACKEND_VERBOSE")
    """Log every compiler command (`-C build.verbose`, scikit-build-core's name, is passed on to it too)."""


def option_fields(model: type) -> list[tuple[str, Option]]:
    """The fields of ``model`` that are options: (field name, Option), in order."""
    return [(field.name, field.metadata["option"]) for field in dataclasses.fields(model) if "option" in field.metadata]


MODELS = (Settings, MachineSettings)  # the reference's order: the project's options, then the machine's
OPTIONS = tuple(option for model in MODELS for _, option in option_fields(model))
BY_CONFIG = {option.config: option for option in OPTIONS if option.config}
# -C keys that are ours and still passed on, because scikit-build-core knows them too.
SHARED_CONFIG = ("build.verbose",)


def option_help() -> dict[str, str]:
    """Each option's help: the docstring under its field, read from this file
    (by the reference and the schema; a build never needs it)."""
    import ast

    docs: dict[str, str] = {}
    for node in ast.parse(Path(__file__).read_text()).body:
        if isinstance(node, ast.ClassDef):
            for field, after in zip(node.body, node.body[1:]):
                if (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
                        and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)):
                    docs[f"{node.name}.{field.target.id}"] = " ".join(str(after.value.value).split())
    return {option.key: docs[f"{model.__name__}.{name}"] for model in MODELS for name, option in option_fields(model)}


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


def _close(word: str, candidates: list[str]) -> str:
    import difflib  # late: only a mistyped key needs it

    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _check_table(table: object) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise BackendError(f"[{TABLE}] must be a table, got {_describe(table)}")
    known = {option.key: option for option in OPTIONS if option.pyproject}
    for key, value in table.items():
        option = known.get(key)
        if option is None:
            raise BackendError(
                f"unknown key {key!r} in [{TABLE}] of pyproject.toml{_close(key, list(known))} "
                f"(known keys: {', '.join(sorted(known))})"
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


def _convert(option: Option, text: str, source: str) -> object:
    """A -C or environment value (always text) as the option's kind."""
    if option.kind is bool:
        value = text.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise BackendError(f"{source}={text!r} is not a yes/no value; use true or false")
    if option.kind is int:
        if not text.strip().isdecimal() or int(text) < 1:
            raise BackendError(f"{source}={text!r} is not a whole number of at least 1")
        return int(text)
    if option.kind is float:
        try:
            return float(text)
        except ValueError:
            raise BackendError(f"{source}={text!r} is not a number") from None
    return text


def _config_values(config_settings: ConfigSettings, key: str) -> list[str]:
    value = config_settings.get(key)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def resolve(option: Option, config_settings: ConfigSettings, table: dict[str, Any]) -> tuple[object, str]:
    """The option's value and where it came from: -C, then the environment, then
    pyproject.toml, then its default ("" as the origin; None when the build works it out)."""
    if option.config:
        values = _config_values(config_settings, option.config)
        if values:
            source = f"-C {option.config}"
            if option.kind is list:
                return values, source
            return _convert(option, values[-1], source), source
    if option.env and os.environ.get(option.env):
        source = f"${option.env}"
        text = os.environ[option.env]
        return ([text] if option.kind is list else _convert(option, text, source)), source
    if option.pyproject and option.key in table:
        value = table[option.key]
        return ([value] if option.kind is list and isinstance(value, str) else value), f"{TABLE}.{option.key} in pyproject.toml"
    return (None if isinstance(option.default, Described) else option.default), ""


def refuse_nul(value: object, source: str) -> None:
    """A NUL byte ends a C string, so no path, name or flag can hold one: every
    os call refuses it with a ValueError, a traceback if it got that far."""
    for text in value if isinstance(value, list) else [value]:
        if isinstance(text, str) and "\0" in text:
            raise BackendError(f"{source} holds a NUL byte ({text!r}); no path or name can hold one: remove it")


def check_config_keys(config_settings: ConfigSettings) -> None:
    """Refuse a -C key that neither this backend nor scikit-build-core knows,
    before anything is compiled (scikit-build-core itself finds out only when
    it writes the wheel)."""
    foreign = [key for key in config_settings if key not in BY_CONFIG and not key.startswith("-")]
    if not foreign:
        return
    exact, prefixes = skbuild_keys()
    for key in foreign:
        bare = key.removeprefix("skbuild.")
        if bare in exact or any(bare.startswith(prefix) for prefix in prefixes):
            continue
        raise BackendError(
            f"unknown config setting -C {key}{_close(key, [*BY_CONFIG, *exact])} "
            f"(uwsgi-plugin-backend reads {', '.join(sorted(BY_CONFIG))}; any other key must be one of scikit-build-core's)"
        )


def skbuild_keys() -> tuple[set[str], set[str]]:
    """scikit-build-core's config setting names, from its settings model (the
    dataclasses its documentation is made from): exact keys, and prefixes of
    keys that take any suffix (``cmake.define.NAME``)."""
    import typing

    from scikit_build_core.settings.skbuild_model import ScikitBuildSettings

    exact: set[str] = set()
    prefixes: set[str] = set()

    def walk(model: type, prefix: str) -> None:
        hints = typing.get_type_hints(model)
        for field in dataclasses.fields(model):
            name = prefix + field.name.replace("_", "-")
            hint = hints[field.name]
            if dataclasses.is_dataclass(hint):
                walk(hint, name + ".")  # type: ignore[arg-type]
                continue
            exact.add(name)
            if "dict[" in str(hint):
                prefixes.add(name + ".")

    walk(ScikitBuildSettings, "")
    return exact, prefixes


def _check_dynamic(pyproject: dict[str, Any]) -> None:
    """A dynamic version needs a provider; scikit-build-core would say so only
    after every plugin is compiled, with a traceback."""
    project = pyproject["project"]
    if "version" not in project.get("dynamic", []) or "version" in project:
        return
    if "version" not in pyproject.get("tool", {}).get("scikit-build", {}).get("metadata", {}):
        raise BackendError(
            'pyproject.toml lists "version" in [project] dynamic, but nothing provides it; set version = "1.0.0" '
            "in [project] (and drop it from dynamic), or name a provider:\n\n[tool.scikit-build.metadata.version]\n"
            'provider = "scikit_build_core.metadata.regex"\ninput = "version.txt"\nregex = \'(?P<value>.+)\'\n'
        )


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


def _abi_variants(items: list[str], source: str) -> tuple[str, ...]:
    """-C gives one value (``ssl,pcre``), pyproject.toml a list; "none" alone means none."""
    names = tuple(dict.fromkeys(name.strip() for item in items for name in item.split(",") if name.strip()))
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or (name in ("all", "none") and len(names) > 1):
            raise BackendError(
                f"{source or TABLE + '.abi-variants'}: {name!r} is not a variant name; give \"all\", \"none\", or feature "
                "names (ssl, pcre, zlib, libcap) and uwsgi.h macros (UWSGI_DEBUG_BUFFER), e.g. -C abi-variants=ssl,pcre"
            )
    return () if names in ((), ("none",)) else names


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _values(options: Sequence[Option], given: ConfigSettings, table: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Each option's value and where it came from (resolve), NUL bytes refused."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for option in options:
        values[option.key], origins[option.key] = resolve(option, given, table)
        refuse_nul(values[option.key], origins[option.key])
    return values, origins


def load_machine_settings() -> MachineSettings:
    """The environment's own settings: for a build (load_settings), and for the
    commands that need no project (info, build-missing)."""
    values, _ = _values([option for _, option in option_fields(MachineSettings)], {}, {})
    return MachineSettings(cache_dir=CacheDir(values["cache-dir"]), uwsgi_timeout=values["uwsgi-timeout"],
                           lock_timeout=values["lock-timeout"])


def _named_files(project: dict[str, Any]) -> tuple[str, ...]:
    """The files [project] names: its readme (a path, or a table's ``file``), its
    license when a table's ``file`` (a license string is an SPDX expression)."""
    readme, license_ = project.get("readme"), project.get("license")
    named = [readme.get("file") if isinstance(readme, dict) else readme,
             license_.get("file") if isinstance(license_, dict) else None]
    return tuple(name for name in named if isinstance(name, str))


def _strings(value: object) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _table(parent: object, *keys: str) -> dict[str, Any]:
    """The table at ``keys`` below ``parent``, else an empty one (scikit-build-core checks its shape)."""
    for key in keys:
        parent = parent.get(key) if isinstance(parent, dict) else None
    return parent if isinstance(parent, dict) else {}


def load_settings(root: Path, config_settings: ConfigSettings | None = None,
                  machine: MachineSettings | None = None) -> Settings:
    """Read pyproject.toml in ``root``, the config settings and the environment
    (unless the caller read the ``machine``'s settings already), and check them all."""
    given = {key: value if isinstance(value, str) else list(value) for key, value in (config_settings or {}).items()}
    check_config_keys(given)
    for key, value in given.items():  # scikit-build-core's keys too
        refuse_nul(value, f"-C {key}")
    pyproject = load_pyproject(root)
    project = pyproject.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise BackendError("pyproject.toml has no [project] table with a name; add [project] name = \"...\"")
    _check_dynamic(pyproject)
    table = _check_table(pyproject.get("tool", {}).get("uwsgi-plugin", {}))
    values, origins = _values([option for _, option in option_fields(Settings)], given, table)
    package = values["package"] or default_package(project["name"])
    if not isinstance(package, str) or not package.isidentifier():
        raise BackendError(
            f"{TABLE}.package {package!r} is not a valid Python package name; "
            "set package = \"some_name\" in [tool.uwsgi-plugin]"
        )
    build_dir = values["build-dir"]
    license_files = project.get("license-files")
    return Settings(
        root=root,
        name=project["name"],
        dynamic=_strings(project.get("dynamic")),
        entry_points=_table(project, "entry-points", ENTRY_POINT_GROUP),
        metadata_files=_named_files(project),
        license_files=_strings(license_files) if isinstance(license_files, list) else None,
        sdist_exclude=_strings(_table(pyproject, "tool", "scikit-build", "sdist").get("exclude")),
        package=package,
        plugin_dirs=_plugin_dirs(root, values["plugins"]),
        uwsgi=tuple(values["uwsgi"] or ()),
        uwsgi_origin=origins["uwsgi"],
        uwsgi_base=root if origins["uwsgi"].startswith(TABLE) else Path.cwd(),
        strip=bool(values["strip"]),
        allow_outside_sources=bool(values["allow-outside-sources"]),
        pin_uwsgi=bool(values["pin-uwsgi"]),
        ship_sources=bool(values["ship-sources"]),
        abi_variants=_abi_variants(values["abi-variants"], origins["abi-variants"]),
        jobs=values["jobs"] or _usable_cores(),
        build_dir=Path(build_dir).absolute() if isinstance(build_dir, str) else None,
        verbose=bool(values["verbose"]),
        machine=machine or load_machine_settings(),
        skbuild={key: value for key, value in given.items() if key not in BY_CONFIG or key in SHARED_CONFIG},
        given=given,
    )
