"""The backend's one door into the runtime module (runtime/_uwsgi_plugin.py).

That module is copied into every plugin wheel and uses the standard library
only; it is also where a uwsgi binary is found, asked and identified, and
where the ABI key is computed, so that build and run time agree. The backend
imports what it needs of it from here: the names listed in its
``BACKEND_API``, and nothing else (tests/test_architecture.py checks both).
"""

from __future__ import annotations

from .runtime._uwsgi_plugin import (
    BUILDS_DIR,
    CACHE_ENV,
    EDITABLE_POINTER,
    ENV_VAR,
    KEY_FORMAT,
    NOTABLE_FEATURES,
    CannotAsk,
    NoMatchingBuild,
    abi_fits,
    abi_lines,
    abi_summary,
    ask,
    ask_for_pyuwsgi,
    binary_abi,
    binary_identity,
    cache_dir_named,
    dot_h_hash,
    elf_interpreter,
    fallback_builds_dir,
    find_default_uwsgi,
    flag_text,
    fnv1a64,
    hash_of_parts,
    libc_family,
    neutral_flag,
    platform_of,
    process_elf,
    read_flags,
    record_fits,
    reserved_macro,
    script_interpreter,
    shell_words,
    tested_macros,
    trusted_uwsgi,
    uwsgi_env,
)

__all__ = [
    "BUILDS_DIR", "CACHE_ENV", "EDITABLE_POINTER", "ENV_VAR", "KEY_FORMAT", "NOTABLE_FEATURES", "CannotAsk",
    "NoMatchingBuild", "abi_fits", "abi_lines", "abi_summary", "ask", "ask_for_pyuwsgi", "binary_abi", "binary_identity", "cache_dir_named",
    "dot_h_hash", "elf_interpreter", "fallback_builds_dir", "find_default_uwsgi", "flag_text", "fnv1a64",
    "hash_of_parts", "libc_family", "neutral_flag", "platform_of", "process_elf", "read_flags", "record_fits", "reserved_macro",
    "script_interpreter", "shell_words", "tested_macros", "trusted_uwsgi", "uwsgi_env",
]
