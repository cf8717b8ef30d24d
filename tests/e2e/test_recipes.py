"""Every recipe that starts uwsgi in README.md, sample_plugin/README.md and
every page of docs/, taken from the code blocks as written and run against a
real uwsgi with the sample plugin installed."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    REPO,
    SAMPLE,
    UWSGI_RELEASE,
    Venv,
    clean_env,
    copy_project,
    http_get,
    kept_uwsgi_wheel,
    make_venv,
    plugin_answer,
    run,
    running_uwsgi,
)

DOCS = sorted((REPO / "docs").glob("*.md"))
READMES = [REPO / "README.md", SAMPLE / "README.md", *DOCS]
DOC_SOCKET = "127.0.0.1:8080"  # the recipes' address; the test serves on a free port instead


def code_blocks(language: str) -> list[tuple[str, str]]:
    """(readme name, block text) of every top-level fenced block in that language."""
    found = []
    for readme in READMES:
        for block in re.findall(rf"^```{language}\n(.*?)^```", readme.read_text(), re.M | re.S):
            found.append((readme.relative_to(REPO).as_posix(), block))
    return found


def uwsgi_commands() -> list[tuple[str, str]]:
    """Shell lines that start a serving uwsgi (continuations joined)."""
    commands = []
    for readme, block in code_blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            if re.match(r'(eval ")?uwsgi ', line) and DOC_SOCKET in line:
                commands.append((readme, line.split("   #")[0].strip()))
    return commands


def ini_recipes() -> list[tuple[str, str]]:
    return [(readme, block) for readme, block in code_blocks("ini") if block.startswith("[uwsgi]")]


def test_the_readmes_hold_the_recipes():
    assert len(DOCS) >= 8  # the docs/ pages are read too
    commands = [readme for readme, _ in uwsgi_commands()]
    assert commands.count("README.md") >= 1 and commands.count("sample_plugin/README.md") >= 1  # the quick starts
    assert commands.count("docs/operators.md") >= 1  # eval "uwsgi $(uwsgi-plugin-backend args hello) ..."
    assert sorted(readme for readme, _ in ini_recipes()) == ["docs/operators.md", "sample_plugin/README.md"]
    for readme in READMES:
        assert "plugins-dir = @(exec://" not in readme.read_text() and "\nplugin = " not in readme.read_text()


def test_every_uwsgi_command_in_the_docs_is_a_recipe_or_a_form():
    """A `uwsgi ...` line of a sh block either serves on the recipes' address (and so
    is run by test_command_recipe_serves) or ends in `...`, a form to fill in."""
    for readme, block in code_blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("   #")[0].strip()
            if re.match(r'(eval ")?uwsgi ', command):
                assert DOC_SOCKET in command or command.endswith("..."), (readme, command)


@pytest.fixture
def venv_on_path(tool_venv, monkeypatch):  # noqa: F811
    """The user's environment first on PATH, as after `source venv/bin/activate`."""
    monkeypatch.setenv("PATH", f"{tool_venv.root / 'bin'}:{clean_env()['PATH']}")
    return tool_venv


def uwsgi_words(command: str) -> list[str]:
    """The arguments the shell gives uwsgi for ``command``, without the recipe's socket."""
    script = re.sub(r'^(eval ")?uwsgi ', r"\1set -- ", command) + '\nprintf "%s\\0" "$@"'
    words = run(["sh", "-c", script], env=clean_env()).stdout.split("\0")[:-1]
    at = words.index("--http-socket")
    assert words[at + 1] == DOC_SOCKET
    return words[:at] + words[at + 2:]


@pytest.mark.slow
@pytest.mark.parametrize("readme, command", uwsgi_commands())
def test_command_recipe_serves(readme, command, venv_on_path, tmp_path):
    with running_uwsgi(venv_on_path.uwsgi, *uwsgi_words(command), log=tmp_path / "uwsgi.log") as url:
        assert http_get(url)[2].startswith("Hello")


