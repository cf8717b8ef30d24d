"""The settings model: precedence (-C, environment, pyproject.toml, default),
checks before anything compiles, and scikit-build-core's keys passed on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import (
    SAMPLE,
    assert_one_clean_failure,
    build_wheel,
    clean_env,
    copy_project,
    recorded_calls,
    recording_cc,
    tree_digest,
)

from uwsgi_plugin_backend.errors import BackendError
from uwsgi_plugin_backend.settings import OPTIONS, Described, MachineSettings, Settings, load_settings, option_help


@pytest.fixture
def project(tmp_path) -> Path:
    root = copy_project(SAMPLE, tmp_path / "project")
    with (root / "pyproject.toml").open("a") as f:
        f.write('\n[tool.uwsgi-plugin]\nuwsgi = "from-pyproject"\nstrip = true\n')
    return root


def test_precedence_config_setting_then_environment_then_pyproject(project, monkeypatch):
    assert load_settings(project).uwsgi == ("from-pyproject",)
    assert load_settings(project).uwsgi_origin == "tool.uwsgi-plugin.uwsgi in pyproject.toml"
    monkeypatch.setenv("UWSGI_PLUGIN_BACKEND_UWSGI", "from-env")
    assert load_settings(project).uwsgi == ("from-env",)
    settings = load_settings(project, {"uwsgi": ["a", "b"], "strip": "false"})
    assert (settings.uwsgi, settings.uwsgi_origin, settings.strip) == (("a", "b"), "-C uwsgi", False)
    monkeypatch.setenv("UWSGI_PLUGIN_BACKEND_JOBS", "3")
    assert load_settings(project).jobs == 3
    assert load_settings(project, {"jobs": "5"}).jobs == 5
    assert load_settings(project).strip is True


@pytest.mark.parametrize(("config", "env", "message"), [
    ({"jobs": "two"}, {}, "-C jobs='two' is not a whole number of at least 1"),
    ({}, {"UWSGI_PLUGIN_BACKEND_JOBS": "0"}, "$UWSGI_PLUGIN_BACKEND_JOBS='0' is not a whole number"),
    ({"strip": "maybe"}, {}, "-C strip='maybe' is not a yes/no value"),
    ({}, {"UWSGI_PLUGIN_BACKEND_VERBOSE": "loud"}, "$UWSGI_PLUGIN_BACKEND_VERBOSE='loud' is not a yes/no value"),
    ({}, {"UWSGI_PLUGIN_BACKEND_LOCK_TIMEOUT": "soon"}, "$UWSGI_PLUGIN_BACKEND_LOCK_TIMEOUT='soon' is not a number"),
    ({"job": "2"}, {}, "unknown config setting -C job; did you mean 'jobs'?"),
    ({"wheel.buidl-tag": "1"}, {}, "unknown config setting -C wheel.buidl-tag; did you mean 'wheel.build-tag'?"),
])
def test_bad_values_are_refused_with_their_source(project, monkeypatch, config, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(BackendError) as error:
        load_settings(project, config)
    assert message in str(error.value)


def test_every_option_reaches_the_build_with_its_default(tmp_path):
    """An option added to OPTIONS but not to Settings would be checked, documented
    and then dropped; a literal default is what the build gets when nothing is given.
    The environment's own options (cache, time limits) reach it in Settings.machine."""
    plain = load_settings(copy_project(SAMPLE, tmp_path / "plain"))
    holders = {field.name: plain for field in dataclasses.fields(Settings)}
    holders.update({field.name: plain.machine for field in dataclasses.fields(MachineSettings)})
    for option in OPTIONS:
        name = option.key.replace("-", "_")
        name = "plugin_dirs" if name == "plugins" else name
        assert name in holders, f"{option.key} is in OPTIONS but not in Settings"
        if not isinstance(option.default, Described):
            value = getattr(holders[name], name)
            assert (value == (plain.root.resolve(),) if name == "plugin_dirs" else value == option.default), option.key


def test_every_option_has_its_help():
    """The help is the docstring under the option's field: the reference and the schema show it."""
    help_of = option_help()
    assert set(help_of) == {option.key for option in OPTIONS}
    assert all(text.endswith(".") and "  " not in text for text in help_of.values()), help_of


def test_scikit_build_core_keys_pass_on(project):
    settings = load_settings(project, {"wheel.build-tag": "1", "cmake.define.FOO": "1", "skbuild.wheel.exclude": "x",
                                       "build.verbose": "true", "jobs": "2", "--build-option": []})
    assert settings.verbose is True
    assert set(settings.skbuild) == {"wheel.build-tag", "cmake.define.FOO", "skbuild.wheel.exclude", "build.verbose",
                                     "--build-option"}


def test_mistyped_config_setting_fails_before_any_compiler_runs(tmp_path, outdir, pip_uwsgi):  # noqa: F811
    project = copy_project(SAMPLE, tmp_path / "project")
    before = tree_digest(project)
    calls = tmp_path / "compiler-calls"
    calls.mkdir()
    env = clean_env(CC=str(recording_cc()), CC_RECORD_DIR=str(calls))
    result = build_wheel(project, outdir, f"-Cuwsgi={pip_uwsgi}", "-Cjob=2", check=False, env=env)
    assert_one_clean_failure(result, project, before, outdir, r"unknown config setting -C job; did you mean 'jobs'\?")
    assert recorded_calls(calls) == []
    # The same compiler does run for a good build: the check above can fail.
    build_wheel(project, tmp_path / "good", f"-Cuwsgi={pip_uwsgi}", "-Cjobs=2", env=env)
    assert recorded_calls(calls) != []
