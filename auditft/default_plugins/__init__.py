"""Built-in tuners and audits: ordinary plugins, registered exactly like third-party ones."""