@pytest.mark.slow
@pytest.mark.parametrize("readme, ini", ini_recipes())
def test_ini_recipe_serves(readme, ini, venv_on_path, tmp_path):
    config = tmp_path / "uwsgi.ini"
    config.write_text(ini.replace(f"http-socket = {DOC_SOCKET}\n", ""))
    with running_uwsgi(venv_on_path.uwsgi, "--ini", str(config), log=tmp_path / "uwsgi.log") as url:
        assert http_get(url)[2].startswith("Hello")
    assert "need-plugin" not in ini and "plugins-dir" not in ini  # both come from the package


@pytest.mark.slow
def test_ini_recipe_stops_uwsgi_when_the_plugin_cannot_load(venv_on_path, tmp_path):
    """need-plugin: a broken build makes uwsgi exit instead of serving nothing."""
    [(_, ini)] = [recipe for recipe in ini_recipes() if recipe[0] == "docs/operators.md"]
    directory = Path(run([venv_on_path.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip())
    plugin = directory / "hello_plugin.so"
    saved = plugin.read_bytes()
    plugin.write_bytes(b"not a shared object")
    try:
        config = tmp_path / "uwsgi.ini"
        config.write_text(ini.replace(DOC_SOCKET, "127.0.0.1:0"))
        result = subprocess.run([str(venv_on_path.uwsgi), "--ini", str(config)], capture_output=True, text=True,
                                timeout=30, env=clean_env())
        assert result.returncode != 0
    finally:
        plugin.write_bytes(saved)


# ---- The publishing recipe: the GitHub workflow `init --ci github` writes ----

PUBLISHING = REPO / "docs" / "publishing.md"
INIT_CI = "uwsgi-plugin-backend init . --ci github"
# The steps only GitHub can run: checkout and setup-python are stood in for (a copy
# of the project, a virtual environment first on PATH); upload, download and publish
# are not run.
GITHUB_ONLY = ("actions/checkout@", "actions/setup-python@", "actions/upload-artifact@", "actions/download-artifact@",
               "pypa/gh-action-pypi-publish@")


def publishing_workflow() -> str:
    [block] = [block for readme, block in code_blocks("yaml") if readme == "docs/publishing.md" and "\njobs:\n" in block]
    return block


def init_ci(project: Path) -> None:
    """The recipe's own line, run by a shell in the project, with this checkout's command."""
    [line] = [line for _, block in code_blocks("sh") for line in block.splitlines() if line.startswith(INIT_CI)]
    run(["sh", "-c", line], cwd=project, env=clean_env(PATH=f"{Path(sys.executable).parent}:{clean_env()['PATH']}"))


def test_the_publishing_recipe_is_the_workflow_init_writes(tmp_path):
    project = copy_project(SAMPLE, tmp_path / "sample")
    init_ci(project)
    assert (project / ".github/workflows/wheels.yml").read_text() == publishing_workflow()


def _expand(text: str, matrix: dict[str, str]) -> str:
    """The job's ``${{ matrix.X }}`` filled in; any other expression in a shell step is refused
    (a step must read the event through env:, never have it pasted into its script)."""
    text = re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: matrix[m.group(1)], text)
    assert "${{" not in text, text
    return text


def _installed_packages(script: str) -> list[str]:
    """The packages of the step's `apt-get install`, each checked installed here (by
    scripts/test): a test does not run apt-get update and install on the machine."""
    [line] = [line for line in script.splitlines() if " apt-get install " in line]
    packages = [word for word in line.split(" apt-get install ")[1].split() if not word.startswith("-")]
    for package in packages:
        status = run(["dpkg-query", "-W", "-f", "${Status}", package], check=False).stdout
        assert status == "install ok installed", f"{package} (the workflow's apt-get step): {status}"
    return packages


def run_job(job: dict, matrix: dict[str, str], project: Path, root: Path, env: dict[str, str]) -> Path:
    """The job's run: steps in order, as a runner would: in a fresh checkout, with
    the job's Python first on PATH and a RUNNER_TEMP of its own. Returns the checkout."""
    workspace = copy_project(project, root / "workspace")
    python = make_venv(root / "python")  # what setup-python gives: a Python with pip, first on PATH
    (root / "temp").mkdir()
    env = {**env, "PATH": f"{python.root / 'bin'}:/usr/local/bin:/usr/bin:/bin", "RUNNER_TEMP": str(root / "temp"),
           "GITHUB_WORKSPACE": str(workspace), "CI": "true", **job.get("env", {})}
    for number, step in enumerate(job["steps"]):
        if "uses" in step:
            assert step["uses"].startswith(GITHUB_ONLY), step
            continue
        script = _expand(step["run"], matrix)
        if " apt-get install " in script:
            _installed_packages(script)
            continue
        (root / f"step-{number}.sh").write_text(script)
        # GitHub's shell for a step that names none: bash -e, in the workspace.
        run(["bash", "-e", root / f"step-{number}.sh"], cwd=workspace, env={**env, **step.get("env", {})})
    return workspace


@pytest.mark.slow
def test_publishing_workflow_runs_here(tmp_path, wheelhouse):
    """The workflow's steps on this machine (x86_64, the suite's Python), through to
    its one wheel serving from pip's uwsgi, from pip's uwsgi built without SSL (a
    variant's build) and from pyuwsgi. pip finds this checkout's backend in the
    wheelhouse (it is not on PyPI yet) and pip's uWSGI as the suite keeps it
    (kept_uwsgi_wheel: the same sdist compiled here, with the -dev packages the
    apt-get step names), so that release is pinned for the run."""
    import yaml

    project = copy_project(SAMPLE, tmp_path / "sample")
    init_ci(project)
    workflow = yaml.safe_load((project / ".github/workflows/wheels.yml").read_text())
    kept = kept_uwsgi_wheel()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(f"uwsgi=={UWSGI_RELEASE}\n")
    env = clean_env(PIP_FIND_LINKS=f"{wheelhouse} {kept.parent}", PIP_CONSTRAINT=str(constraints),
                    PIP_DISABLE_PIP_VERSION_CHECK="1")
    [matrix] = [row for row in workflow["jobs"]["wheel"]["strategy"]["matrix"]["include"] if row["arch"] == platform.machine()]
    assert list(workflow["jobs"]) == ["wheel", "sdist", "publish"]
    assert not [step for step in workflow["jobs"]["publish"]["steps"] if "run" in step]  # GitHub's alone

    job = tmp_path / "wheel"
    workspace = run_job(workflow["jobs"]["wheel"], matrix, project, job, env)
    [wheel] = (workspace / "wheelhouse").glob("*.whl")  # one wheel for the platform
    assert wheel.name.startswith("uwsgi_plugin_hello-1.0.0-py3-none-manylinux") and wheel.name.endswith("_x86_64.whl")
    nossl = make_venv(tmp_path / "nossl")
    nossl.install(kept_uwsgi_wheel("nossl", "ssl=false"))
    # The environments the job built for, each a real install, and one it did not.
    for venv in (Venv(job / "temp" / "uwsgi"), nossl, Venv(job / "temp" / "pyuwsgi")):
        venv.pip("install", "-q", wheel)
        directory = run([venv.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
        greeting = f"Hello from the published wheel in {venv.root.name}"
        assert plugin_answer(venv.uwsgi, directory, "hello", 250, tmp_path / f"{venv.root.name}.log",
                             "--hello-greeting", greeting) == greeting

    sdist_job = run_job(workflow["jobs"]["sdist"], {}, project, tmp_path / "sdist", env)
    assert [path.name for path in (sdist_job / "dist").iterdir()] == ["uwsgi_plugin_hello-1.0.0.tar.gz"]
