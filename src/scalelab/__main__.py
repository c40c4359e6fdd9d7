"""``python -m scalelab``: the command line."""

from scalelab.cli import main

main()
