"""Errors a user can act on. The CLI prints each as one line (no traceback) and exits with its code."""


class CdcError(Exception):
    exit_code = 1


class ConfigError(CdcError):
    """A broken mapping file, setting or schema: the user must fix input before anything runs."""

    exit_code = 2


class ServiceUnavailable(CdcError):
    """Kafka or a database does not answer."""

    exit_code = 3
