"""The one exception type of the trimming package."""

from edge_compress.compress.errors import CompressError


class TrimError(CompressError, ValueError):
    """Input the trimmer cannot handle (a tokenizer model or a vocabulary-sized weight it does not know), with the fix.

    A `CompressError` so the CLI prints it as a user error; a `ValueError` for plain-API callers.
    """
