"""arcpipe: the Tiny Recursive Model (TRM) as a complete ARC-AGI pipeline."""

__version__ = "0.1.0"
