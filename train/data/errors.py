"""The data stage's bad-input error, below every module that raises it."""


class DataError(ValueError):
    """Bad input data; the message names the file (and line where it applies)."""
