"""``python -m arcpipe`` (and ``torchrun -m arcpipe``) runs the CLI."""

from arcpipe.faults import install_from_environment

install_from_environment()  # only when $ARCPIPE_FAULTS holds a plan (the reliability suite)

from arcpipe.cli import main  # noqa: E402

main()
