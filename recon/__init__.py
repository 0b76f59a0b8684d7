"""The optimization: materials, losses, the stage-1 model and training loop, checkpoints, the run
configuration. Stage 2, export, evaluation and metrics are still to come (DESIGN.md §2).
"""
