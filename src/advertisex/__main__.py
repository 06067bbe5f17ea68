"""`python -m advertisex`: the command line."""

from advertisex.cli import main

main()
