"""Where a run's views come from: the dataset settings and the scene they give (``scene``), the built-in
synthetic scenes (``synthetic``, ``procedural``) and the truth they keep for the evaluation
(``reference``: gt_material.json)."""
