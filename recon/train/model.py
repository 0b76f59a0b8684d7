"""Stage-1 model: SDF network -> marching cubes -> mesh, material MLP, learnable light; one loss.

Everything lives in the normalized scene frame (``data.normalization``: the object within radius ~0.8
of the origin, the SDF box [-1, 1]^3); cameras come from a :class:`data.dataset.MultiViewDataset`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import cache

import torch
from scipy.spatial import cKDTree
from torch import nn

from data.dataset import Batch
from data.ground import Region
from data.settings import Settings, power_of_two, require
from geometry.encoding import BACKENDS as ENCODING_BACKENDS
from geometry.encoding import HashGridConfig
from geometry.extraction import GridConfig, SDFGrid, extract_mesh
from geometry.regularizers import (
    eikonal_loss,
    eikonal_points,
    laplacian_loss,
    normal_consistency,
    ray_box_points,
    sdf_sign_loss,
)
from geometry.sdf import SDFNetwork, SDFNetworkConfig
from recon.distributed import view_generator
from recon.errors import TrainingError
from recon.evaluation.metrics import psnr
from recon.train.losses import IMAGE_LOSSES, image_loss, mask_loss
from recon.train.material import MaterialConfig, MaterialMLP
from render.background import Backdrop
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.occlusion import vertex_occlusion
from render.renderer import RenderOutput, render_views


@dataclass
class GridSettings(Settings):
    """``model.grid``: stage 1's marching-cubes grid (geometry.extraction.GridConfig, whose narrow-band
    settings keep their defaults)."""

    resolution: int = 64
    """Cells per axis: 16 times a power of two (the narrow band refines from 16^3)."""

    def check(self) -> None:
        require(self, "resolution", self.resolution >= 16, "16 times a power of two (cells per axis)")
        self.build().validate()

    def build(self) -> GridConfig:
        return GridConfig(resolution=self.resolution)


@dataclass
class LightSettings(Settings):
    """``model.light``: the learnable environment light (render.light.EnvironmentLightConfig, whose
    prefiltering and shading settings keep their defaults)."""

    resolution: int = 64
    """Cube face size of the learnable map: a power of two >= 8 (its mip chain)."""

    def check(self) -> None:
        require(self, "resolution", power_of_two(self.resolution, 8), "a power of two >= 8 (its mip chain)")

    def build(self) -> EnvironmentLightConfig:
        return EnvironmentLightConfig(resolution=self.resolution)


@dataclass
class MaterialSettings(Settings):
    """``model.material``: what the material may be (recon.train.material.MaterialConfig, whose network
    keeps its defaults); stage 2's textures keep the same ranges."""

    base_color_range: tuple[float, float] = (0.0, 1.0)
    """Linear base colour."""
    roughness_range: tuple[float, float] = (0.08, 1.0)
    """Perceptual roughness (0.08 = render.brdf.MIN_ROUGHNESS)."""
    metallic_range: tuple[float, float] = (0.0, 1.0)
    """(0, 0) for dielectric-only reconstructions (the photos preset)."""
    normal_perturbation: bool = False
    """Also learn a normal offset (nvdiffrec's "perturbed normals"), baked into texture_n.png."""

    def check(self) -> None:
        self.build().validate()

    def build(self) -> MaterialConfig:
        return MaterialConfig(
            base_color_range=self.base_color_range, roughness_range=self.roughness_range,
            metallic_range=self.metallic_range, normal_perturbation=self.normal_perturbation,
        )  # fmt: skip


@dataclass
class ModelConfig(Settings):
    """``model``: the stage-1 model's settings that a run chooses; the networks' shapes are their classes'
    defaults (geometry.sdf.SDFNetworkConfig, recon.train.material.MaterialConfig)."""

    encoding_backend: str = "auto"
    """Hash grids of the SDF and the material: auto (tinycudann on CUDA when installed, numba's compiled
    loops on the CPU), torch, tcnn or numba."""
    material: MaterialSettings = field(default_factory=MaterialSettings)
    light: LightSettings = field(default_factory=LightSettings)
    grid: GridSettings = field(default_factory=GridSettings)
    ground_texture: int = 1024
    """Side of the ground plane's texture (photos without masks; render.background.GroundPlane)."""

    def check(self) -> None:
        require(self, "encoding_backend", self.encoding_backend in ENCODING_BACKENDS,
                f"one of {', '.join(ENCODING_BACKENDS)}")  # fmt: skip
        require(self, "ground_texture", self.ground_texture >= 8, "a texture size >= 8")

    def sdf(self) -> SDFNetworkConfig:
        return SDFNetworkConfig(encoding=HashGridConfig(backend=self.encoding_backend))

    def material_network(self) -> MaterialConfig:
        material = self.material.build()
        return replace(material, encoding=replace(material.encoding, backend=self.encoding_backend))


