"""What goes into the wheel: the same files from source and from the sdist,
several plugins in one wheel, and a project's own Python package kept."""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

from conftest import (
    BUILD,
    PACKAGES,
    SAMPLE,
    build_wheel,
    clean_env,
    copy_project,
    plugin_answer,
    run,
    tree_digest,
)


def wheel_files(wheel: Path) -> list[str]:
    return sorted(zipfile.ZipFile(wheel).namelist())


def test_python_m_build_sdist_then_wheel_from_it(tmp_path, pip_uwsgi):
    project = copy_project(SAMPLE, tmp_path / "project")
    before = tree_digest(project)
    env = clean_env(UWSGI_PLUGIN_BACKEND_UWSGI=str(pip_uwsgi))
    # Plain `python -m build` makes the sdist, then the wheel from the unpacked sdist.
    run([sys.executable, *BUILD, "--outdir", tmp_path / "dist", project], env=env)
    [sdist] = (tmp_path / "dist").glob("*.tar.gz")
    [from_sdist] = (tmp_path / "dist").glob("*.whl")
    build_wheel(project, tmp_path / "direct", env=env)
    [direct] = (tmp_path / "direct").glob("*.whl")

    assert wheel_files(from_sdist) == wheel_files(direct)
    assert sdist.name == "uwsgi_plugin_hello-1.0.0.tar.gz"
    members = tarfile.open(sdist).getnames()
    for name in ("pyproject.toml", "uwsgiplugin.py", "hello.c", "README.md", "PKG-INFO"):
        assert f"uwsgi_plugin_hello-1.0.0/{name}" in members
    assert tree_digest(project) == before


def test_two_plugins_share_one_wheel(tmp_path, pip_uwsgi):
    build_wheel(copy_project(PACKAGES / "two-plugins", tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    [wheel] = (tmp_path / "out").glob("*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    directory = run([sys.executable, "-m", "uwsgi_two", "--uwsgi", pip_uwsgi], cwd=tmp_path / "site", env=clean_env()).stdout.strip()
    assert sorted(p.name for p in Path(directory).glob("*.so")) == [
        "first_plugin.real.so", "first_plugin.so", "second_plugin.real.so", "second_plugin.so"]
    for name, modifier in (("first", 253), ("second", 254)):
        assert plugin_answer(pip_uwsgi, directory, "first,second", modifier, tmp_path / f"{name}.log") == name


def test_own_python_package_is_kept(tmp_path, pip_uwsgi):
    build_wheel(copy_project(PACKAGES / "own-package", tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    [wheel] = (tmp_path / "out").glob("*.whl")
    files = wheel_files(wheel)
    assert "uwsgi_plugin_own/helpers.py" in files
    assert "uwsgi_plugin_own/_uwsgi_plugin.py" in files
    init = zipfile.ZipFile(wheel).read("uwsgi_plugin_own/__init__.py").decode()
    assert "GREETING_HELPER" in init
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    check = "import uwsgi_plugin_own as p; print(p.GREETING_HELPER, p.plugin_dir())"
    out = run([sys.executable, "-c", check], cwd=tmp_path / "site", env=clean_env(UWSGI_PLUGIN_BACKEND_UWSGI=str(pip_uwsgi))).stdout
    assert out.startswith("kept ") and "uwsgi_builds" in out


def test_own_package_without_plugin_dir_is_refused(tmp_path, pip_uwsgi):
    project = copy_project(PACKAGES / "own-package", tmp_path / "p")
    (project / "src/uwsgi_plugin_own/__init__.py").write_text("GREETING_HELPER = 'kept'\n")
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", check=False)
    assert result.returncode != 0
    assert "needs plugin_dir in your own" in result.stdout
    assert "from ._uwsgi_plugin import plugin_dir" in result.stdout


def test_settings_reference_and_schema_are_generated_from_the_model():
    """The table in docs/reference.md and the schema equal what `python -m uwsgi_plugin_backend.settings.reference` writes."""
    from uwsgi_plugin_backend.settings.reference import REFERENCE, page_with_table
    from uwsgi_plugin_backend.settings.schema import SCHEMA_FILE, schema_text

    text = REFERENCE.read_text()
    assert page_with_table(text) == text
    assert SCHEMA_FILE.read_text() == schema_text()
