"""Bringing the recipe's pixels to the local machine: grids, xee fetching, the patch store and
the patch exporter."""
