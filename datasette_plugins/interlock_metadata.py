"""Datasette plugin: titles, descriptions, facets and canned queries for every database
the recorder wrote, from `metadata.yaml` (see `ui.meta`)."""

from __future__ import annotations

from typing import Any

from datasette import hookimpl
from datasette.app import Datasette

from datasette_plugins.ui import meta, registry


@hookimpl
def get_metadata(datasette: Datasette) -> dict[str, Any]:
    return meta.metadata_for(registry.recorder_databases(datasette))
