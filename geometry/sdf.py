"""The SDF network: hash-grid encoding + small MLP -> signed distance (world units, negative inside)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from data.settings import Settings, require
from geometry.encoding import HashGridConfig, HashGridEncoding


@dataclass
class SDFNetworkConfig(Settings):
    """Settings of :class:`SDFNetwork`."""

    encoding: HashGridConfig = field(default_factory=HashGridConfig)
    """The hash grid; it covers ``bbox_min``..``bbox_max`` (its cube hull)."""
    hidden_dim: int = 64
    """Width of the MLP's hidden layers."""
    n_hidden_layers: int = 2
    """Number of hidden layers."""
    feature_dim: int = 0
    """Extra output channels returned beside the distance (e.g. to condition a material network)."""
    init_radius: float = 0.5
    """The untrained network is close to a sphere of this radius (world units) at the box centre."""
    bbox_min: tuple[float, float, float] = (-1.0, -1.0, -1.0)
    """Lower corner of the reconstruction volume (world units)."""
    bbox_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Upper corner of the reconstruction volume (world units)."""
    softplus_beta: float = 100.0
    """Sharpness of the Softplus activations (large: close to ReLU, but smooth)."""

    def check(self) -> None:
        lower, upper = torch.tensor(self.bbox_min), torch.tensor(self.bbox_max)
        fits = lower.shape == (3,) and upper.shape == (3,) and bool((upper > lower).all())
        require(self, "bbox_max", fits, f"three numbers, each above bbox_min's {list(self.bbox_min)}")
        require(self, "hidden_dim", self.hidden_dim >= 1, "an integer >= 1")
        require(self, "n_hidden_layers", self.n_hidden_layers >= 1, "an integer >= 1")
        require(self, "feature_dim", self.feature_dim >= 0, "an integer >= 0")
        require(self, "init_radius", self.init_radius > 0, "a radius > 0")


class SDFNetwork(nn.Module):
    """f(x) = scale * (|x_n| - radius_n + MLP([x_n, enc((x_n + 1) / 2)])), x_n = (x - centre) / scale.

    ``centre`` and ``scale`` (half the longest side) map the box isotropically into [-1, 1]^3, so the
    network's distances stay distances after the map back to world units. The hash grid covers that cube
    (positions outside it are clamped for the encoding; the raw x_n input keeps the field defined).

    Geometric initialization: a sphere prior plus a residual MLP whose output layer starts at ~0 (std
    1e-4), so the untrained field is |x - centre| - init_radius to ~1e-4 of the box, and stays a valid
    distance outside the box. (The classic SAL initialization of a plain MLP is only a sphere in the
    infinite-width limit: at width 64 its slope differed 2.4x between the x and y axes.)
    """

    def __init__(self, config: SDFNetworkConfig | None = None, seed: int | None = None):
        super().__init__()
        self.config = config or SDFNetworkConfig()
        self.config.validate()
        lower = torch.tensor(self.config.bbox_min, dtype=torch.float32)
        upper = torch.tensor(self.config.bbox_max, dtype=torch.float32)
        self.register_buffer("centre", (lower + upper) / 2)
        self.register_buffer("scale", ((upper - lower).max() / 2).reshape(()))
        self.radius = self.config.init_radius / float(self.scale)
        self.encoding = HashGridEncoding(self.config.encoding, seed=seed)
        width, depth = self.config.hidden_dim, self.config.n_hidden_layers
        dims = [3 + self.encoding.output_dim] + [width] * depth + [1 + self.config.feature_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.activation = nn.Softplus(beta=self.config.softplus_beta)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self._initialize(generator)
        self.active_levels = self.config.encoding.n_levels

    def set_active_levels(self, levels: int) -> None:
        """Use only the ``levels`` coarsest hash-grid levels (the others' features read as 0 and get no
        gradient): Neuralangelo's coarse-to-fine schedule, set by the trainer each step."""
        self.active_levels = max(1, min(int(levels), self.config.encoding.n_levels))

    @torch.no_grad()
    def _initialize(self, generator: torch.Generator | None) -> None:
        for index, layer in enumerate(self.layers):
            out_dim = layer.weight.shape[0]
            last = index == len(self.layers) - 1
            layer.weight.normal_(0.0, 1e-4 if last else math.sqrt(2.0 / out_dim), generator=generator)
            layer.bias.zero_()

    @property
    def lower(self) -> torch.Tensor:
        """[3] lower corner of the encoded cube (world units)."""
        return self.centre - self.scale

    @property
    def upper(self) -> torch.Tensor:
        """[3] upper corner of the encoded cube (world units)."""
        return self.centre + self.scale

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed distance and features.

        Args:
            points: [..., 3] world positions.
        Returns:
            sdf [...] (world units, negative inside) and features [..., feature_dim].
        """
        shape = points.shape[:-1]
        x = ((points.reshape(-1, 3) - self.centre) / self.scale).to(self.layers[0].weight.dtype)
        features = self.encoding((x + 1) * 0.5).to(x.dtype)
        if self.active_levels < self.config.encoding.n_levels:
            active = self.active_levels * self.config.encoding.n_features_per_level
            features = torch.cat((features[:, :active], features[:, active:] * 0), -1)
        h = torch.cat((x, features), -1)
        for layer in self.layers[:-1]:
            h = self.activation(layer(h))
        out = self.layers[-1](h)
        sdf = (x.norm(dim=-1) - self.radius + out[:, 0]) * self.scale
        return sdf.reshape(shape), out[:, 1:].reshape(*shape, -1)

    def sdf(self, points: torch.Tensor) -> torch.Tensor:
        """[..., 3] world positions -> [...] signed distance (world units)."""
        return self(points)[0]
