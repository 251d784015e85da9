"""addons package."""
