"""Training: the Lightning module, the training loop, checkpoints and learning curves."""
