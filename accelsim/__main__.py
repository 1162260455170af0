"""``python -m accelsim``: the same command line as ``accelsim``."""

from accelsim.entry import main

main()
