"""The main job: pip builds the sample's wheel with build isolation, it is
installed into a user's environment, and that environment's uwsgi serves the
greeting from the plugin found through the wheel's entry point."""

from __future__ import annotations

import zipfile

import pytest
from conftest import SAMPLE, auditwheel_tag, clean_env, http_get, platform_tags, plugin_answer, run, running_uwsgi

ENTRY_POINT_DIR = (
    "from importlib.metadata import entry_points; "
    "print(entry_points(group='uwsgi.plugins')['hello'].load()())"
)


@pytest.fixture(scope="module")
def installed_sample(tmp_path_factory, wheelhouse, uwsgi_venv):
    out = tmp_path_factory.mktemp("plugin-wheels")
    # The user's pip, not activated: the backend must find this venv's uwsgi by itself.
    result = uwsgi_venv.pip("wheel", "-v", "--no-deps", "--find-links", wheelhouse, "-w", out, SAMPLE)
    assert f"building for {uwsgi_venv.uwsgi} (installed beside the interpreter" in result.stdout
    [wheel] = out.glob("*.whl")
    uwsgi_venv.pip("install", "-q", "--force-reinstall", "--no-deps", wheel)
    return wheel


def test_wheel_layout(installed_sample, pip_uwsgi):
    # The floor the plugin's own ELF allows (auditwheel's reading), not that of the uwsgi it is built for.
    assert installed_sample.name.startswith("uwsgi_plugin_hello-1.0.0-py3-none-")
    assert auditwheel_tag(installed_sample) in platform_tags(installed_sample)
    names = zipfile.ZipFile(installed_sample).namelist()
    assert [n for n in names if n.endswith("hello_plugin.so")]
    assert "uwsgi_plugin_hello/_uwsgi_plugin.py" in names
    assert "uwsgi_plugin_hello/__main__.py" in names
    entry_points = zipfile.ZipFile(installed_sample).read("uwsgi_plugin_hello-1.0.0.dist-info/entry_points.txt")
    assert b"[uwsgi.plugins]\nhello = uwsgi_plugin_hello:plugin_dir" in entry_points


@pytest.mark.parametrize("how", ["entry point", "python -m"])
def test_uwsgi_serves_greeting_from_installed_wheel(installed_sample, uwsgi_venv, tmp_path, how):
    if how == "entry point":
        command = [uwsgi_venv.python, "-c", ENTRY_POINT_DIR]
    else:
        command = [uwsgi_venv.python, "-m", "uwsgi_plugin_hello"]
    plugins_dir = run(command, env=clean_env(), cwd=tmp_path).stdout.strip()
    assert (uwsgi_venv.root / "lib").as_posix() in plugins_dir
    with running_uwsgi(
        uwsgi_venv.uwsgi, "--plugins-dir", plugins_dir, "--plugin", "hello",
        "--http-socket-modifier1", "250", "--hello-greeting", f"Hello via {how}",
        log=tmp_path / "uwsgi.log",
    ) as url:
        assert http_get(url + "/any/path") == (200, "text/plain", f"Hello via {how}")


def test_default_greeting(installed_sample, uwsgi_venv, tmp_path):
    plugins_dir = run([uwsgi_venv.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    assert plugin_answer(uwsgi_venv.uwsgi, plugins_dir, "hello", 250, tmp_path / "uwsgi.log") == "Hello from a wheel"
