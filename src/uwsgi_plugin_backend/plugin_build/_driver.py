"""Runs in its own interpreter, in the build copy of one plugin directory.

First it checks the plugin's uwsgiplugin.py the way uwsgiconfig.py will read
it, so a mistake becomes one clear message instead of a traceback from deep
inside uwsgiconfig.py. Then it runs the uwsgi binary's own uwsgiconfig.py
exactly as ``uwsgi --build-plugin .`` would (``--extra-plugin .``).

usage: python _driver.py REQUEST_JSON

REQUEST_JSON holds a DriverRequest (plugin_build/plugin.py writes it): what to
do, where, and how; the driver writes its answer, a DriverResult, where the
request says. It imports the standard library only, nothing of the backend:
it runs beside the kit's uwsgiconfig.py, whose directory is first on sys.path.

``check`` stops after the check (the backend needs only NAME).

In ``build`` mode the one gcc line uwsgiconfig.py would run for the plugin is
taken apart instead of run: the very pieces build_plugin() formats into it
(GCC, the PIC and shared flags, its CFLAGS, GCC_LIST, LDFLAGS, LIBS), read
from its frame (GccLine), become one compile command per source, run JOBS at a
time through the same shell, and one link command with the objects in place
of the sources. Objects whose command and inputs (source and the headers gcc
-MMD lists) are unchanged are reused from OBJECTS_DIR. Everything else
uwsgiconfig.py does (BINARY_LIST, the REQUIRES section, post_build) runs as it
always does, in the same order. A uwsgiconfig.py whose build_plugin() lacks a
name the driver reads (changed in some uWSGI version) ends the build with one
"unsupported uwsgiconfig.py" error.
"""

from __future__ import annotations

import dataclasses
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
# What the driver reads of uwsgiconfig.py's build_plugin(): its module's globals, and its locals at the gcc line.
NEEDED_GLOBALS = ("GCC", "uniq_warnings")
NEEDED_LOCALS = ("need_pic", "shared_flag", "plugin_dest", "p_cflags", "p_ldflags", "p_libs", "gcc_list")


