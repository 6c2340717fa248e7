"""``python -m loopwright.cli``: the same command line as ``loopwright``."""

from . import main

main()