SDF_SIGN_DECAY_STEPS = 1000
"""The SDF sign term's weight falls linearly to a tenth over stage 1's first this many steps."""
EIKONAL_POINTS = 4096
"""Points per step of the Eikonal term (near the surface and uniform in the box)."""
FREE_SPACE_RAYS = 256
"""At most this many rays per view for the free-space term (16 points on each)."""


@dataclass
class LossConfig(Settings):
    """``train.losses``: the image loss and the weight of every stage-1 term (0: the term is skipped)."""

    image: str = "l1"
    """Image loss on tonemapped colour: l1, l2, logl1 or smape."""
    image_weight: float = 1.0
    mask_weight: float = 1.0
    eikonal_weight: float = 0.1
    material_smoothness_weight: float = 0.01
    normal_consistency_weight: float = 0.01
    laplacian_weight: float = 0.0
    sdf_sign_weight: float = 0.01
    """Falls linearly to a tenth of this over the first SDF_SIGN_DECAY_STEPS steps."""
    light_weight: float = 0.005
    metallic_weight: float = 0.01
    """Weight of the mean metallic value on the surface: a prior for dielectrics (most objects), so that
    metal is used only where the images need it."""
    free_space_weight: float = 1.0
    """Space carving: SDF points on the rays of pixels that the mask calls background but the render
    covers are pushed outside (opens tunnels a membrane closed; nothing to do without masks)."""

    def check(self) -> None:
        require(self, "image", self.image in IMAGE_LOSSES, f"one of {', '.join(IMAGE_LOSSES)}")
        for item in fields(self):
            if item.name.endswith("_weight"):
                require(self, item.name, getattr(self, item.name) >= 0, "a weight >= 0")

    def weight(self, term: str, step: int) -> float:
        """The weight of ``term`` (e.g. "eikonal") at ``step``."""
        weight = getattr(self, f"{term}_weight")
        if term == "sdf_sign" and step > 0:
            end, t = weight / 10, min(1.0, step / SDF_SIGN_DECAY_STEPS)
            return weight + (end - weight) * t
        return weight


@dataclass
class StepResult:
    """Total loss, its named terms (floats, for logging), the render and the extracted mesh."""

    loss: torch.Tensor
    terms: dict[str, float]
    render: RenderOutput
    vertices: torch.Tensor
    faces: torch.Tensor
    grid: SDFGrid


STAGE1_OCCLUSION_DIRECTIONS = 64
"""Depth maps per occlusion computation in stage 1: half stage 2's (``stage2.occlusion_directions``), as
stage 1 recomputes it for a mesh that keeps changing and only as a shading estimate; the exported asset's
occlusion is computed with stage 2's count."""


