"""Multi-view datasets: one camera model (:mod:`data.cameras`), a parser per format (NeRF-synthetic,
nerfstudio, COLMAP, LLFF), scene normalization and the cached dataset (:mod:`data.dataset`)."""
