"""A plugin project that ships Python code of its own beside the plugin."""

from ._uwsgi_plugin import plugin_dir

GREETING_HELPER = "kept"

__all__ = ["plugin_dir", "GREETING_HELPER"]
