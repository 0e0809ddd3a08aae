"""Bodies of the verbs other than `run`: demo, generate, qat, prune."""
