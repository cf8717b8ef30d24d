"""Fuzzing with hypothesis: the config parser, the ABI-key parser of CFLAGS and
uwsgi.h, and wheel merging never fail but with the backend's own clear errors."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from conftest import abi_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uwsgi_plugin_backend.errors import BackendError
from uwsgi_plugin_backend.cli.merge import merge_wheels
from uwsgi_plugin_backend.runtime import _uwsgi_plugin as runtime
from uwsgi_plugin_backend.settings import OPTIONS, load_settings
from uwsgi_plugin_backend.wheel.files import write_wheel

KEYS = [option.key for option in OPTIONS] + ["plugin", "uwsgi-binary", ""]
toml_values = st.recursive(
    st.none().map(lambda _: "") | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f'"{k.encode("unicode_escape").decode()}" = {toml_value(v)}' for k, v in value.items()) + "}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.dictionaries(st.sampled_from(KEYS), toml_values, max_size=5))
def test_config_parsing_accepts_or_says_why(table):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "uwsgiplugin.py").write_text("NAME = 'x'\n")
        body = "\n".join(f'"{key}" = {toml_value(value)}' for key, value in table.items())
        (root / "pyproject.toml").write_text(f'[project]\nname = "p"\nversion = "1"\n\n[tool.uwsgi-plugin]\n{body}\n')
        try:
            config = load_settings(root)
        except BackendError as error:
            assert str(error)
            return
        assert set(table) <= {option.key for option in OPTIONS if option.pyproject}
        assert config.plugin_dirs and config.package.isidentifier()


macro_names = st.sampled_from(["UWSGI_SSL", "UWSGI_PCRE", "UWSGI_VERSION", "UWSGI_ROUTING", "X", "UWSGI_PLUGIN_DIR"])
cflags_tokens = st.one_of(
    st.builds(lambda n, v: f"-D{n}" + (f"={v}" if v else ""), macro_names, st.text(max_size=6).filter(lambda t: not any(c.isspace() for c in t))),
    st.text(max_size=12),
)
header_lines = st.one_of(
    st.builds(lambda kind, name: f"#{kind} {name}", st.sampled_from(["if", "ifdef", "ifndef", "elif", "define", "  if"]), macro_names),
    st.builds(lambda a, b: f"#if defined({a}) && !{b}", macro_names, macro_names),
    st.text(max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(cflags=st.lists(cflags_tokens, max_size=12).map(" ".join), header=st.lists(header_lines, max_size=20).map("\n".join),
       junk=st.binary(max_size=64))
def test_abi_key_parser_never_crashes(cflags, header, junk):
    dot_h = header.encode("utf-8", "surrogatepass") + junk
    macros = sorted(runtime.tested_macros(dot_h))
    learned = {"layout_macros": macros, "neutral_macros": {}, "consulted": macros}
    platform = "machine=x86_64 class=64-le libc=glibc time_t=8 off_t=8"
    key = abi_key(cflags, dot_h, learned, platform)
    assert key == abi_key(cflags, dot_h, learned, platform)  # deterministic
    assert key.startswith("a3-") and len(key.rsplit("-", 1)[1]) == 16
    assert runtime.abi_summary("2.0.31", cflags).startswith("uWSGI 2.0.31")
    defines, flags = runtime.read_flags(cflags)
    lines = runtime.abi_lines(cflags, learned)
    # The macros' lines, then the options kept as they are (a -D without its name is one).
    options = [runtime.flag_text(flag) for flag in flags if not runtime.neutral_flag(flag)]
    assert lines[len(lines) - len(options):] == options
    for line in lines[:len(lines) - len(options)]:
        assert line[2:].split("=", 1)[0] in defines and line.startswith(("-D", "-U"))


build_dirs = st.sampled_from(["abi_a", "abi_b", "abi_c"])
contents = st.sampled_from([b"one", b"two"])


def make_wheel(directory: Path, name: str, builds: dict[str, bytes], extra: bytes, tag: str) -> Path:
    files = {
        "pkg/_uwsgi_plugin.py": b"runtime",
        "pkg/extra.py": extra,
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{name}-1.0.dist-info/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n".encode(),
    }
    for build, data in builds.items():
        files[f"pkg/uwsgi_builds/{build}/x_plugin.so"] = data
        files[f"pkg/uwsgi_builds/{build}/build.json"] = b"{}"
    target = directory / f"{name}-1.0-{tag}.whl"
    write_wheel(files, target, 1700000000)
    return target


TAGS = ["py3-none-linux_x86_64", "cp311-cp311-linux_x86_64", "cp312-cp312-linux_x86_64",
        "py3-none-manylinux_2_5_x86_64", "py3-none-manylinux_2_28_x86_64"]


@settings(max_examples=60, deadline=None)
@given(
    inputs=st.lists(
        st.tuples(st.dictionaries(build_dirs, contents, max_size=3), st.sampled_from([b"a", b"b"]),
                  st.sampled_from(["dist", "other"]), st.sampled_from(TAGS)),
        min_size=1, max_size=4,
    )
)
def test_merge_joins_or_refuses(inputs):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wheels = []
        for index, (builds, extra, name, tag) in enumerate(inputs):
            (root / str(index)).mkdir()
            wheels.append(make_wheel(root / str(index), name, builds, extra, tag))
        try:
            merged = merge_wheels(wheels, root / "merged")
        except BackendError as error:
            assert str(error)
            assert not (root / "merged").exists() or not list((root / "merged").glob("*.whl"))
            return
        names = zipfile.ZipFile(merged).namelist()
        expected = {b for builds, *_ in inputs for b in builds}
        assert {n.split("/")[2] for n in names if n.startswith("pkg/uwsgi_builds/")} == expected
        # One project; the highest floor of one platform family; py3-none, or the one CPython among them.
        tags = [tag for *_, tag in inputs]
        assert len({name for _, _, name, _ in inputs}) == 1
        pythons = {tag.split("-")[0] for tag in tags} - {"py3"}
        assert len(pythons) <= 1 and len({"manylinux" in tag for tag in tags}) == 1
        platform = ("linux_x86_64" if "linux_x86_64" in tags[0] else "manylinux_2_28_x86_64"
                    if any("2_28" in tag for tag in tags) else "manylinux1_x86_64.manylinux_2_5_x86_64")
        assert merged.name == f"{inputs[0][2]}-1.0-{'-'.join([pythons.pop()] * 2) if pythons else 'py3-none'}-{platform}.whl"
