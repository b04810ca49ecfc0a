"""Grid <-> token encoding on a fixed canvas, and the crop that recovers a grid (reference §1.4).

Vocabulary: ``PAD`` 0, ``EOS`` 1, colours 0-9 as tokens 2-11. A grid of ``h x w`` is placed on a
``canvas x canvas`` board at a row/column offset (0, 0 unless translated), with an EOS row just
below it and an EOS column just right of it where they fit; the corner cell stays PAD. Labels use
the same encoding; PAD label cells are ignored by the loss.
"""

from __future__ import annotations

import numba
import numpy as np

from arcpipe.arc.augment import dihedral_source

PAD = 0
EOS = 1
COLOUR_OFFSET = 2  # token = colour + COLOUR_OFFSET
VOCAB_SIZE = 12
DEFAULT_CANVAS = 30
IGNORE = -100  # label id the loss skips: the PAD cells of a label board (torch's ignore_index)


def grid_to_tokens(grid: np.ndarray, canvas: int = DEFAULT_CANVAS, offset=(0, 0)) -> np.ndarray:
    """Encode one grid. Returns uint8 ``[canvas * canvas]``."""
    board = np.full((canvas, canvas), PAD, dtype=np.uint8)
    _paint(board, np.asarray(grid, dtype=np.uint8), int(offset[0]), int(offset[1]))
    return board.reshape(-1)


def label_cells(
    grid: np.ndarray, canvas: int = DEFAULT_CANVAS, offset=(0, 0)
) -> tuple[np.ndarray, np.ndarray]:
    """The cells a label of ``grid`` supervises: its colours and its EOS row and column.

    PAD cells are left out (the loss ignores them), so a grid's shape counts through its EOS
    border and nothing else. Returns positions int64 [n] into the flat board and their tokens
    uint8 [n], in board order.
    """
    board = grid_to_tokens(grid, canvas, offset)
    positions = np.flatnonzero(board != PAD)
    return positions, board[positions]


@numba.njit(cache=True)
def _paint(board: np.ndarray, grid: np.ndarray, r0: int, c0: int) -> None:
    """Write ``grid`` and its EOS row/column onto ``board`` at ``(r0, c0)``."""
    h, w = grid.shape
    canvas = board.shape[0]
    for i in range(h):
        for j in range(w):
            board[r0 + i, c0 + j] = grid[i, j] + COLOUR_OFFSET
    if r0 + h < canvas:
        board[r0 + h, c0 : c0 + w] = EOS
    if c0 + w < canvas:
        board[r0 : r0 + h, c0 + w] = EOS


@numba.njit(cache=True)
def crop_shape(board: np.ndarray) -> tuple[int, int]:
    """The largest top-left rectangle of colour tokens, as the reference's evaluator finds it.

    ``board`` is a canvas, or a box (``rows x cols``) of a boxed layout.

    Rows are scanned top-down; the usable width shrinks at the first non-colour token of each row
    and never grows back; the (rows, cols) with the largest area wins (the first one on ties).
    """
    best_area, best_r, best_c = 0, 0, 0
    width = board.shape[1]
    for r in range(board.shape[0]):
        for c in range(width):
            token = board[r, c]
            if token < COLOUR_OFFSET or token > VOCAB_SIZE - 1:
                width = c
                break
        if width == 0:
            break
        area = (r + 1) * width
        if area > best_area:
            best_area, best_r, best_c = area, r + 1, width
    return best_r, best_c


def tokens_to_grid(tokens: np.ndarray, canvas: int = DEFAULT_CANVAS) -> np.ndarray:
    """Crop a token board (``[canvas * canvas]`` or ``[canvas, canvas]``) back to a colour grid.

    Returns uint8 ``[h, w]``; ``[0, 0]`` when the top-left token is not a colour.
    """
    board = np.asarray(tokens).reshape(canvas, canvas)
    rows, cols = crop_shape(board)
    return (board[:rows, :cols] - COLOUR_OFFSET).astype(np.uint8)


@numba.njit(cache=True, parallel=False)
def encode_examples(
    cells: np.ndarray,
    grids: np.ndarray,
    pairs: np.ndarray,
    dihedrals: np.ndarray,
    colours: np.ndarray,
    row_perms: np.ndarray,
    col_perms: np.ndarray,
    pair_ids: np.ndarray,
    offsets: np.ndarray,
    canvas: int,
    offset_token: int,
    inputs: np.ndarray,
    labels: np.ndarray,
) -> None:
    """Encode a batch of augmented examples straight from the stored original grids.

    Args:
        cells: uint8 [total_cells], every original grid flattened back to back.
        grids: int64 [G, 3], each grid's (first cell, height, width).
        pairs: int32 [P, 2], each pair's (input grid, output grid or -1 when unknown).
        dihedrals: [B] dihedral id of each example's variant.
        colours: uint8 [B, 10] value map of each example's variant.
        row_perms, col_perms: uint8 [B, canvas] row i of the view is row ``row_perms[i]`` of the
            dihedral transform (identity for ARC; Sudoku's band and row shuffles); likewise columns.
        pair_ids: [B] pair of each example.
        offsets: [B, 2] (row, column) translation of each example.
        canvas: board side.
        offset_token: token of cell value 0 (COLOUR_OFFSET for ARC).
        inputs, labels: uint8 [B, canvas * canvas] outputs; a pair with an unknown output gets an
            all-PAD label row (nothing supervised).
    """
    for b in range(pair_ids.shape[0]):
        for k in range(2):
            out = inputs[b] if k == 0 else labels[b]
            out[:] = PAD
            grid = pairs[pair_ids[b], k]
            if grid < 0:
                continue
            start, h, w = grids[grid, 0], grids[grid, 1], grids[grid, 2]
            d = dihedrals[b]
            th, tw = (w, h) if (d == 1 or d == 3 or d == 6 or d == 7) else (h, w)
            r0, c0 = offsets[b, 0], offsets[b, 1]
            for i in range(th):
                row = (r0 + i) * canvas + c0
                for j in range(tw):
                    si, sj = dihedral_source(d, row_perms[b, i], col_perms[b, j], h, w)
                    out[row + j] = colours[b, cells[start + si * w + sj]] + offset_token
                if c0 + tw < canvas:
                    out[row + tw] = EOS
            if r0 + th < canvas:
                row = (r0 + th) * canvas + c0
                out[row : row + tw] = EOS
