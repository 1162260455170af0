"""``python -m accelsim``: the same command line as ``accelsim``."""

from accelsim.cli import main

main()
