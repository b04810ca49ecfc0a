"""The Tiny Recursive Model: layers, the recursion, and the sparse puzzle-embedding table."""
