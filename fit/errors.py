class FitInputError(ValueError):
    """Bad input to `ladder fit`: the message is one line naming the file or key at fault."""
