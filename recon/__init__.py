"""The optimization: materials, losses, the stage-1 model and loop, stage 2 (textures on a fixed mesh),
baking, export, evaluation and metrics, checkpoints, the run configuration (docs/design.md)."""
