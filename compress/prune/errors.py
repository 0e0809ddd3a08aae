"""The one exception type of the pruning package."""


class PruneError(ValueError):
    """Bad pruning input: raised before any work, with a message saying how to fix it."""
