"""The output schema of a turn, written to a temporary file for ``--output-schema``."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import InvalidOptionsError

__all__ = ["check_output_schema", "output_schema_file"]


def check_output_schema(schema: Any) -> str | None:
    """Validate the schema early and return its JSON text (``None`` when there is none)."""
    if schema is None:
        return None
    if not isinstance(schema, Mapping):
        raise InvalidOptionsError("output_schema must be a plain JSON object")
    try:
        return json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidOptionsError(f"output_schema is not JSON-serializable: {exc}") from exc


@contextmanager
def output_schema_file(
    schema_json: str | None, directory: str | None = None
) -> Iterator[str | None]:
    """A file holding the schema for the duration of the turn, removed whatever happens.

    It goes in a new private directory inside ``directory`` (default: the system's temporary
    directory, which commands of a workspace-write sandbox may be able to write).
    """
    if schema_json is None:
        yield None
        return
    if directory is not None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="codex-output-schema-", dir=directory)
    try:
        path = Path(directory, "schema.json")
        path.write_text(schema_json, encoding="utf-8")
        yield str(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
