"""Runs in its own interpreter, in the build copy of one plugin directory.

First it checks the plugin's uwsgiplugin.py the way uwsgiconfig.py will read
it, so a mistake becomes one clear message instead of a traceback from deep
inside uwsgiconfig.py. Then it runs the uwsgi binary's own uwsgiconfig.py
exactly as ``uwsgi --build-plugin .`` would (``--extra-plugin .``).

usage: python _uwsgiconfig_driver.py check|build UWSGICONFIG_PY REAL_PLUGIN_DIR RESULT_JSON

``check`` stops after the check (prepare_metadata_for_build_wheel needs only NAME).
"""

import json
import os
import runpy
import sys
import traceback

SOURCE_SUFFIXES = (".c", ".cc", ".m", ".go")


def check_plugin_file(real_dir):
    """Return the plugin's NAME, or an error message naming the real file."""
    shown = os.path.join(real_dir, "uwsgiplugin.py")
    try:
        with open("uwsgiplugin.py") as f:
            source = f.read()
    except FileNotFoundError:
        return None, (
            "%s has no uwsgiplugin.py; every directory in tool.uwsgi-plugin.plugins "
            "needs one (NAME = '...', GCC_LIST = [...])" % real_dir
        )
    try:
        code = compile(source, shown, "exec")
    except SyntaxError as error:
        return None, "%s, line %s: syntax error: %s" % (shown, error.lineno, error.msg)
    namespace = {}
    try:
        exec(code, namespace)
    except Exception:
        return None, "%s raised an exception:\n%s" % (shown, traceback.format_exc(limit=-1).strip())
    name = namespace.get("NAME")
    if not isinstance(name, str) or not name.isidentifier():
        return None, (
            "%s does not set NAME to the plugin's name (got %r); add a line like NAME = 'hello'"
            % (shown, name)
        )
    gcc_list = namespace.get("GCC_LIST")
    if not isinstance(gcc_list, (list, tuple)) or not gcc_list:
        return None, "%s does not set GCC_LIST to the plugin's sources; add e.g. GCC_LIST = ['%s']" % (shown, name)
    for entry in gcc_list:
        if entry.endswith((".a", ".o")):
            continue  # libraries and objects, possibly made by the build itself
        source_file = entry if entry.endswith(SOURCE_SUFFIXES) else entry + ".c"
        if not os.path.isfile(source_file):
            return None, "%s lists %r in GCC_LIST, but %s does not exist" % (
                shown, entry, os.path.join(real_dir, source_file))
    return name, None


def main():
    mode, uwsgiconfig, real_dir, result_path = sys.argv[1:5]
    name, error = check_plugin_file(real_dir)
    with open(result_path, "w") as f:
        json.dump({"name": name, "error": error}, f)
    if error:
        sys.exit(2)
    if mode == "check":
        return
    sys.argv = [uwsgiconfig, "--extra-plugin", "."]
    runpy.run_path(uwsgiconfig, run_name="__main__")


if __name__ == "__main__":
    main()
