"""Puzzle generators, solvers and CSV I/O for the non-ARC benchmarks of the TRM paper.

* :mod:`arcpipe.puzzles.sudoku` — Sudoku-Extreme: CSV files, a guess-counting solver, a rated
  generator, exact canonical forms (to keep equivalent puzzles out of both splits) and the
  training augmentation.
* :mod:`arcpipe.puzzles.maze` — Maze-Hard: CSV files, the Searchformer-style 30x30 generator,
  shortest-path checks and the dihedral augmentation.
"""
