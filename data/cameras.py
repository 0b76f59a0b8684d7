"""One pinhole camera model for every dataset format.

Conventions (docs/design.md): camera-to-world matrices in OpenGL axes (the camera looks down -Z, +Y up,
+X right). Pixel coordinates have their origin at the top-left corner of the image, x to the right and
y down, so pixel (i, j) (column i, row j of the image as stored, top row first) has its centre at
(i + 0.5, j + 0.5) — COLMAP's convention. A point (X, Y, Z) in camera axes lands at
x = cx + fx X / (-Z), y = cy - fy Y / (-Z).

The OpenGL projection maps that to clip space with NDC y up, so the rasterizer's row 0 is the image's
bottom row: the renderer flips its output once to get top-down images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

# OpenCV camera axes (x right, y down, z forward) <-> OpenGL camera axes (x right, y up, z backward).
OPENCV_TO_OPENGL = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


@dataclass
class Camera:
    """A batch of B pinhole cameras sharing one image size.

    c2w: [B, 4, 4] camera-to-world (OpenGL axes); fx, fy, cx, cy: [B] in pixels; width, height in
    pixels; near, far: clip distances (world units) for the projection.
    """

    c2w: torch.Tensor
    fx: torch.Tensor
    fy: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    width: int
    height: int
    near: float = 0.05
    far: float = 100.0

    def __post_init__(self) -> None:
        self.c2w = torch.as_tensor(self.c2w, dtype=torch.float32)
        if self.c2w.dim() == 2:
            self.c2w = self.c2w[None]
        n = self.c2w.shape[0]
        for name in ("fx", "fy", "cx", "cy"):
            value = torch.as_tensor(getattr(self, name), dtype=torch.float32, device=self.c2w.device)
            setattr(self, name, value.expand(n).clone() if value.dim() == 0 else value)
        if self.c2w.shape[1:] != (4, 4) or any(
            getattr(self, k).shape != (n,) for k in ("fx", "fy", "cx", "cy")
        ):
            raise ValueError("camera: c2w must be [B, 4, 4] and fx, fy, cx, cy [B] (or scalars)")

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def __getitem__(self, index) -> Camera:
        """A sub-batch (int, slice, list or index tensor)."""
        if isinstance(index, int):
            index = [index]
        return replace(
            self,
            c2w=self.c2w[index],
            fx=self.fx[index],
            fy=self.fy[index],
            cx=self.cx[index],
            cy=self.cy[index],
        )

    def to(self, device: torch.device | str) -> Camera:
        return replace(
            self,
            c2w=self.c2w.to(device),
            fx=self.fx.to(device),
            fy=self.fy.to(device),
            cx=self.cx.to(device),
            cy=self.cy.to(device),
        )

    @property
    def centers(self) -> torch.Tensor:
        """[B, 3] camera positions (world)."""
        return self.c2w[:, :3, 3]

    def w2c(self) -> torch.Tensor:
        """[B, 4, 4] world-to-camera (OpenGL axes)."""
        return torch.linalg.inv(self.c2w.double()).float()

    def projection(self) -> torch.Tensor:
        """[B, 4, 4] OpenGL projection: camera space -> clip space (NDC y up, z/w in [-1, 1])."""
        n, f = self.near, self.far
        p = torch.zeros(len(self), 4, 4, device=self.c2w.device)
        p[:, 0, 0] = 2 * self.fx / self.width
        p[:, 0, 2] = 1 - 2 * self.cx / self.width
        p[:, 1, 1] = 2 * self.fy / self.height
        p[:, 1, 2] = 2 * self.cy / self.height - 1
        p[:, 2, 2] = (f + n) / (n - f)
        p[:, 2, 3] = 2 * f * n / (n - f)
        p[:, 3, 2] = -1
        return p

    def mvp(self) -> torch.Tensor:
        """[B, 4, 4] world -> clip space, for ``render.raster.rasterize`` (``to_clip(v, mvp)``)."""
        return self.projection() @ self.w2c()

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel coordinates of world points [P, 3] in every view.

        Returns:
            xy [B, P, 2] (origin at the image's top-left corner, y down) and depth [B, P] (distance
            along the viewing direction; negative behind the camera).
        """
        w2c = self.w2c()
        cam = points[None] @ w2c[:, :3, :3].transpose(1, 2) + w2c[:, None, :3, 3]
        depth = -cam[..., 2]
        x = self.cx[:, None] + self.fx[:, None] * cam[..., 0] / depth
        y = self.cy[:, None] - self.fy[:, None] * cam[..., 1] / depth
        return torch.stack((x, y), -1), depth

    def rays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Rays through every pixel centre: origins and unit directions [B, H, W, 3] (row 0 = top)."""
        device = self.c2w.device
        y, x = torch.meshgrid(
            torch.arange(self.height, device=device) + 0.5,
            torch.arange(self.width, device=device) + 0.5,
            indexing="ij",
        )
        fx, fy, cx, cy = (v[:, None, None] for v in (self.fx, self.fy, self.cx, self.cy))
        local = torch.stack(((x - cx) / fx, -(y - cy) / fy, -torch.ones_like(x - cx)), -1)  # [B, H, W, 3]
        directions = torch.einsum("bij,bhwj->bhwi", self.c2w[:, :3, :3], local)
        directions = torch.nn.functional.normalize(directions, dim=-1)
        origins = self.centers[:, None, None].expand_as(directions)
        return origins, directions

    def pixel_rays(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rays of :meth:`rays` through some pixels only: ``pixels`` [M] integer indices into the
        flattened [B, H, W] grid -> origins and unit directions [M, 3]."""
        pixels = pixels.to(self.c2w.device).long()
        view, rest = pixels // (self.height * self.width), pixels % (self.height * self.width)
        y, x = (rest // self.width).to(self.c2w.dtype) + 0.5, (rest % self.width).to(self.c2w.dtype) + 0.5
        fx, fy, cx, cy = (v[view] for v in (self.fx, self.fy, self.cx, self.cy))
        local = torch.stack(((x - cx) / fx, -(y - cy) / fy, -torch.ones_like(x)), -1)  # [M, 3]
        directions = torch.einsum("mij,mj->mi", self.c2w[view, :3, :3], local)
        return self.centers[view], torch.nn.functional.normalize(directions, dim=-1)

    def scaled(self, factor: float) -> Camera:
        """The cameras for images resized by ``factor`` (0.5 = half size): width and height are rounded,
        and the intrinsics follow the actual size ratio on each axis so projections stay consistent."""
        width, height = max(1, round(self.width * factor)), max(1, round(self.height * factor))
        sx, sy = width / self.width, height / self.height
        return replace(
            self,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=self.cx * sx,
            cy=self.cy * sy,
            width=width,
            height=height,
        )

    def cropped(self, left: torch.Tensor, top: torch.Tensor, width: int, height: int) -> Camera:
        """The cameras of ``width`` x ``height`` windows of the images whose top-left corners are at pixel
        ``left``, ``top`` [B] (integers): the principal point moves, the focal lengths stay."""
        left, top = (torch.as_tensor(v, dtype=torch.float32, device=self.cx.device) for v in (left, top))
        return replace(self, cx=self.cx - left, cy=self.cy - top, width=int(width), height=int(height))

    def transformed(self, scale: float, offset: torch.Tensor) -> Camera:
        """The cameras after the world map x -> (x - offset) * scale (rotation-free similarity)."""
        c2w = self.c2w.clone()
        c2w[:, :3, 3] = (c2w[:, :3, 3] - offset.to(c2w)) * scale
        return replace(self, c2w=c2w, near=self.near * scale, far=self.far * scale)

    @staticmethod
    def cat(cameras: list[Camera]) -> Camera:
        first = cameras[0]
        if any((c.width, c.height) != (first.width, first.height) for c in cameras):
            raise ValueError("camera: cannot concatenate cameras with different image sizes")
        return replace(
            first,
            c2w=torch.cat([c.c2w for c in cameras]),
            fx=torch.cat([c.fx for c in cameras]),
            fy=torch.cat([c.fy for c in cameras]),
            cx=torch.cat([c.cx for c in cameras]),
            cy=torch.cat([c.cy for c in cameras]),
        )


def similarity_from_centres(
    source: torch.Tensor, target: torch.Tensor
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """(scale s, rotation R [3, 3], translation t [3]) minimizing |s R source + t - target|^2 over point
    pairs [N, 3] (Umeyama 1991; float64)."""
    source, target = source.double(), target.double()
    mu_s, mu_t = source.mean(0), target.mean(0)
    a, b = source - mu_s, target - mu_t
    u, singular, vh = torch.linalg.svd(b.T @ a / len(a))
    sign = torch.ones(3, dtype=torch.float64)
    if float(torch.linalg.det(u @ vh)) < 0:
        sign[2] = -1
    rotation = u @ torch.diag(sign) @ vh
    scale = float((singular * sign).sum() / a.square().sum(-1).mean())
    return scale, rotation, mu_t - scale * rotation @ mu_s


def pose_errors(estimated: Camera, truth: Camera) -> dict[str, float]:
    """How far ``estimated`` cameras are from ``truth`` (same views, any frame and scale): after the
    similarity that best maps the estimated centres onto the true ones, the mean and largest rotation
    error (degrees) and the mean centre error (as a fraction of the true cameras' mean distance to their
    centroid)."""
    scale, rotation, translation = similarity_from_centres(estimated.centers, truth.centers)
    centres = scale * estimated.centers.double() @ rotation.T + translation
    spread = float((truth.centers.double() - truth.centers.double().mean(0)).norm(dim=-1).mean())
    aligned = rotation @ estimated.c2w[:, :3, :3].double()
    relative = aligned.transpose(1, 2) @ truth.c2w[:, :3, :3].double()
    cosine = ((relative.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)
    angles = torch.rad2deg(torch.acos(cosine))
    return {
        "rotation_error_deg": float(angles.mean()),
        "max_rotation_error_deg": float(angles.max()),
        "centre_error": float((centres - truth.centers.double()).norm(dim=-1).mean()) / spread,
        "scale": scale,
    }
