"""Built-in policies, each in its own module."""
