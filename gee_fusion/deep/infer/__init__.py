"""Sliding-window inference: tile plans, blending, column bands, map writing, predict."""
