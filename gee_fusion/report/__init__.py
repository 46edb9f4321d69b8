"""Figures for people: confusion-matrix plots, month grids (the comparison report grows here)."""
