"""The UI's logic, importable and testable on its own: reading recorded bodies into
blocks, diffing them, loading calls and sessions from SQLite, formatting, charts.

Not loaded by `--plugins-dir` (which only globs the top level of `datasette_plugins/`):
the hook modules there are thin and call into this package.
"""
