"""The optimization: materials (:mod:`recon.material`) and losses (:mod:`recon.losses`) exist; the
trainer, export, metrics, checkpoints and logging are still to come (DESIGN.md §2), and ``train.py``
reports that instead of pretending to train.
"""
