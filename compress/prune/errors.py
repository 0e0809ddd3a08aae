"""The one exception type of the pruning package."""

from edge_compress.compress.errors import CompressError


class PruneError(CompressError, ValueError):
    """Bad pruning input: raised before any work, with a message saying how to fix it.

    A `CompressError` so the CLI prints it as a user error; a `ValueError` for plain-API callers.
    """
