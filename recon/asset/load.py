"""An exported asset read back from its files (docs/design.md, "Export contract"), and the views of a
dataset in the asset's world units, for evaluating it."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import imageio.v3 as iio
import numpy as np
import torch

from data.dataset import MultiViewDataset
from data.normalization import SceneTransform
from data.orientation import Z_UP, rotation_to_z_up
from geometry.obj import read_obj
from recon.asset.texture_material import TextureMaterial
from recon.errors import AssetError
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.occlusion import vertex_occlusion
from render.renderer import render_views


class Asset(NamedTuple):
    """An exported asset read back (world units): what :func:`render.renderer.render_views` needs."""

    vertices: torch.Tensor
    faces: torch.Tensor
    uv: torch.Tensor
    uv_faces: torch.Tensor
    material: TextureMaterial
    light: EnvironmentLight
    occlusion: torch.Tensor | None
    """[V] ambient occlusion of the mesh when the asset has it baked (ORM's R channel below 1), else None."""

    def render(self, cameras, background: torch.Tensor | None = None, light: EnvironmentLight | None = None):
        """The asset in ``cameras`` under its own probe (or ``light``)."""
        return render_views(
            self.vertices, self.faces, cameras, light or self.light, self.material, background,
            uv=self.uv, uv_faces=self.uv_faces, occlusion=self.occlusion,
        )  # fmt: skip


def has_baked_occlusion(folder: Path) -> bool:
    """Whether the ORM texture's R channel holds ambient occlusion (anything below 1)."""
    path = folder / "texture_ks.png"
    return path.is_file() and int(np.asarray(iio.imread(path))[..., 0].min()) < 255


def load_asset(folder: Path, light_resolution: int, up=Z_UP, turn: torch.Tensor | None = None) -> Asset:
    """An exported asset (docs/design.md, "Export contract"), in world units; ``up``: the world's up
    axis, the probe's pole. ``turn`` [3, 3]: the light is wanted in the world rotated by it (the mesh
    stays as written). When the asset has occlusion baked, the mesh's own (render.occlusion, which the
    bake was made of) shades it, as a glTF viewer applies ``occlusionTexture``."""
    for name in ("mesh.obj", "probe.hdr"):
        if not (folder / name).is_file():
            raise AssetError(f"{folder / name}: not found (the asset is incomplete)")
    mesh = read_obj(folder / "mesh.obj")
    if mesh.uv is None:
        raise AssetError(f"{folder / 'mesh.obj'}: no texture coordinates")
    light = EnvironmentLight.from_file(
        folder / "probe.hdr", EnvironmentLightConfig(resolution=light_resolution),
        rotation=(rotation_to_z_up(up) if turn is None else rotation_to_z_up(up) @ turn.double().T).float(),
    )  # fmt: skip
    occlusion = vertex_occlusion(mesh.vertices, mesh.faces) if has_baked_occlusion(folder) else None
    material = TextureMaterial.from_files(folder)
    return Asset(mesh.vertices, mesh.faces, mesh.uv, mesh.uv_faces, material, light, occlusion)


def asset_dataset(scene, split: str, downscale: float) -> MultiViewDataset:
    """The views of a split in the dataset's own units (exports are), over white."""
    world = SceneTransform(torch.zeros(3), 1.0, "identity")
    return MultiViewDataset(scene, split, downscale=downscale, background="white", transform=world)
