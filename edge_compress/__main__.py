"""`python -m edge_compress ...` is the `compress` command."""
from edge_compress.compress.cli import main

main()
