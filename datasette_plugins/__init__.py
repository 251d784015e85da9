"""datasette_plugins package."""
