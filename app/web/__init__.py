"""HTTP layer: the only package that imports Bottle; routes stay thin."""
