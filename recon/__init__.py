"""Reconstruction, one sub-package per job, each importing only those listed before it:

- ``recon.errors``, ``recon.distributed``, ``recon.run_dir``: what every job shares (the user errors of a
  run, processes and devices, the run folder's layout).
- ``recon.asset``: the exported asset: baking, textures, the export contract, reading it back, the
  backdrop beside it.
- ``recon.scenes``: where views come from: the dataset settings, the built-in synthetic scenes and the
  truth they keep (reference materials).
- ``recon.evaluation``: judging an exported asset (metrics, materials, relighting, Mitsuba, Blender);
  it imports nothing of training.
- ``recon.train``: the optimization: the stage-1 model and material, losses, the loop, stage 2, the
  volumetric warm-up, checkpoints.
- ``recon.config``, ``recon.run``, ``recon.run_folder``, ``recon.progress``, ``recon.resume``: one run of
  ``train.py`` that ties them together (docs/design.md).
"""
