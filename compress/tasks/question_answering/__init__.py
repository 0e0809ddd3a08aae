"""Extractive question answering: SQuAD-style data, windowed features, span post-processing, EM/F1 metrics,
and the `Task` plug-in (task.py) that runs them through `compress run --task question-answering`.
"""
