"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input: a config, a path, a dataset that is not there. Never a bug in sgdlab."""


class ConfigError(UserError):
    """A config value is unknown, of the wrong type or out of range."""
