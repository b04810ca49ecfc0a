"""Sudoku-Extreme and Maze-Hard: the non-ARC benchmarks of the TRM paper.

* :mod:`arcpipe.puzzles.sudoku` — CSV files, a guess-counting solver, a rated generator, exact
  canonical forms (to keep equivalent puzzles out of both splits) and the training augmentation.
* :mod:`arcpipe.puzzles.maze` — CSV files, the Searchformer-style 30x30 generator, shortest-path
  checks and the dihedral augmentation.
* :mod:`arcpipe.puzzles.build` — ``build-data --task sudoku|maze``: CSV files -> dataset directory.
* :mod:`arcpipe.puzzles.evaluate` — exact accuracy and validity of predicted solutions.
* :mod:`arcpipe.puzzles.cli` — the ``generate`` and ``evaluate`` commands.
"""
