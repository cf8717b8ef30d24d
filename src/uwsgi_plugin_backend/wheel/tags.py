"""The wheel's interpreter-abi-platform tags: the platform read from the
built plugins' and loaders' ELF; py3-none, unless a pyuwsgi build's plugins
call the Python C API (plugin_build/needs.py), which ties the wheel to the
Python its pyuwsgi module is for."""

from __future__ import annotations

from ..errors import BackendError, log
from ..plugin_build.builds import UwsgiBuild


def wheel_tags(builds: list[UwsgiBuild]) -> list[str]:
    from .platform_tags import choose_platform

    modules = {build.pyuwsgi for build in builds if build.pyuwsgi}
    choice = choose_platform(
        [plugin.shared_object for build in builds for plugin in build.plugins]
        + [loader for build in builds for loader in build.loaders.values()],
        provided={module.path.name for module in modules},
        hosts=[build.abi.kit.binary for build in builds],
    )
    if choice.is_portable:
        log(f"platform tag {'.'.join(choice.tags)}, read from the plugins' ELF")
    else:
        needs = "; ".join(f"{name} needs {', '.join(libs)}" for name, libs in choice.outside_policy.items())
        log(
            f"platform tag {choice.tags[0]}, not manylinux: {needs}, outside every manylinux policy. "
            "PyPI refuses this tag; run `auditwheel repair` on the wheel to bundle the library and retag it"
        )
    python_tags = {build.python for build in builds if build.python}
    if len(python_tags) > 1:
        raise BackendError(f"the plugins call the Python C API, and the pyuwsgi binaries are for different Pythons "
                           f"({', '.join(sorted(python_tags))}); build one wheel per Python")
    interpreter_abi = "-".join([python_tags.pop()] * 2) if python_tags else "py3-none"  # cp311-cp311
    return [f"{interpreter_abi}-{platform}" for platform in choice.tags]
