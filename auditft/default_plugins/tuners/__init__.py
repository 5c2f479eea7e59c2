"""Built-in tuner plugins, one per module."""
