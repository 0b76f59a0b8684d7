"""Judging an exported asset, as other tools see it: image and surface metrics (``metrics``), materials
against their truth (``materials``), relighting (``relight_eval``, ``relight``), Mitsuba and Blender
renders (``mitsuba``, ``blender``) and a run folder's evaluation (``evaluate``). Reads the asset's files
and the run's settings only: nothing of training is imported (tests/test_layering.py)."""
