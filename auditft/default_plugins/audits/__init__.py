"""Built-in audit plugins, one per module."""
