"""The optimization: materials, losses, trainer, export, metrics, checkpoints, logging.

Not implemented yet (see DESIGN.md §2); ``train.py`` reports that instead of pretending to train.
"""
