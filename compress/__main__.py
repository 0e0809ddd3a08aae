from edge_compress.compress.cli import main

main()
