"""Training: ACT carry and losses, optimizers and schedules, EMA, checkpoints, the loop."""
