"""Materials: a hash-grid MLP over world positions (stage 1) -> base colour, roughness, metallic.

Outputs go through sigmoids into configurable ranges, so every value the shader sees is physically
valid. ``smoothness_loss`` is nvdiffrec's material regularizer: the change of the material between a
point and a jittered copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from data.settings import Settings, require
from geometry.encoding import HashGridConfig, HashGridEncoding


def _default_encoding() -> HashGridConfig:
    return HashGridConfig(n_levels=6, log2_hashmap_size=16, base_resolution=16, per_level_scale=1.8)


@dataclass
class MaterialConfig(Settings):
    """Settings of :class:`MaterialMLP`."""

    encoding: HashGridConfig = field(default_factory=_default_encoding)
    """Hash grid over the reconstruction box (6 levels, 16 -> ~300)."""
    hidden_dim: int = 32
    n_hidden_layers: int = 2
    base_color_range: tuple[float, float] = (0.0, 1.0)
    """Value ranges (linear base colour; these three also bound the stage-2 textures)."""
    roughness_range: tuple[float, float] = (0.08, 1.0)
    """Perceptual roughness limits (0.08 = render.brdf.MIN_ROUGHNESS)."""
    metallic_range: tuple[float, float] = (0.0, 1.0)
    """(0, 0) for dielectric-only reconstructions."""
    normal_perturbation: bool = False
    """Also output a world-space normal offset (nvdiffrec's "perturbed normals"; baked into texture_n.png).
    Its tangential part, at most ``max_normal_offset`` long, tilts the mesh's shading normal."""
    max_normal_offset: float = 0.5
    position_gradient: bool = True
    """Let the material's variation over the surface move the geometry (the gradient of the material
    with respect to the queried points). Off: the points are detached, which makes a 256^2 stage-1 step
    cheaper on the CPU (docs/benchmarks.md)."""

    def check(self) -> None:
        for name in ("base_color_range", "roughness_range", "metallic_range"):
            bounds = getattr(self, name)
            ordered = len(bounds) == 2 and 0.0 <= bounds[0] <= bounds[1] <= 1.0
            require(self, name, ordered, "[low, high] with 0 <= low <= high <= 1")
        require(self, "hidden_dim", self.hidden_dim >= 1, "an integer >= 1")
        require(self, "n_hidden_layers", self.n_hidden_layers >= 1, "an integer >= 1")


@dataclass
class MaterialSample:
    """base_color [P, 3] (linear), roughness [P, 1], metallic [P, 1]; normal [P, 3] a world-space normal
    offset (``normal_mode = "offset"`` of render.renderer) or None."""

    base_color: torch.Tensor
    roughness: torch.Tensor
    metallic: torch.Tensor
    normal: torch.Tensor | None = None

    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        values = (self.base_color, self.roughness, self.metallic)
        return values if self.normal is None else (*values, self.normal)

    def __iter__(self):  # unpacks like the (base, roughness, metallic[, normal]) tuple the renderer expects
        return iter(self.as_tuple())


class HashGridMLP(nn.Module):
    """An MLP (``config.hidden_dim`` x ``config.n_hidden_layers``, ReLU) over the hash-grid encoding
    (``config.encoding``) of points in the box [lower, upper] (positions outside are clamped): the body of
    :class:`MaterialMLP` and of the warm-up's colour field (recon.train.volume.RadianceField)."""

    def __init__(
        self, config: MaterialConfig, outputs: int, lower: tuple[float, float, float],
        upper: tuple[float, float, float], seed: int | None = None,
    ):  # fmt: skip
        super().__init__()
        self.register_buffer("lower", torch.tensor(lower, dtype=torch.float32))
        self.register_buffer("upper", torch.tensor(upper, dtype=torch.float32))
        self.encoding = HashGridEncoding(config.encoding, seed=seed)
        dims = [self.encoding.output_dim] + [config.hidden_dim] * config.n_hidden_layers + [outputs]
        layers: list[nn.Module] = []
        with torch.random.fork_rng(devices=[]):  # a seed makes the layers' default init reproducible
            if seed is not None:
                torch.manual_seed(seed)
            for a, b in zip(dims[:-1], dims[1:], strict=True):
                layers += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*layers[:-1])

    def raw(self, points: torch.Tensor) -> torch.Tensor:
        """points [P, 3] world -> the MLP's outputs [P, outputs]."""
        x = ((points - self.lower) / (self.upper - self.lower)).clamp(0, 1)
        return self.mlp(self.encoding(x).to(self.mlp[0].weight.dtype))


class MaterialMLP(HashGridMLP):
    """x (world) -> MaterialSample, over the box [lower, upper] (positions outside are clamped)."""

    normal_mode = "offset"

    def __init__(
        self,
        config: MaterialConfig | None = None,
        lower: tuple[float, float, float] = (-1.0, -1.0, -1.0),
        upper: tuple[float, float, float] = (1.0, 1.0, 1.0),
        seed: int | None = None,
    ):
        config = config or MaterialConfig()
        config.validate()
        super().__init__(config, 8 if config.normal_perturbation else 5, lower, upper, seed)
        self.config = config
        ranges = [self.config.base_color_range] * 3 + [
            self.config.roughness_range,
            self.config.metallic_range,
        ]
        self.register_buffer("low", torch.tensor([r[0] for r in ranges]))
        self.register_buffer("span", torch.tensor([r[1] - r[0] for r in ranges]))

    def forward(self, points: torch.Tensor, uv: torch.Tensor | None = None) -> MaterialSample:
        """points [P, 3] world -> materials (``uv`` is ignored: the renderer's material signature)."""
        raw = self.raw(points if self.config.position_gradient else points.detach())
        values = self.low + self.span * torch.sigmoid(raw[:, :5])
        normal = torch.tanh(raw[:, 5:]) * self.config.max_normal_offset if raw.shape[1] > 5 else None
        return MaterialSample(values[:, :3], values[:, 3:4], values[:, 4:5], normal)

    def smoothness_loss(self, points: torch.Tensor, jitter: float = 0.01, generator=None) -> torch.Tensor:
        """mean |m(x) - m(x + N(0, jitter^2))| over base colour, roughness, metallic, normal offset."""
        return self.surface_terms(points, jitter, generator)[0]

    def surface_terms(
        self, points: torch.Tensor, jitter: float = 0.01, generator=None
    ) -> tuple[torch.Tensor, MaterialSample]:
        """(:meth:`smoothness_loss`, the material at ``points`` [P, 3], detached from them) from one call
        of the network on the 2P points (the stage-1 metallic prior reads the second)."""
        noise = torch.randn(points.shape, generator=generator).to(points) * jitter
        both = self(torch.cat((points.detach(), points.detach() + noise)))
        halves = [value.split(len(points)) for value in both.as_tuple()]
        loss = torch.cat([(a - b).abs() for a, b in halves], -1).mean()
        return loss, MaterialSample(*(a for a, _ in halves))
