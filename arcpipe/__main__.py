"""``python -m arcpipe`` (and ``torchrun -m arcpipe``) runs the CLI."""

from arcpipe.cli import main

main()