class ReconstructionModel(nn.Module):
    """The SDF network, material MLP and light; for photos without masks also a ``backdrop`` (what the
    views show around the object: the light, the ground plane) and a ``region`` (normalized) that the
    surface is kept inside (the SDF is intersected with it, and the network starts as a sphere inside
    it: where the region's face is the surface, the network gets no gradient to move it)."""

    def __init__(
        self, config: ModelConfig | None = None, seed: int = 0, backdrop: Backdrop | None = None,
        region: Region | None = None,
    ):  # fmt: skip
        super().__init__()
        self.config = config or ModelConfig()
        sdf = self.config.sdf()
        if region is not None:  # start inside the region: where it clips, the network gets no gradient
            sdf = replace(sdf, init_radius=min(sdf.init_radius, 0.8 * float(region.half.min())))
        self.sdf = SDFNetwork(sdf, seed=seed)
        self.material = MaterialMLP(self.config.material_network(), sdf.bbox_min, sdf.bbox_max, seed=seed + 1)
        self.light = EnvironmentLight(self.config.light.build())
        self.grid = self.config.grid.build()  # the extraction grid now (set_grid_resolution)
        self.backdrop = backdrop
        self.region = region
        # Ambient occlusion of the last mesh it was computed on (update_occlusion): its vertices [N, 3]
        # and their values [N]; each step's mesh takes its nearest vertex's value (topology changes).
        self.register_buffer("occlusion_points", None)
        self.register_buffer("occlusion_values", None)

    def set_grid_resolution(self, resolution: int) -> None:
        """Extract on a grid of ``resolution`` cells per axis from now on (the trainer's coarse-to-fine
        schedule, train.fine_grid_resolution); ``model.grid``'s other settings stay."""
        if resolution != self.grid.resolution:
            self.grid = replace(self.config.grid.build(), resolution=resolution)

    def update_occlusion(self, directions: int = STAGE1_OCCLUSION_DIRECTIONS) -> None:
        """Compute the ambient occlusion (render.occlusion) of the current mesh, for :meth:`occlusion_at`."""
        with torch.no_grad():
            vertices, faces, _ = self.extract()
            if len(faces) == 0:
                return
            self.occlusion_points = vertices.detach().clone()
            self.occlusion_values = vertex_occlusion(vertices, faces, directions=directions).to(vertices)

    def occlusion_at(self, vertices: torch.Tensor) -> torch.Tensor | None:
        """[V] the occlusion at vertices [V, 3] (of the nearest vertex it was computed at), or None."""
        if self.occlusion_values is None:
            return None
        tree = cKDTree(self.occlusion_points.cpu().numpy())
        _, nearest = tree.query(vertices.detach().cpu().numpy())
        return self.occlusion_values[torch.from_numpy(nearest).to(self.occlusion_values.device)]

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's, taking the occlusion buffers also into a model that has none yet (a resume)."""
        for name in ("occlusion_points", "occlusion_values"):
            if name in state_dict and getattr(self, name) is None:
                setattr(self, name, state_dict[name].clone())
        return super().load_state_dict(state_dict, strict, assign)

    def surface_sdf(self, points: torch.Tensor) -> torch.Tensor:
        """[P] the SDF whose zero set is the surface: the network's, cut to the region when there is one."""
        values = self.sdf.sdf(points)
        if self.region is None:
            return values
        return torch.maximum(values, self.region.sdf(points).to(values))

    def extract(self) -> tuple[torch.Tensor, torch.Tensor, SDFGrid]:
        """The current mesh (vertices differentiable in the SDF network), faces, the sampled grid."""
        return extract_mesh(self.surface_sdf, self.sdf.lower, self.sdf.upper, self.grid)

    def render(self, batch: Batch, vertices: torch.Tensor, faces: torch.Tensor) -> RenderOutput:
        """The views of ``batch``: over its background colour, or over the backdrop for photos."""
        occlusion = self.occlusion_at(vertices)
        if self.backdrop is None:
            return render_views(
                vertices,
                faces,
                batch.cameras,
                self.light,
                self.material,
                batch.background,
                occlusion=occlusion,
            )
        out = render_views(vertices, faces, batch.cameras, self.light, self.material, occlusion=occlusion)
        return self.backdrop(out, batch.cameras, self.light)

    def surface(self, step: int):
        """:meth:`extract`, with a :class:`TrainingError` (one line) when the mesh is empty."""
        vertices, faces, grid = self.extract()
        if len(faces) == 0:
            why = (
                "the initial shape (a sphere of model.sdf.init_radius) has no surface on the extraction grid "
                "inside the box: check model.sdf.init_radius against model.sdf.bbox_min/bbox_max"
                if step == 0
                else "lower the learning rate"
            )
            raise TrainingError(f"step {step}: the SDF has no zero crossing in the box (empty mesh); {why}")
        return vertices, faces, grid

    def forward(self, batch: Batch, config: LossConfig, step: int, generator=None) -> StepResult:
        """:meth:`step_loss` (the call DistributedDataParallel wraps)."""
        return self.step_loss(batch, config, step, generator)

    def step_loss(self, batch: Batch, config: LossConfig, step: int, generator=None) -> StepResult:
        """Extract, render ``batch`` and compute the weighted stage-1 loss."""
        vertices, faces, grid = self.surface(step)
        out = self.render(batch, vertices, faces)
        surface = vertices[:: max(1, len(vertices) // 4096)].detach()
        material_terms = cache(lambda: self.material.surface_terms(surface, generator=generator))
        lazy = {  # a term whose weight is 0 at this step is not computed (the Laplacian is 13% of a step)
            "image": lambda: image_loss(out.rgb, batch.images, config.image),
            "mask": lambda: mask_loss(out.alpha, batch.masks),
            "eikonal": lambda: eikonal_loss(
                self.sdf.sdf,
                eikonal_points(EIKONAL_POINTS, self.sdf.lower, self.sdf.upper, vertices, 0.02, generator),
                step=float(grid.spacing.min()) * 0.5,
            ),
            "material_smoothness": lambda: material_terms()[0],  # one material call for both terms
            "normal_consistency": lambda: normal_consistency(vertices, faces),
            "laplacian": lambda: laplacian_loss(vertices, faces),
            "sdf_sign": lambda: sdf_sign_loss(grid),
            "light": lambda: self.light.regularizer(),
            "metallic": lambda: material_terms()[1].metallic.mean(),
            "free_space": lambda: free_space_term(batch, out.alpha, FREE_SPACE_RAYS, self.sdf, step),
        }
        weights = {name: config.weight(name, step) for name in lazy}
        if self.backdrop is not None:  # photos: no mask to match, no pixel known to be background
            weights["mask"] = weights["free_space"] = 0.0
        terms = {name: term() for name, term in lazy.items() if weights[name] != 0}  # zero weight: skipped
        loss = sum(weights[name] * value for name, value in terms.items())
        logged = {name: float(value.detach()) for name, value in terms.items()}
        logged["psnr"] = float(psnr(out.rgb.detach().clamp(0, 1), batch.images.clamp(0, 1)))
        logged["triangles"] = float(len(faces))
        return StepResult(loss, logged, out, vertices, faces, grid)


def free_space_term(
    batch: Batch, alpha: torch.Tensor, rays_per_view: int, sdf: SDFNetwork, step: int
) -> torch.Tensor:
    """The free-space loss of a batch: :func:`geometry.regularizers.free_space_loss` of each view's
    :func:`false_coverage_points`, averaged over the views (a view without such rays adds 0); the
    points of all views in one SDF call without a graph, those inside the surface in a second, with one.

    Each view's points depend only on the view and the step (a generator seeded by both), so the term
    splits over views exactly: under torchrun the ranks' mean equals the single process's."""
    points = []
    for b in range(alpha.shape[0]):
        generator = view_generator(batch.views[b], step)
        points.append(false_coverage_points(batch[[b]], alpha[b : b + 1], rays_per_view, sdf, generator))
    counts = torch.tensor([len(p) for p in points])
    if not int(counts.sum()):
        return alpha.new_zeros(())
    points = torch.cat(points)
    # Only points inside the surface add to the loss: the SDF of all of them without a graph, then, with
    # one, of those inside (a few percent once the silhouettes fit). One call each for the whole batch.
    with torch.no_grad():
        inside = torch.nonzero(sdf.sdf(points) < 0).squeeze(1)
    if not len(inside):
        return alpha.new_zeros(())
    depth = torch.relu(-sdf.sdf(points[inside]))
    owner = torch.repeat_interleave(torch.arange(len(counts)), counts).to(inside.device)[inside]
    sums = depth.new_zeros(len(counts)).index_add(0, owner, depth)
    return (sums / counts.clamp(min=1).to(sums)).mean()  # each view's mean; a view without points adds 0


def false_coverage_points(
    batch: Batch, alpha: torch.Tensor, rays: int, sdf: SDFNetwork, generator: torch.Generator | None = None
) -> torch.Tensor:
    """[<= rays * 16, 3] points along the rays of pixels whose mask is 0 (the view sees the background
    there) but whose rendered coverage ``alpha`` [B, H, W, 1] exceeds 0.5: 16 stratified points per ray
    inside the SDF box, at most ``rays`` rays (drawn at random when there are more)."""
    wrong = ((batch.masks[..., 0] <= 1e-3) & (alpha.detach()[..., 0] > 0.5)).reshape(-1)
    index = torch.nonzero(wrong).squeeze(1)
    if len(index) > rays:
        index = index[torch.randperm(len(index), generator=generator)[:rays].to(index.device)]
    origins, directions = batch.cameras.pixel_rays(index)
    return ray_box_points(origins, directions, sdf.lower, sdf.upper, 16, generator)
