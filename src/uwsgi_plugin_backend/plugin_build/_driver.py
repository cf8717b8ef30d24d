"""Runs in its own interpreter, in the build copy of one plugin directory.

First it checks the plugin's uwsgiplugin.py the way uwsgiconfig.py will read
it, so a mistake becomes one clear message instead of a traceback from deep
inside uwsgiconfig.py. Then it runs the uwsgi binary's own uwsgiconfig.py
exactly as ``uwsgi --build-plugin .`` would (``--extra-plugin .``).

usage: python _driver.py check|build UWSGICONFIG_PY REAL_PLUGIN_DIR RESULT_JSON [JOBS OBJECTS_DIR kept|temporary]

$UWSGI_PLUGIN_BACKEND_VERBOSE set: every compiler command is printed.

``check`` stops after the check (the backend needs only NAME).

In ``build`` mode the one gcc line uwsgiconfig.py would run for the plugin is
taken apart instead of run: the very pieces build_plugin() formats into it
(GCC, the PIC and shared flags, its CFLAGS, GCC_LIST, LDFLAGS, LIBS) become
one compile command per source, run JOBS at a time through the same shell,
and one link command with the objects in place of the sources. Objects whose
command and inputs (source and the headers gcc -MMD lists) are unchanged are
reused from OBJECTS_DIR. Everything else uwsgiconfig.py does (BINARY_LIST,
the REQUIRES section, post_build) runs as it always does, in the same order.
"""

import hashlib
import json
import os
import re
import runpy
import shlex
import subprocess
import sys

SOURCE_SUFFIXES = (".c", ".cc", ".m", ".go")
CXX_SUFFIX = ".cc"  # the one C++ suffix uwsgiconfig.py knows (x.cpp becomes x.cpp.c)
C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# GCC_LIST entries outside the project (../x.c from its root, /abs/x.c) need [tool.uwsgi-plugin] allow-outside-sources.
ALLOW_OUTSIDE = bool(os.environ.get("UWSGI_PLUGIN_BACKEND_ALLOW_OUTSIDE"))
# The real project root; the build runs in a copy of it, laid out alike.
PROJECT_ROOT = os.environ.get("UWSGI_PLUGIN_BACKEND_PROJECT_ROOT", "")


def as_written(entry):
    """A GCC_LIST entry as uwsgiplugin.py wrote it: build_plugin() puts "./" before it."""
    return entry[2:] if entry.startswith("./") else entry


def real_path(entry, real_dir):
    """Where a GCC_LIST entry really is (the build works on a copy of the project)."""
    return os.path.normpath(os.path.join(real_dir, as_written(entry)))


def outside(entry, real_dir):
    """Does this GCC_LIST entry name a file outside the project, which the build does not copy?"""
    return os.path.relpath(real_path(entry, real_dir), PROJECT_ROOT or real_dir).split(os.sep)[0] == ".."


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
        import traceback

        return None, "%s raised an exception:\n%s" % (shown, traceback.format_exc(limit=-1).strip())
    name = namespace.get("NAME")
    if not isinstance(name, str) or not C_IDENTIFIER.match(name):
        return None, (
            "%s does not set NAME to the plugin's name, a C identifier (got %r); add a line like NAME = 'hello'"
            % (shown, name)
        )
    gcc_list = namespace.get("GCC_LIST")
    if not isinstance(gcc_list, (list, tuple)) or not gcc_list:
        return None, "%s does not set GCC_LIST to the plugin's sources; add e.g. GCC_LIST = ['%s']" % (shown, name)
    for entry in gcc_list:
        if not isinstance(entry, str):
            return None, "%s lists %r in GCC_LIST; entries must be strings (file names)" % (shown, entry)
        if outside(entry, real_dir) and not ALLOW_OUTSIDE:
            return None, (
                "%s lists %r in GCC_LIST, a file outside the project %s; keep sources inside it, "
                "or allow this with allow-outside-sources = true in [tool.uwsgi-plugin]"
                % (shown, entry, PROJECT_ROOT or real_dir))
        if entry.endswith((".a", ".o")):
            continue  # libraries and objects, possibly made by the build itself
        source_file = entry if entry.endswith(SOURCE_SUFFIXES) else entry + ".c"
        if outside(source_file, real_dir):
            source_file = real_path(source_file, real_dir)
        if not os.path.isfile(source_file):
            return None, "%s lists %r in GCC_LIST, but %s does not exist" % (
                shown, entry, os.path.join(real_dir, source_file))
    return name, None


