"""The one lifecycle of `compress run`: check, load, torch stages, variants, measure, select, package, write."""
