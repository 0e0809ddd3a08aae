"""edge-compress's public Python API: one import name that will not collide with anything in your environment.

    import edge_compress
    report = edge_compress.run("my-checkpoint", "eval.csv", out="runs/first")

`run` is `compress run`; `load_report` reads a report.json as the same typed `Report`; `Recipe` is the recipe schema.
The implementation lives in the repository's `compress/` and `export/` folders (README, "Layout").
"""
from __future__ import annotations

from edge_compress.compress import __version__
from edge_compress.compress.api import Delta, Latency, Report, Variant, load_report, run
from edge_compress.compress.errors import CompressError
from edge_compress.compress.recipe import Recipe

__all__ = ["CompressError", "Delta", "Latency", "Recipe", "Report", "Variant", "__version__", "load_report", "run"]
