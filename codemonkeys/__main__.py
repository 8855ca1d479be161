"""`python -m codemonkeys`: the same as the `codemonkeys` command."""

from codemonkeys.cli import main

main()
