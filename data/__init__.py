"""Multi-view datasets: one camera model (:mod:`data.cameras`), a parser per format (NeRF-synthetic,
nerfstudio, COLMAP, LLFF), scene normalization, the cached dataset (:mod:`data.dataset`) and rendered
synthetic scenes with their ground truth (:mod:`data.synthetic`)."""
