"""Multi-view datasets: one camera model (:mod:`data.cameras`), a parser per format (NeRF-synthetic,
nerfstudio, COLMAP, LLFF), scene normalization, the world's up axis and the cached dataset
(:mod:`data.dataset`). The rendered synthetic scenes live above, in :mod:`recon.scenes.synthetic` (they need
the renderer)."""