def file_hash(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def dependencies(dep_file):
    """The files a make-style .d file (gcc -MMD) lists as prerequisites.

    gcc escapes a space as "\\ " and "$" as "$$"; it escapes nothing else, so
    file names with quotes or other shell characters are taken as written.
    """
    with open(dep_file, encoding=sys.getfilesystemencoding(), errors="surrogateescape") as f:  # names as the OS gave them
        text = f.read().replace("\\\n", " ")
    _, _, prerequisites = text.partition(": ")
    names, current, i = [], "", 0
    while i < len(prerequisites):
        char = prerequisites[i]
        if char == "\\" and prerequisites[i + 1:i + 2] == " ":
            current, i = current + " ", i + 2
        elif char == "$" and prerequisites[i + 1:i + 2] == "$":
            current, i = current + "$", i + 2
        elif char.isspace():
            if current:
                names.append(current)
            current, i = "", i + 1
        else:
            current, i = current + char, i + 1
    if current:
        names.append(current)
    return names


class ObjectCache:
    """Compiled objects with a manifest each: the command and the hashes of its inputs."""

    def __init__(self, directory, kept):
        self.directory = directory
        self.kept = kept  # a persistent build directory: objects outlive this build
        os.makedirs(directory, exist_ok=True)

    def paths(self, source):
        """Object, dependency and manifest files of a source: its name for people,
        a hash of the entry so that x.c, _x.c and sub/x.c never share one."""
        digest = hashlib.sha256(source.encode()).hexdigest()[:10]
        stem = os.path.join(self.directory, "%s-%s" % (os.path.basename(source) or "source", digest))
        return stem + ".o", stem + ".d", stem + ".json"

    def reusable(self, source, command):
        obj, _, manifest = self.paths(source)
        try:
            with open(manifest) as f:
                recorded = json.load(f)
        except (OSError, ValueError):
            return False
        if recorded.get("command") != command or not os.path.exists(obj):
            return False
        return all(file_hash(path) == digest for path, digest in recorded["inputs"].items())

    def forget(self, source):
        try:
            os.unlink(self.paths(source)[2])
        except OSError:
            pass

    def record(self, source, command, source_file):
        obj, dep, manifest = self.paths(source)
        inputs = {path: file_hash(path) for path in [shlex.split(source_file)[0], *dependencies(dep)]}
        with open(manifest + ".partial", "w") as f:
            json.dump({"command": command, "inputs": inputs}, f)
        os.replace(manifest + ".partial", manifest)


def compile_words(frame_globals, frame_locals):
    """Every word a compile of the plugin gets, as the shell expands them
    ($VARS, quotes): the compiler command ($CC may carry options), the CFLAGS,
    and LDFLAGS and LIBS, which the one gcc line of a lone source compiles with."""
    uniq = frame_globals["uniq_warnings"]
    text = " ".join([frame_globals["GCC"], frame_locals["need_pic"], *uniq(frame_locals["p_cflags"]),
                     *uniq(frame_locals["p_ldflags"]), *uniq(frame_locals["p_libs"])])
    process = subprocess.run("printf '%s\\0' " + text, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return process.stdout.decode(errors="surrogateescape").split("\0")[:-1] if process.returncode == 0 else None


def cxx_runtime(gcc_list, frame_globals):
    """What g++ adds to a link and gcc does not: the C++ runtime, after every
    library of the line (and libm, which C++ headers call into). uwsgiconfig.py
    links with gcc, so a plugin with C++ sources would name no libstdc++ and
    load only in a uwsgi that happens to bring it (pip's uWSGI with libxml2, through
    libicuuc), not in one without (built with xml=false, or pyuwsgi)."""
    if not any(entry.endswith(CXX_SUFFIX) for entry in gcc_list):
        return ""
    return " -lc++" if frame_globals.get("uwsgi_os") == "Darwin" else " -lstdc++ -lm"


def shortened(command, kit_cflags):
    """``command`` as a message shows it: the binary's own CFLAGS (two of them hold
    every embedded plugin's name, 2 KB in all for pip's uWSGI) as ``$(uwsgi --cflags)``,
    the backend's -ffile-prefix-map left out. Words are joined by single spaces here."""
    kit_words, shown, placed = set(kit_cflags.split()), [], False
    for word in command.split(" "):
        if word in kit_words:
            if not placed:
                shown.append("$(uwsgi --cflags)")
            placed = True
        elif not word.startswith("-ffile-prefix-map="):
            shown.append(word)
    return " ".join(shown).rstrip()


def run_shell(command):
    """Run like uwsgiconfig.py does (through the shell); return status and output."""
    process = subprocess.run(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return process.returncode, process.stdout.decode(errors="replace")


class Build:
    """The build of one plugin: compile jobs, the object cache, verbosity, and
    the failed compiles, which the backend reports with the failing file first."""

    def __init__(self, jobs, cache, verbose, real_dir):
        self.jobs, self.cache, self.verbose, self.real_dir = jobs, cache, verbose, real_dir
        self.failures = []
        self.compile_words = None  # what the plugin is compiled with: the backend checks it keeps uwsgi.h's layouts
        self.commands = []  # the shell commands build_plugin() ran or handed us

    def file_arg(self, entry):
        """A GCC_LIST file as one shell word: file names never reach the shell as code."""
        return shlex.quote(real_path(entry, self.real_dir) if outside(entry, self.real_dir) else entry)

    def run(self, source, command):
        """Run one compiler command through the shell, as uwsgiconfig.py does."""
        if self.verbose:
            print(command)
        status, output = run_shell(command)
        if output:
            sys.stdout.write(output)
        if status != 0:
            self.failures.append({"source": source, "command": command, "output": output, "status": status,
                                  "shown": shortened(command, os.environ.get("UWSGI_PLUGINS_BUILDER_CFLAGS", ""))})
        return status

    def parallel(self, frame_locals, frame_globals):
        """Compile each source of the captured gcc line on its own, then link once."""
        gcc, pic = frame_globals["GCC"], frame_locals["need_pic"]
        uniq = frame_globals["uniq_warnings"]
        cflags = " ".join(uniq(frame_locals["p_cflags"]))
        compiles, link_inputs, sources = [], [], []
        for entry in frame_locals["gcc_list"]:
            if entry.endswith((".a", ".o")):
                link_inputs.append(self.file_arg(entry))
                continue
            sources.append(entry)
            obj, dep, _ = self.cache.paths(entry)
            command = "%s%s %s -c %s -o %s -MMD -MF %s" % (
                gcc, pic, cflags, self.file_arg(entry), shlex.quote(obj), shlex.quote(dep))
            link_inputs.append(shlex.quote(obj))
            if not self.cache.reusable(entry, command):
                compiles.append((entry, command))
        print("[%s] compiling %d of %d sources (%d unchanged, reused), %d at a time" % (
            gcc, len(compiles), len(sources), len(sources) - len(compiles), self.jobs))
        for source, _ in compiles:  # an interrupted compile must leave no manifest that vouches for it
            self.cache.forget(source)
        from concurrent.futures import ThreadPoolExecutor  # imported late: the backend imports this module too

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            statuses = list(pool.map(lambda job: self.run(*job), compiles))
        for (source, command), status in zip(compiles, statuses):
            if status == 0:
                self.cache.record(source, command, self.file_arg(source))
        if self.failures:
            return 1
        link = "%s%s %s -o %s.so %s %s %s %s%s" % (
            gcc, pic, frame_locals["shared_flag"], frame_locals["plugin_dest"], cflags, " ".join(link_inputs),
            " ".join(uniq(frame_locals["p_ldflags"])), " ".join(uniq(frame_locals["p_libs"])),
            cxx_runtime(frame_locals["gcc_list"], frame_globals))
        return self.run(frame_locals["plugin_dest"] + ".so", link)

    def single_line(self, frame_locals, frame_globals):
        """uwsgiconfig.py's own gcc line, but with every file name quoted (and the C++ runtime)."""
        uniq = frame_globals["uniq_warnings"]
        return "%s%s %s -o %s.so %s %s %s %s%s" % (
            frame_globals["GCC"], frame_locals["need_pic"], frame_locals["shared_flag"], frame_locals["plugin_dest"],
            " ".join(uniq(frame_locals["p_cflags"])), " ".join(self.file_arg(e) for e in frame_locals["gcc_list"]),
            " ".join(uniq(frame_locals["p_ldflags"])), " ".join(uniq(frame_locals["p_libs"])),
            cxx_runtime(frame_locals["gcc_list"], frame_globals))

    def take_over_gcc_line(self):
        """Run build_plugin()'s one gcc line ourselves: split up when that pays, else as is."""
        real_call = subprocess.call

        def call(command, *args, **kwargs):
            frame = sys._getframe(1)
            if frame.f_code.co_name == "build_plugin" and isinstance(command, str):
                # uwsgiconfig.py prints its commands first (Debian's always: verbose_build = True);
                # the backend shows those lines only when the build is verbose.
                self.commands.append(command)
            if frame.f_code.co_name != "build_plugin" or command != frame.f_locals.get("gccline"):
                return real_call(command, *args, **kwargs)
            local = frame.f_locals
            self.compile_words = compile_words(frame.f_globals, local)
            sources = [e for e in local["gcc_list"] if not e.endswith((".a", ".o"))]
            sys.stdout.flush()
            # Other toolchains (.go, .m) run as uwsgiconfig.py has it; so does a lone source
            # when nothing is kept between builds: one gcc call is then the fastest.
            if any(e.endswith((".go", ".m")) for e in sources):
                return self.run(" ".join(sources), command)
            if len(sources) > 1 or self.cache.kept:
                return self.parallel(local, frame.f_globals)
            return self.run(sources[0], self.single_line(local, frame.f_globals))

        subprocess.call = call


def main():
    mode, uwsgiconfig, real_dir, result_path = sys.argv[1:5]
    # As under uwsgi --build-plugin, which runs uwsgiconfig.py from the kit directory:
    # that directory, not this one, is first on sys.path, and uwsgiplugin.py may
    # import the build script (uWSGI's plugins/airbrake: from uwsgiconfig import spcall).
    if uwsgiconfig == "-":
        del sys.path[0]
    else:
        sys.path[0] = os.path.dirname(os.path.abspath(uwsgiconfig))
    sys.dont_write_bytecode = True  # the kit directory is a shared cache: nothing is written into it
    name, error = check_plugin_file(real_dir)
    with open(result_path, "w") as f:
        json.dump({"name": name, "error": error}, f)
    if error:
        sys.exit(2)
    if mode == "check":
        return
    jobs, objects_dir, kept = int(sys.argv[5]), sys.argv[6], sys.argv[7] == "kept"
    verbose = bool(os.environ.get("UWSGI_PLUGIN_BACKEND_VERBOSE"))
    build = Build(jobs, ObjectCache(objects_dir, kept), verbose, real_dir)
    build.take_over_gcc_line()
    sys.argv = [uwsgiconfig, "--extra-plugin", "."] + (["--verbose"] if verbose else [])
    try:
        runpy.run_path(uwsgiconfig, run_name="__main__")
    finally:
        with open(result_path, "w") as f:
            json.dump({"name": name, "error": None, "failures": build.failures, "compile_words": build.compile_words,
                       "commands": build.commands}, f)


if __name__ == "__main__":
    main()
