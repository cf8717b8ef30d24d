"""`uwsgi-plugin-backend init DIR --ci github`: the workflow it writes
is valid for GitHub (the schema check-jsonschema carries) and zizmor finds
nothing in it; it never overwrites a file. tests/e2e/test_recipes.py runs its steps."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import SAMPLE, as_other_user, clean_env, run, tree_digest

BIN = Path(sys.executable).parent
WORKFLOW = Path(".github/workflows/wheels.yml")


def init(*args: str | Path, check: bool = True):
    return run([BIN / "uwsgi-plugin-backend", "init", *args], check=check, env=clean_env())


@pytest.fixture
def plugin(tmp_path) -> Path:
    """A plugin directory with no pyproject.toml yet."""
    directory = tmp_path / "plugin"
    directory.mkdir()
    for name in ("hello.c", "uwsgiplugin.py"):
        (directory / name).write_bytes((SAMPLE / name).read_bytes())
    return directory


def assert_refused(result, pattern: str, before: dict, root: Path) -> None:
    assert result.returncode == 1, result.stdout
    assert result.stdout.count("uwsgi-plugin-backend: error:") == 1 and "Traceback" not in result.stdout, result.stdout
    assert pattern in result.stdout, result.stdout
    assert tree_digest(root) == before


def test_init_writes_a_workflow_github_and_zizmor_accept(plugin):
    said = init(plugin, "--ci", "github").stdout
    workflow = plugin / WORKFLOW
    assert f"wrote {workflow}" in said and f"wrote {plugin / 'pyproject.toml'}" in said
    assert "trusted publisher" in said
    checked = run([BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow], check=False)
    assert checked.returncode == 0 and "ok -- validation done" in checked.stdout, checked.stdout
    # The auditor persona reports everything zizmor knows, pedantic findings included.
    audit = run([BIN / "zizmor", "--offline", "--persona", "auditor", "--no-progress", workflow], check=False,
                env=clean_env(NO_COLOR="1"))
    assert audit.returncode == 0 and "No findings to report" in audit.stdout, audit.stdout


def test_check_jsonschema_and_zizmor_do_refuse_a_bad_workflow(plugin):
    """The two checks above can fail: a job without runs-on, and a step that expands
    a pull request's title in its shell."""
    init(plugin, "--ci", "github")
    workflow = plugin / WORKFLOW
    text = workflow.read_text()
    workflow.write_text(text.replace("    runs-on: ubuntu-latest\n", "", 1))
    assert run([BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow], check=False).returncode != 0
    injected = "      - run: echo \"${{ github.event.pull_request.title }}\"\n"
    workflow.write_text(text.replace("      - name: Install the build tools\n", injected + "      - name: Install the build tools\n"))
    audit = run([BIN / "zizmor", "--offline", "--no-progress", workflow], check=False, env=clean_env(NO_COLOR="1"))
    assert audit.returncode != 0 and "template-injection" in audit.stdout, audit.stdout


def test_init_ci_keeps_the_pyproject_of_a_project(tmp_path):
    project = tmp_path / "sample"
    project.mkdir()
    for path in SAMPLE.iterdir():
        (project / path.name).write_bytes(path.read_bytes())
    before = tree_digest(project)
    said = init(project, "--ci", "github").stdout
    assert f"kept {project / 'pyproject.toml'}" in said
    after = tree_digest(project)
    assert {name: after[name] for name in before} == before  # nothing of the project changed
    assert sorted(set(after) - set(before)) == [".github", ".github/workflows", str(WORKFLOW)]


def test_init_without_ci_still_refuses_an_existing_pyproject(tmp_path):
    before = tree_digest(SAMPLE)
    result = init(SAMPLE, check=False)
    assert_refused(result, "pyproject.toml already exists; init writes a new one only", before, SAMPLE)
    assert "init DIR --ci github adds only the workflow" in result.stdout


def test_init_ci_never_overwrites_a_workflow(plugin):
    (plugin / WORKFLOW).parent.mkdir(parents=True)
    (plugin / WORKFLOW).write_text("name: mine\n")
    before = tree_digest(plugin)
    result = init(plugin, "--ci", "github", check=False)
    assert_refused(result, f"{plugin / WORKFLOW} already exists; init writes a new one only", before, plugin)
    assert not (plugin / "pyproject.toml").exists()  # nothing written, not even the part that was free


def test_init_ci_refuses_a_dangling_link_as_workflow(plugin, tmp_path):
    (plugin / WORKFLOW).parent.mkdir(parents=True)
    (plugin / WORKFLOW).symlink_to(tmp_path / "elsewhere.yml")
    before = tree_digest(tmp_path)
    result = init(plugin, "--ci", "github", check=False)
    assert_refused(result, f"{plugin / WORKFLOW} is a symbolic link to {tmp_path / 'elsewhere.yml'}, which does not "
                   "exist; init writes a new file only, never through a link", before, tmp_path)


def test_init_ci_refuses_a_file_where_the_workflow_directory_goes(plugin):
    (plugin / ".github").write_text("not a directory\n")
    before = tree_digest(plugin)
    result = init(plugin, "--ci", "github", check=False)
    assert_refused(result, f"{plugin / '.github'} is a file; init writes the workflow into the directory "
                   f"{plugin / WORKFLOW.parent}: move the file away", before, plugin)


def test_init_ci_in_a_directory_it_cannot_write(world_dir):
    plugin = world_dir / "plugin"  # root's, readable by all: the other uid cannot write it
    plugin.mkdir(mode=0o755)
    for name in ("hello.c", "uwsgiplugin.py"):
        (plugin / name).write_bytes((SAMPLE / name).read_bytes())
        (plugin / name).chmod(0o644)
    before = tree_digest(plugin)
    result = as_other_user(["-m", "uwsgi_plugin_backend", "init", plugin, "--ci", "github"], env=clean_env(),
                           cwd=world_dir)
    assert_refused(result, f"cannot write {plugin / WORKFLOW}: Permission denied; init writes into the plugin "
                   "directory: make it writable", before, plugin)


def test_init_ci_names_the_systems_it_knows(plugin):
    before = tree_digest(plugin)
    result = init(plugin, "--ci", "gitlab", check=False)
    assert_refused(result, "--ci gitlab: init writes a workflow for GitHub Actions only; pass --ci github", before, plugin)
