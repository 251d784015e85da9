"""Interlock's Datasette UI: plugins loaded with `datasette --plugins-dir datasette_plugins`.

The top-level modules are the plugins, each a few `@hookimpl` functions:
`interlock_pages` (the call diff, raw stages and session pages), `interlock_cells`
(how recorder columns render in tables), `interlock_home` (the cost chart, the calls
table's columns) and `interlock_metadata` (titles, descriptions, facets and canned
queries from `metadata.yaml`). Their logic lives in `datasette_plugins.ui`; templates in
`templates/` (pass `--template-dir`), the stylesheet in `static/`. `just ui` starts it all
through `python -m datasette_plugins.ui.serve`.
"""
