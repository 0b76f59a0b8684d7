"""Stage 2: fixed topology. The stage-1 mesh is unwrapped (xatlas), the material MLP baked into textures,
then textures, light and (optionally) vertex positions are optimized against the images."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from data.dataset import Batch, MultiViewDataset
from data.ground import Region
from data.settings import Settings, require
from geometry.mesh import decimate, remove_small_components, unwrap_uv
from geometry.regularizers import laplacian_loss
from recon.asset.bake import Textures, bake_textures
from recon.asset.texture_material import TextureMaterial
from recon.distributed import DistributedContext
from recon.evaluation.metrics import psnr
from recon.run_dir import RunDir
from recon.train.loop import TrainingLoop, adam, exponential_decay
from recon.train.losses import IMAGE_LOSSES, image_loss, mask_loss
from recon.train.material import MaterialConfig
from recon.train.model import ReconstructionModel
from recon.train.trainer import TrainConfig
from render.background import Backdrop
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.occlusion import vertex_occlusion
from render.renderer import RenderOutput, render_views


@dataclass
class Stage2Config(Settings):
    """Settings of the fixed-topology stage."""

    steps: int = 300
    """0 skips stage 2 (the final asset is then the stage-1 one)."""
    batch_size: int = 4
    crop: int = 0
    """Random ``crop`` x ``crop`` windows of the views instead of whole views (0: whole views)."""
    texture_lr: float = 1e-2
    light_lr: float = 1e-2
    optimize_vertices: bool = True
    """Refine vertex positions too (topology fixed), not only textures and light."""
    vertex_lr: float = 1e-3
    """Adam step for the offsets, in the normalized frame (object radius ~0.8)."""
    final_lr_fraction: float = 0.1
    """Every learning rate decays exponentially to this fraction of its start by the last step (1: constant;
    the textures and vertices then follow the last batches' views to the end: docs/benchmarks.md)."""
    laplacian_weight: float = 10.0
    """Keeps moved vertices smooth (uniform Laplacian of the offsets' result)."""
    image: str = "l1"
    mask_weight: float = 1.0
    normal_map: bool = False
    """Learn a tangent-space normal map (texture_n.png; starts from the stage-1 perturbation when
    ``model.material.normal_perturbation`` is on, else flat)."""
    normal_lr: float = 1e-2
    normal_smoothness_weight: float = 0.1
    """Weight of the mean absolute difference of neighbouring normal-map texels."""
    metallic_weight: float = 0.01
    """Weight of the mean of the metallic texture, a prior for dielectrics (train.losses.metallic_weight)."""
    occlusion: bool = True
    """Shade with the mesh's ambient occlusion (render.occlusion), so that crevices darkened by the photos'
    shadows are not painted into the base colour; the export bakes it into ORM's R channel."""
    occlusion_every: int = 100
    """Recompute the occlusion every this many steps (the vertices move)."""
    occlusion_directions: int = 128
    """Depth maps per occlusion computation (256^2 each), in stage 2 and for the exported asset's occlusion
    (stage 1, whose mesh changes every step, uses recon.train.model.STAGE1_OCCLUSION_DIRECTIONS)."""

    def check(self) -> None:
        for name, least in (
            ("steps", 0),
            ("batch_size", 1),
            ("occlusion_every", 1),
            ("occlusion_directions", 8),
        ):
            require(self, name, getattr(self, name) >= least, f"an integer >= {least}")
        require(
            self, "crop", self.crop == 0 or self.crop >= 16, "0 (whole views) or a window side >= 16 pixels"
        )
        for name in ("texture_lr", "light_lr", "vertex_lr", "normal_lr"):
            require(self, name, getattr(self, name) >= 0, "a learning rate >= 0")
        require(self, "final_lr_fraction", 0 < self.final_lr_fraction <= 1, "a fraction in (0, 1]")
        for name in ("laplacian_weight", "mask_weight", "normal_smoothness_weight", "metallic_weight"):
            require(self, name, getattr(self, name) >= 0, "a weight >= 0")
        require(self, "image", self.image in IMAGE_LOSSES, f"one of {', '.join(IMAGE_LOSSES)}")


class Stage2Model(nn.Module):
    """A fixed mesh (normalized frame) with UV textures and the light; vertex offsets when enabled."""

    def __init__(
        self, vertices, faces, uv, uv_faces, material: TextureMaterial, light: EnvironmentLight,
        backdrop: Backdrop | None = None, region: Region | None = None,
    ):  # fmt: skip
        super().__init__()
        self.region = region  # vertex offsets keep the vertices inside it (not saved: the dataset gives it)
        self.register_buffer("base_vertices", vertices.detach().clone())
        self.register_buffer("faces", faces.clone())
        self.register_buffer("uv", uv.clone())
        self.register_buffer("uv_faces", uv_faces.clone())
        self.offsets = nn.Parameter(torch.zeros_like(vertices))
        self.material = material
        self.light = light
        self.backdrop = backdrop
        self.register_buffer("occlusion", None)  # [V] ambient occlusion when shading uses it

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's, taking the occlusion buffer also into a model that has none yet (a resume)."""
        if "occlusion" in state_dict and self.occlusion is None:
            self.occlusion = state_dict["occlusion"].clone()
        return super().load_state_dict(state_dict, strict, assign)

    def update_occlusion(self, directions: int = 128) -> None:
        """Ambient occlusion [V] of the current vertices (render.occlusion)."""
        self.occlusion = vertex_occlusion(self.vertices.detach(), self.faces, directions=directions)

    @classmethod
    def from_stage1(
        cls, model: ReconstructionModel, texture_resolution: int, min_component_fraction: float,
        normal_map: bool | None = None, max_faces: int = 0,
    ):  # fmt: skip
        """Extract and clean the stage-1 mesh, decimate it to at most ``max_faces`` faces (0: keep all),
        unwrap it and bake its material MLP (``normal_map``: see
        :class:`recon.asset.texture_material.TextureMaterial`)."""
        with torch.no_grad():
            vertices, faces, _ = model.extract()
            vertices, faces = remove_small_components(vertices, faces, min_component_fraction)
            vertices, faces = decimate(vertices, faces, max_faces)
            uv, uv_faces = unwrap_uv(vertices, faces, resolution=texture_resolution)
            textures = bake_textures(model.material, vertices, faces, uv, uv_faces, texture_resolution)
        light = EnvironmentLight(model.light.config, model.light.base.detach())
        backdrop = copy.deepcopy(model.backdrop) if model.backdrop is not None else None
        ranges = material_ranges(model.material.config)
        material = TextureMaterial(textures, normal_map=normal_map, **ranges)
        return cls(vertices, faces, uv, uv_faces, material, light, backdrop, model.region)

    @classmethod
    def from_state(
        cls, state: dict[str, torch.Tensor], light: EnvironmentLightConfig,
        material: MaterialConfig | None = None,
    ) -> Stage2Model:  # fmt: skip
        """The model a :meth:`state_dict` (e.g. a stage-2 checkpoint's) was taken from, for any mesh and
        texture size (``material``: the stage-1 material's config, whose value ranges the textures keep;
        see :class:`TextureMaterial`)."""
        rm = state["material.roughness_metallic"][0]
        normal = state.get("material.normal_map")
        textures = Textures(
            state["material.base_color"][0], rm[..., :1], rm[..., 1:], torch.ones(1),
            None if normal is None else normal[0],
        )  # fmt: skip
        model = cls(
            state["base_vertices"], state["faces"], state["uv"], state["uv_faces"],
            TextureMaterial(textures, **material_ranges(material or MaterialConfig())),
            EnvironmentLight(light, state["light.base"]),
            Backdrop.from_state(state, "backdrop.") if "backdrop.enabled" in state else None,
        )  # fmt: skip
        model.load_state_dict(state)
        return model

    @property
    def vertices(self) -> torch.Tensor:
        return self.base_vertices + self.offsets

    def forward(self, batch: Batch) -> RenderOutput:
        """:meth:`render` (the call DistributedDataParallel wraps)."""
        return self.render(batch)

    def render(self, batch: Batch) -> RenderOutput:
        """The views of ``batch``: over its background colour, or over the backdrop for photos."""
        background = batch.background if self.backdrop is None else None
        out = render_views(
            self.vertices, self.faces, batch.cameras, self.light, self.material, background,
            uv=self.uv, uv_faces=self.uv_faces, occlusion=self.occlusion,
        )  # fmt: skip
        return out if self.backdrop is None else self.backdrop(out, batch.cameras, self.light)


class Stage2Trainer(TrainingLoop):
    """Stage 2: textures and light (and vertex offsets when enabled) at a fixed topology, the learning
    rates decaying exponentially to ``final_lr_fraction``; checkpoints in ``run_dir/checkpoints/stage2``,
    TensorBoard steps after stage 1's ``step_offset``."""

    name = "stage 2"
    config_key = "stage2"

    def __init__(
        self, model: Stage2Model, dataset: MultiViewDataset, config: Stage2Config, settings: TrainConfig,
        run_dir: Path, context: DistributedContext | None = None, step_offset: int = 0,
    ):  # fmt: skip
        groups = [
            {"params": [model.material.base_color, model.material.roughness_metallic],
             "lr": config.texture_lr, "name": "textures"},
            {"params": model.light.parameters(), "lr": config.light_lr, "name": "light"},
        ]  # fmt: skip
        if model.backdrop is not None and model.backdrop.ground is not None:
            groups.append(
                {"params": [model.backdrop.ground.texture], "lr": config.texture_lr, "name": "ground"}
            )
        if model.material.normal_map is not None:
            groups.append(
                {"params": [model.material.normal_map], "lr": config.normal_lr, "name": "normal_map"}
            )
        if config.optimize_vertices:
            groups.append({"params": [model.offsets], "lr": config.vertex_lr, "name": "vertices"})
        optimizer = adam(groups, eps=settings.optimizer.eps)  # the run's Adam epsilon, as in stage 1
        scheduler = exponential_decay(optimizer, config.final_lr_fraction, config.steps)
        super().__init__(
            model, dataset, config, settings, optimizer, Path(run_dir), RunDir(run_dir).stage2_checkpoints,
            context, scheduler, step_offset=step_offset,
        )  # fmt: skip
        self.model = model

    def compute(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        config, model = self.config, self.model
        out = self.network(batch)
        image = image_loss(out.rgb, batch.images, config.image)
        mask = mask_loss(out.alpha, batch.masks)
        loss = image + (config.mask_weight * mask if model.backdrop is None else 0)  # photos: no masks
        if config.optimize_vertices:
            loss = loss + config.laplacian_weight * laplacian_loss(model.vertices, model.faces)
        if config.metallic_weight > 0:
            loss = loss + config.metallic_weight * model.material.roughness_metallic[..., 1].mean()
        if model.material.normal_map is not None and config.normal_smoothness_weight > 0:
            loss = loss + config.normal_smoothness_weight * model.material.normal_smoothness()
        terms = {
            "image": float(image.detach()),
            "mask": float(mask.detach()),
            "psnr": float(psnr(out.rgb.detach().clamp(0, 1), batch.images.clamp(0, 1))),
        }
        return loss, terms

    def before_step(self) -> None:
        config = self.config
        if config.occlusion and (self.model.occlusion is None or self.step % config.occlusion_every == 0):
            self.model.update_occlusion(config.occlusion_directions)

    def after_step(self) -> None:
        self.model.material.clamp_()
        self.model.light.clamp_()
        if self.model.backdrop is not None:
            self.model.backdrop.clamp_()
        if self.model.region is not None:
            with torch.no_grad():
                model = self.model
                model.offsets.copy_(model.region.clamp(model.vertices) - model.base_vertices)

    def preview(self, batch: Batch) -> RenderOutput:
        return self.model.render(batch)


def train_stage2(
    model: Stage2Model, dataset: MultiViewDataset, config: Stage2Config, run_dir: Path,
    settings: TrainConfig | None = None, context: DistributedContext | None = None, step_offset: int = 0,
) -> dict[str, float]:  # fmt: skip
    """Optimize textures and light (and vertices when enabled) for ``config.steps`` steps; returns the last
    step's terms (means over the ranks under torchrun, where each rank renders its share of every batch).
    """
    trainer = Stage2Trainer(model, dataset, config, settings or TrainConfig(), run_dir, context, step_offset)
    return trainer.fit()


def material_ranges(config: MaterialConfig) -> dict[str, tuple[float, float]]:
    """The value ranges of a stage-1 material config, as :class:`TextureMaterial`'s keyword arguments:
    stage 2 keeps what stage 1 was allowed (a dielectric stays dielectric, a roughness floor stays)."""
    names = ("base_color_range", "roughness_range", "metallic_range")
    return {name: (float(getattr(config, name)[0]), float(getattr(config, name)[1])) for name in names}
