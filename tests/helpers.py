"""What the tests share: where the repository and the reference data are, the settings of a tiny run,
train.py in a subprocess, small meshes and glTF readers. The one place that finds ``../shared``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from geometry.primitives import uv_sphere

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TINY = [
    "export.texture_resolution=64",
    "stage2.steps=2",
    "train.steps=2",
    "train.volume.steps=2",
    "train.batch_size=2",
    "train.progress=false",
    "train.image_every=1",
    "model.light.resolution=16",
    "model.grid.resolution=32",
]
TINY_SYNTHETIC = [
    "dataset.synthetic.resolution=32",
    "dataset.synthetic.n_train=4",
    "dataset.synthetic.n_val=1",
    "dataset.synthetic.n_test=1",
    "dataset.synthetic.mesh_resolution=32",
    "dataset.synthetic.light_resolution=16",
]


def train(run_dir: Path, *arguments: str, threads: int = 0) -> subprocess.CompletedProcess:
    """``python train.py`` in a subprocess; ``threads`` > 0 pins PyTorch's thread count (1 = bitwise
    reproducible: with more, float sums reorder and training trajectories drift apart)."""
    command = [sys.executable, "train.py", f"hydra.run.dir={run_dir}", *arguments]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else None
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False, env=env
    )


def sphere_mesh(n_lat=16, n_lon=32, radius=1.0, centre=(0.0, 0.0, 0.0)):
    """A closed UV sphere: vertices [V, 3] float32, faces [F, 3] int64."""
    vertices, _, faces = uv_sphere(n_lat, n_lon, radius)
    return vertices.float() + torch.tensor(centre), faces.long()


def gltf_accessor(gltf, index: int, components: int) -> np.ndarray:
    """The float32 or uint32 array [count, components] of accessor ``index`` of a loaded GLB."""
    accessor, blob = gltf.accessors[index], gltf.binary_blob()
    view = gltf.bufferViews[accessor.bufferView]
    dtype = np.float32 if accessor.componentType == 5126 else np.uint32
    start = view.byteOffset + (accessor.byteOffset or 0)
    return np.frombuffer(blob, dtype, accessor.count * components, start).reshape(accessor.count, components)


class CountingLoad:
    """A load reading for geometry.cpu_threads' policy that counts how often it is looked at, and always
    reports one busy neighbour on two cores."""

    available = True

    def __init__(self):
        self.looks = 0

    def seconds_since(self) -> float:
        self.looks += 1
        return 1.0

    def others(self) -> float:
        return 1.0


def compose_config(*overrides: str):
    """The configuration ``python train.py *overrides`` runs with (Hydra's composition, in-process)."""
    from hydra import compose, initialize_config_dir

    from recon.config import register, to_config

    register()
    with initialize_config_dir(str(ROOT / "configs"), version_base=None):
        return to_config(compose(config_name="config", overrides=list(overrides)))
