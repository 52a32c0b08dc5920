"""The OpenAPI request bodies of the routes that read their uploads themselves (``service.uploads``), so
that FastAPI cannot infer them: multipart forms of files, arrays of files and strings, optionally with
the same image sent raw as the body."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Schema = dict[str, Any]

BINARY: Schema = {"type": "string", "format": "binary"}


def _described(schema: Schema, description: str | None) -> Schema:
    return {**schema, "description": description} if description else schema


def file_field(description: str | None = None) -> Schema:
    """A form field holding one file."""
    return _described(dict(BINARY), description)


def files_field(description: str | None = None) -> Schema:
    """A form field repeated, one file each."""
    return _described({"type": "array", "items": dict(BINARY)}, description)


def string_field(description: str | None = None, pattern: str | None = None) -> Schema:
    """A form field holding text, matching ``pattern`` if given."""
    schema: Schema = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return _described(schema, description)


def multipart_body(
    fields: Mapping[str, Schema], required: Sequence[str] = (), raw_media_types: Sequence[str] = ()
) -> dict[str, Any]:
    """A route's ``openapi_extra``: a required body, a ``multipart/form-data`` form of ``fields`` (in their
    order; ``required``: the names the form must have), or a file sent alone as the body with one of
    ``raw_media_types``."""
    form: Schema = {"type": "object"}
    if required:
        form["required"] = list(required)
    form["properties"] = dict(fields)
    content: dict[str, Any] = {"multipart/form-data": {"schema": form}}
    content.update({media_type: {"schema": dict(BINARY)} for media_type in raw_media_types})
    return {"requestBody": {"required": True, "content": content}}
