"""The backend's version, where every part can read it (the hooks in __init__.py sit above them all)."""

__version__ = "0.1.0"
