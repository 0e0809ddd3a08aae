"""Extractive question answering: SQuAD-style data, windowed features, span post-processing, EM/F1 metrics.

Library pieces only; the `Task` plug-in that wires them into `compress run` comes separately.
"""
