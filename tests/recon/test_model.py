"""Stage-1 model: a few optimizer steps on a tiny synthetic scene improve the mask and the image."""

from __future__ import annotations

import torch

from data.dataset import MultiViewDataset
from recon.scenes.synthetic import SyntheticConfig, make_synthetic_scene
from recon.train.model import LossConfig, ReconstructionModel


def test_stage1_steps_improve_the_fit(tmp_path, report, one_thread):
    torch.manual_seed(0)
    config = SyntheticConfig(
        n_train=8, n_val=1, n_test=1, resolution=128, mesh_resolution=64, light_resolution=32
    )
    synthetic = make_synthetic_scene(tmp_path, config)
    dataset = MultiViewDataset(synthetic.scene, "train", background="random")
    model = ReconstructionModel()
    optimizer = torch.optim.Adam(
        [
            {"params": model.sdf.encoding.parameters(), "lr": 1e-2},
            {"params": model.sdf.layers.parameters(), "lr": 1e-3},
            {"params": model.material.parameters(), "lr": 1e-2},
            {"params": model.light.parameters(), "lr": 3e-2},
        ]
    )
    generator = torch.Generator().manual_seed(0)
    losses = LossConfig()
    history = []
    for step in range(60):
        result = model.step_loss(dataset.sample(4, generator), losses, step, generator)
        assert torch.isfinite(result.loss)
        optimizer.zero_grad()
        result.loss.backward()
        optimizer.step()
        model.light.clamp_()
        history.append(result.terms)
    first = {k: sum(h[k] for h in history[:5]) / 5 for k in ("mask", "psnr")}
    last = {k: sum(h[k] for h in history[-5:]) / 5 for k in ("mask", "psnr")}
    report(
        f"stage 1, 60 steps, 128^2 synthetic scene: mask loss {first['mask']:.3f} -> {last['mask']:.3f}, "
        f"PSNR {first['psnr']:.1f} -> {last['psnr']:.1f} dB"
    )
    assert last["mask"] < 0.8 * first["mask"] and last["psnr"] > first["psnr"] + 1.0
    assert float(model.light.base.min()) >= 0


def test_free_space_points_lie_on_falsely_covered_background_rays():
    from data.cameras import Camera
    from data.dataset import Batch
    from geometry.sdf import SDFNetwork
    from recon.train.model import false_coverage_points
    from render.camera import look_at

    c2w = torch.linalg.inv(look_at(torch.tensor([0.0, -3.0, 0.0]), torch.zeros(3), (0, 0, 1)))[None]
    cameras = Camera(c2w, 8.0, 8.0, 8.0, 8.0, 16, 16)
    masks = torch.ones(1, 16, 16, 1)
    masks[0, 4:6, 10:12] = 0  # background the render covers: 4 rays
    masks[0, 0, 0] = 0  # background the render does not cover either: nothing to carve
    alpha = torch.ones(1, 16, 16, 1)
    alpha[0, 0, 0] = 0
    batch = Batch(torch.zeros(1, 16, 16, 3), masks, torch.zeros(1, 1, 1, 3), cameras, torch.zeros(1))
    points = false_coverage_points(batch, alpha, 256, SDFNetwork(), torch.Generator().manual_seed(0))
    assert points.shape == (4 * 16, 3)
    xy, depth = cameras.project(points)
    pixels = set(map(tuple, xy[0].floor().long().tolist()))
    assert pixels == {(10, 4), (11, 4), (10, 5), (11, 5)} and bool((depth > 0).all())
    assert float(points.abs().max()) <= 1.0 + 1e-6  # within the SDF box


def test_free_space_term_is_the_mean_over_views_of_each_views_loss():
    from data.cameras import Camera
    from data.dataset import Batch
    from geometry.regularizers import free_space_loss
    from geometry.sdf import SDFNetwork
    from recon.train.model import false_coverage_points, free_space_term
    from render.camera import look_at

    torch.manual_seed(0)
    eyes = (torch.tensor([0.0, -3.0, 0.0]), torch.tensor([3.0, 0.0, 0.5]), torch.tensor([0.0, 0.0, 3.0]))
    c2w = torch.stack([torch.linalg.inv(look_at(eye, torch.zeros(3), (0, 0, 1))) for eye in eyes])
    cameras = Camera(c2w, 8.0, 8.0, 8.0, 8.0, 16, 16)
    masks = torch.ones(3, 16, 16, 1)
    masks[0, 6:10, 6:10] = 0  # through the middle of the initial sphere: points inside and outside
    masks[1, 0:3, 0:3] = 0  # a corner: every point outside
    alpha = torch.ones(3, 16, 16, 1)  # view 2: the mask and the render agree, no points
    batch = Batch(torch.zeros(3, 16, 16, 3), masks, torch.zeros(3, 1, 1, 3), cameras, torch.tensor([4, 7, 9]))
    sdf = SDFNetwork()
    term = free_space_term(batch, alpha, 8, sdf, step=3)
    (gradient,) = torch.autograd.grad(term, sdf.encoding.parameters().__next__())
    reference = []  # each view's loss on the same points (the generator seeded by the view and step)
    for b in range(3):
        generator = torch.Generator().manual_seed(int(batch.views[b]) * 1_000_003 + 3)
        points = false_coverage_points(batch[[b]], alpha[b : b + 1], 8, sdf, generator)
        reference.append(free_space_loss(sdf.sdf, points))
    reference = torch.stack(reference).mean()
    (reference_gradient,) = torch.autograd.grad(reference, sdf.encoding.parameters().__next__())
    assert float(reference.detach()) > 0
    torch.testing.assert_close(term, reference, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gradient, reference_gradient, rtol=1e-4, atol=1e-8)


def test_stage1_occlusion_follows_the_mesh_and_survives_a_checkpoint():
    from recon.train.model import ModelConfig, ReconstructionModel

    torch.manual_seed(0)
    model = ReconstructionModel(ModelConfig())  # its initial SDF: a sphere, open to the sky everywhere
    assert model.occlusion_at(torch.zeros(3, 3)) is None
    model.update_occlusion(directions=32)
    with torch.no_grad():
        vertices, _, _ = model.extract()
    values = model.occlusion_at(vertices * 1.01)  # a moved mesh takes its nearest vertices' values
    assert values.shape == (len(vertices),) and values.min().item() > 0.95
    fresh = ReconstructionModel(ModelConfig())
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.occlusion_at(vertices), model.occlusion_at(vertices))