@dataclasses.dataclass(frozen=True)
class DriverRequest:
    """What the backend asks of one run of the driver (as JSON in a file)."""

    mode: str  # "check": the plugin's NAME only; "build": check, then build
    plugin_dir: str  # the real plugin directory; the driver runs in its copy
    project_root: str  # the real project root, of which the build holds a copy laid out alike
    result: str  # where the driver writes its DriverResult
    uwsgiconfig: str | None = None  # the kit's uwsgiconfig.py (uwsgiplugin.py may import it); None: none
    uwsgi_version: str = ""  # the kit's, named when its uwsgiconfig.py is not one the driver knows
    allow_outside: bool = False  # GCC_LIST may name files outside the project (allow-outside-sources)
    verbose: bool = False  # print every compiler command
    jobs: int = 1  # compilers at once
    objects_dir: str = ""  # where compiled objects are kept, with what they were compiled from
    kept: bool = False  # the objects outlive this build (a kept build directory)

    def write(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(dataclasses.asdict(self), f)

    @classmethod
    def read(cls, path: str) -> DriverRequest:
        with open(path) as f:
            return cls(**json.load(f))


class Unsupported(Exception):
    """uwsgiconfig.py is not one the driver knows: a name it reads is missing."""


def as_written(entry):
    """A GCC_LIST entry as uwsgiplugin.py wrote it: build_plugin() puts "./" before it."""
    return entry[2:] if entry.startswith("./") else entry


def real_path(entry, real_dir):
    """Where a GCC_LIST entry really is (the build works on a copy of the project)."""
    return os.path.normpath(os.path.join(real_dir, as_written(entry)))


def outside(entry, real_dir, project_root):
    """Does this GCC_LIST entry name a file outside the project, which the build does not copy?"""
    return os.path.relpath(real_path(entry, real_dir), project_root).split(os.sep)[0] == ".."


def check_plugin_file(request):
    """Return the plugin's NAME, or an error message naming the real file."""
    real_dir, project_root = request.plugin_dir, request.project_root
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
        if outside(entry, real_dir, project_root) and not request.allow_outside:
            return None, (
                "%s lists %r in GCC_LIST, a file outside the project %s; keep sources inside it, "
                "or allow this with allow-outside-sources = true in [tool.uwsgi-plugin]"
                % (shown, entry, project_root))
        if entry.endswith((".a", ".o")):
            continue  # libraries and objects, possibly made by the build itself
        source_file = entry if entry.endswith(SOURCE_SUFFIXES) else entry + ".c"
        if outside(source_file, real_dir, project_root):
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


class GccLine:
    """The pieces build_plugin() of uwsgiconfig.py formats into its one gcc line,
    read from its frame when it runs that line (Unsupported: a name is missing)."""

    def __init__(self, frame, request):
        names, local = frame.f_globals, frame.f_locals
        missing = (["global %s" % name for name in NEEDED_GLOBALS if name not in names]
                   + ["local variable %s" % name for name in NEEDED_LOCALS if name not in local])
        if missing:
            raise Unsupported(unsupported(request, "has no %s, which the backend reads to compile the plugin"
                                          % ", ".join(missing)))
        uniq = names["uniq_warnings"]
        self.gcc, self.pic, self.shared_flag = names["GCC"], local["need_pic"], local["shared_flag"]
        self.dest, self.gcc_list = local["plugin_dest"], local["gcc_list"]
        self.cflags, self.ldflags, self.libs = uniq(local["p_cflags"]), uniq(local["p_ldflags"]), uniq(local["p_libs"])
        self.darwin = names.get("uwsgi_os") == "Darwin"


def unsupported(request, problem):
    """The one error line for a uwsgiconfig.py the driver does not know."""
    return ("unsupported uwsgiconfig.py (uWSGI %s): build_plugin() in %s %s; report it to uwsgi-plugin-backend "
            "with that uWSGI's version, and build for another uwsgi meanwhile" % (request.uwsgi_version, request.uwsgiconfig, problem))


def compile_words(line):
    """Every word a compile of the plugin gets, as the shell expands them
    ($VARS, quotes): the compiler command ($CC may carry options), the CFLAGS,
    and LDFLAGS and LIBS, which the one gcc line of a lone source compiles with."""
    text = " ".join([line.gcc, line.pic, *line.cflags, *line.ldflags, *line.libs])
    process = subprocess.run("printf '%s\\0' " + text, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return process.stdout.decode(errors="surrogateescape").split("\0")[:-1] if process.returncode == 0 else None


def cxx_runtime(line):
    """What g++ adds to a link and gcc does not: the C++ runtime, after every
    library of the line (and libm, which C++ headers call into). uwsgiconfig.py
    links with gcc, so a plugin with C++ sources would name no libstdc++ and
    load only in a uwsgi that happens to bring it (pip's uWSGI with libxml2, through
    libicuuc), not in one without (built with xml=false, or pyuwsgi)."""
    if not any(entry.endswith(CXX_SUFFIX) for entry in line.gcc_list):
        return ""
    return " -lc++" if line.darwin else " -lstdc++ -lm"


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

    def __init__(self, request):
        self.request = request
        self.cache = ObjectCache(request.objects_dir, request.kept)
        self.failures = []
        self.compile_words = None  # what the plugin is compiled with: the backend checks it keeps uwsgi.h's layouts
        self.commands = []  # the shell commands build_plugin() ran or handed us
        self.took_over = False  # build_plugin() ran its gcc line, and the driver ran it in its stead
        self.unsupported = None  # why uwsgiconfig.py is not one the driver knows

    def file_arg(self, entry):
        """A GCC_LIST file as one shell word: file names never reach the shell as code."""
        real_dir = self.request.plugin_dir
        return shlex.quote(real_path(entry, real_dir) if outside(entry, real_dir, self.request.project_root) else entry)

    def run(self, source, command):
        """Run one compiler command through the shell, as uwsgiconfig.py does."""
        if self.request.verbose:
            print(command)
        status, output = run_shell(command)
        if output:
            sys.stdout.write(output)
        if status != 0:
            self.failures.append({"source": source, "command": command, "output": output, "status": status,
                                  "shown": shortened(command, os.environ.get("UWSGI_PLUGINS_BUILDER_CFLAGS", ""))})
        return status

    def parallel(self, line):
        """Compile each source of the captured gcc line on its own, then link once."""
        cflags = " ".join(line.cflags)
        compiles, link_inputs, sources = [], [], []
        for entry in line.gcc_list:
            if entry.endswith((".a", ".o")):
                link_inputs.append(self.file_arg(entry))
                continue
            sources.append(entry)
            obj, dep, _ = self.cache.paths(entry)
            command = "%s%s %s -c %s -o %s -MMD -MF %s" % (
                line.gcc, line.pic, cflags, self.file_arg(entry), shlex.quote(obj), shlex.quote(dep))
            link_inputs.append(shlex.quote(obj))
            if not self.cache.reusable(entry, command):
                compiles.append((entry, command))
        print("[%s] compiling %d of %d sources (%d unchanged, reused), %d at a time" % (
            line.gcc, len(compiles), len(sources), len(sources) - len(compiles), self.request.jobs))
        for source, _ in compiles:  # an interrupted compile must leave no manifest that vouches for it
            self.cache.forget(source)
        from concurrent.futures import ThreadPoolExecutor  # imported late: the backend imports this module too

        with ThreadPoolExecutor(max_workers=self.request.jobs) as pool:
            statuses = list(pool.map(lambda job: self.run(*job), compiles))
        for (source, command), status in zip(compiles, statuses):
            if status == 0:
                self.cache.record(source, command, self.file_arg(source))
        if self.failures:
            return 1
        link = "%s%s %s -o %s.so %s %s %s %s%s" % (
            line.gcc, line.pic, line.shared_flag, line.dest, cflags, " ".join(link_inputs),
            " ".join(line.ldflags), " ".join(line.libs), cxx_runtime(line))
        return self.run(line.dest + ".so", link)

    def single_line(self, line):
        """uwsgiconfig.py's own gcc line, but with every file name quoted (and the C++ runtime)."""
        return "%s%s %s -o %s.so %s %s %s %s%s" % (
            line.gcc, line.pic, line.shared_flag, line.dest, " ".join(line.cflags),
            " ".join(self.file_arg(e) for e in line.gcc_list), " ".join(line.ldflags), " ".join(line.libs),
            cxx_runtime(line))

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
            try:
                line = GccLine(frame, self.request)
            except Unsupported as error:
                self.unsupported = str(error)  # kept, should uwsgiconfig.py swallow the exception
                raise
            self.took_over = True
            self.compile_words = compile_words(line)
            sources = [e for e in line.gcc_list if not e.endswith((".a", ".o"))]
            sys.stdout.flush()
            # Other toolchains (.go, .m) run as uwsgiconfig.py has it; so does a lone source
            # when nothing is kept between builds: one gcc call is then the fastest.
            if any(e.endswith((".go", ".m")) for e in sources):
                return self.run(" ".join(sources), command)
            if len(sources) > 1 or self.cache.kept:
                return self.parallel(line)
            return self.run(sources[0], self.single_line(line))

        subprocess.call = call

    def run_uwsgiconfig(self):
        """Run uwsgiconfig.py as ``uwsgi --build-plugin .`` does (it exits 1 when
        a compile fails); exit 2 when it is not one the driver knows."""
        sys.argv = [self.request.uwsgiconfig, "--extra-plugin", "."] + (["--verbose"] if self.request.verbose else [])
        try:
            runpy.run_path(self.request.uwsgiconfig, run_name="__main__")
        except Unsupported:
            pass  # self.unsupported says why
        else:
            if not self.took_over and self.unsupported is None:  # the build would skip the flag check: no
                self.unsupported = unsupported(self.request, "ran no gcc line the driver knows (a subprocess.call "
                                                             "of its local variable gccline)")
        if self.unsupported:
            sys.exit(2)


def main():
    request = DriverRequest.read(sys.argv[1])
    # As under uwsgi --build-plugin, which runs uwsgiconfig.py from the kit directory:
    # that directory, not this one, is first on sys.path, and uwsgiplugin.py may
    # import the build script (uWSGI's plugins/airbrake: from uwsgiconfig import spcall).
    if request.uwsgiconfig is None:
        del sys.path[0]
    else:
        sys.path[0] = os.path.dirname(os.path.abspath(request.uwsgiconfig))
    sys.dont_write_bytecode = True  # the kit directory is a shared cache: nothing is written into it
    name, error = check_plugin_file(request)
    with open(request.result, "w") as f:
        json.dump({"name": name, "error": error}, f)
    if error:
        sys.exit(2)
    if request.mode == "check":
        return
    build = Build(request)
    build.take_over_gcc_line()
    try:
        build.run_uwsgiconfig()
    finally:
        with open(request.result, "w") as f:
            json.dump({"name": name, "error": build.unsupported, "failures": build.failures,
                       "compile_words": build.compile_words, "commands": build.commands}, f)


if __name__ == "__main__":
    main()
