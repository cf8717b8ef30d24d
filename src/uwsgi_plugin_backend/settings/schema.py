"""The JSON schema of ``[tool.uwsgi-plugin]``, made from the same option model
the backend validates with (settings.OPTIONS, with the help under each field); registered with validate-pyproject
(entry point group ``validate_pyproject.tool_schema``) and shipped as
uwsgi-plugin.schema.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..settings import OPTIONS, Option, option_help

SCHEMA_FILE = Path(__file__).with_name("uwsgi-plugin.schema.json")
STRING_LIST = {"type": "array", "items": {"type": "string"}}


def _property(option: Option, help: str) -> dict[str, Any]:
    if option.kind is list:
        shape: dict[str, Any] = {"oneOf": [{"type": "string"}, STRING_LIST]} if option.one_or_more else dict(STRING_LIST)
    else:
        shape = {"type": {str: "string", bool: "boolean"}[option.kind]}
    return {**shape, "description": help}


def tool_schema(tool_name: str = "uwsgi-plugin") -> dict[str, Any]:
    """Validate the ``[tool.uwsgi-plugin]`` table of a uWSGI plugin project (uwsgi-plugin-backend)."""
    help_of = option_help()
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://pypi.org/project/uwsgi-plugin-backend/uwsgi-plugin.schema.json",
        "title": f"[tool.{tool_name}]",
        "description": "Configuration of uwsgi-plugin-backend, the build backend for uWSGI plugins.",
        "type": "object",
        "additionalProperties": False,
        "properties": {option.key: _property(option, help_of[option.key]) for option in OPTIONS if option.pyproject},
    }


def schema_text() -> str:
    return json.dumps(tool_schema(), indent=2) + "\n"
