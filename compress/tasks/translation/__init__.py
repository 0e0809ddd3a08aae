"""Translation (seq2seq): parallel data with optional references, BLEU/chrF and agreement with the float model.

Library pieces only; the `Task` plug-in that wires them into `compress run` comes separately.
"""
