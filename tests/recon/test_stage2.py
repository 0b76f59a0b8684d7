"""Stage 2: textures learn the material on a fixed mesh; exported textures read back."""

from __future__ import annotations

import pytest
import torch

from data.dataset import MultiViewDataset
from data.normalization import SceneTransform
from geometry.mesh import unwrap_uv
from geometry.obj import write_obj
from geometry.primitives import uv_sphere
from recon.asset.bake import Textures, bake_textures, bake_vertex_values
from recon.asset.export import export_asset
from recon.asset.texture_material import TextureMaterial
from recon.scenes.synthetic import SyntheticConfig, make_synthetic_scene
from recon.train.stage2 import Stage2Config, Stage2Model, Stage2Trainer, train_stage2
from recon.train.trainer import TrainConfig
from render.occlusion import vertex_occlusion
from render.raster import texture


def test_textures_learn_the_base_colour(tmp_path, report):
    vertices, _, faces = uv_sphere(24, 48, 0.7)
    vertices, faces = vertices.float(), faces.long()
    write_obj(tmp_path / "sphere.obj", vertices, faces)  # constant material: base 0.6, roughness 0.5
    config = SyntheticConfig(object=str(tmp_path / "sphere.obj"), n_train=6, n_val=0, n_test=0, resolution=64,
                             light_resolution=32)  # fmt: skip
    synthetic = make_synthetic_scene(tmp_path / "scene", config)
    identity = SceneTransform(torch.zeros(3), 1.0)
    dataset = MultiViewDataset(synthetic.scene, "train", background="black", transform=identity)
    uv, uv_faces = unwrap_uv(vertices, faces, resolution=128)

    def wrong(p):
        return torch.full_like(p, 0.2), torch.full_like(p[:, :1], 0.5), torch.zeros_like(p[:, :1])

    textures = bake_textures(wrong, vertices, faces, uv, uv_faces, resolution=128)
    model = Stage2Model(vertices, faces, uv, uv_faces, TextureMaterial(textures), synthetic.light)
    stage2 = Stage2Config(steps=60, batch_size=3, texture_lr=3e-2, light_lr=0.0)
    terms = train_stage2(model, dataset, stage2, tmp_path / "run", TrainConfig(progress=False))
    learned = model.material.base_color.detach()[0][textures.covered]
    error = float((learned - 0.6).abs().mean())
    mean = float(learned.mean())
    report(
        f"stage 2, 60 steps: base colour texture 0.2 -> {mean:.3f} (target 0.6), PSNR {terms['psnr']:.1f} dB"
    )
    assert error < 0.1


def test_exported_textures_read_back(tmp_path):
    vertices, _, faces = uv_sphere(12, 24, 0.7)
    vertices, faces = vertices.float(), faces.long()
    uv, uv_faces = unwrap_uv(vertices, faces, resolution=64)

    def material(p):
        return (p + 1) / 2, (0.3 + 0.5 * (p[:, 2:] + 1) / 2), (p[:, :1] > 0).float()

    textures = bake_textures(material, vertices, faces, uv, uv_faces, resolution=64)
    export_asset(tmp_path / "mesh", vertices, faces, uv, uv_faces, textures)
    loaded = TextureMaterial.from_files(tmp_path / "mesh").textures()
    assert float((loaded.base_color - textures.base_color).abs().max()) < 0.02  # 8-bit sRGB
    assert float((loaded.roughness - textures.roughness).abs().max()) <= 0.5 / 255 + 1e-6
    assert float((loaded.metallic - textures.metallic).abs().max()) <= 0.5 / 255 + 1e-6


def test_stage2_model_from_stage1_keeps_to_the_face_budget():
    from recon.train.model import ModelConfig, ReconstructionModel

    torch.manual_seed(0)
    stage1 = ReconstructionModel(ModelConfig())  # its initial SDF: a sphere
    with torch.no_grad():
        full = stage1.extract()[1].shape[0]
    budget = full // 4
    model = Stage2Model.from_stage1(
        stage1, texture_resolution=64, min_component_fraction=0.05, max_faces=budget
    )
    assert budget * 0.9 <= model.faces.shape[0] <= budget and model.uv_faces.shape == model.faces.shape
    radius = model.vertices.norm(dim=-1)
    assert float(radius.max() - radius.min()) < 0.05 * float(radius.mean())  # still the sphere


def test_stage2_keeps_the_stage1_value_ranges():
    """A dielectric-only stage 1 (model.material.metallic_range=[0, 0], the photos preset) stays
    dielectric in stage 2, and a roughness floor stays a floor, also when the model is rebuilt from its
    state (resume), whatever the gradient asks of the textures."""
    from recon.train.model import ModelConfig, ReconstructionModel

    config = ModelConfig()
    config.material.metallic_range = (0.0, 0.0)
    config.material.roughness_range = (0.3, 0.9)
    model = Stage2Model.from_stage1(
        ReconstructionModel(config), texture_resolution=32, min_component_fraction=0.05
    )
    rebuilt = Stage2Model.from_state(model.state_dict(), config.light.build(), config.material.build())
    for material in (model.material, rebuilt.material):
        with torch.no_grad():
            material.roughness_metallic[..., 0] = 0.05  # as an optimizer step could make them
            material.roughness_metallic[..., 1] = 0.7
        uv = torch.rand(50, 2)
        _, roughness, metallic = material(torch.zeros(50, 3), uv)
        assert float(metallic.abs().max()) == 0.0 and float(roughness.min()) == pytest.approx(0.3)
        material.clamp_()
        assert float(material.roughness_metallic[..., 1].abs().max()) == 0.0
        assert float(material.roughness_metallic[..., 0].min()) == pytest.approx(0.3)
    allowed = Stage2Model.from_state(model.state_dict(), config.light)  # the default ranges: metal allowed
    with torch.no_grad():
        allowed.material.roughness_metallic[..., 0] = 0.1
        allowed.material.roughness_metallic[..., 1] = 0.7
    allowed.material.clamp_()
    assert float(allowed.material.roughness_metallic[..., 1].min()) == pytest.approx(0.7)
    assert float(allowed.material.roughness_metallic[..., 0].min()) == pytest.approx(0.1)


def test_occlusion_keeps_crevices_out_of_the_base_colour(tmp_path, report):
    # The concave object (a tunnel and a pocket), constant base colour 0.6, rendered with its ambient
    # occlusion. Stage 2 on the true mesh from a wrong base colour: shading with the occlusion learns 0.6
    # in the crevices too; without it, their darkness is painted into the texture.
    from geometry.extraction import GridConfig, extract_mesh
    from recon.scenes.procedural import concave_sdf

    bound = torch.full((3,), 1.0)
    vertices, faces, _ = extract_mesh(concave_sdf, -bound, bound, GridConfig(48, narrow_band=False))
    vertices = vertices.detach()
    write_obj(tmp_path / "concave.obj", vertices, faces)
    config = SyntheticConfig(object=str(tmp_path / "concave.obj"), n_train=10, n_val=0, n_test=0,
                             resolution=96, light_resolution=32)  # fmt: skip
    synthetic = make_synthetic_scene(tmp_path / "scene", config)
    identity = SceneTransform(torch.zeros(3), 1.0)
    dataset = MultiViewDataset(synthetic.scene, "train", background="black", transform=identity)
    uv, uv_faces = unwrap_uv(vertices, faces, resolution=128)

    def wrong(p):
        return torch.full_like(p, 0.3), torch.full_like(p[:, :1], 0.5), torch.zeros_like(p[:, :1])

    # The crevices: texels whose true ambient occlusion is below 0.85 (about a fifth of the surface).
    occluded = (
        bake_vertex_values(vertex_occlusion(vertices, faces)[:, None], faces, uv, uv_faces, 128)[..., 0]
        < 0.85
    )
    errors = {}
    for occlusion in (True, False):
        textures = bake_textures(wrong, vertices, faces, uv, uv_faces, resolution=128)
        model = Stage2Model(vertices, faces, uv, uv_faces, TextureMaterial(textures), synthetic.light)
        stage2 = Stage2Config(steps=100, batch_size=4, texture_lr=3e-2, light_lr=0.0, optimize_vertices=False,
                              occlusion=occlusion)  # fmt: skip
        train_stage2(model, dataset, stage2, tmp_path / f"run_{occlusion}", TrainConfig(progress=False))
        assert (model.occlusion is not None) == occlusion
        base_color = model.material.textures().base_color[occluded & textures.covered]
        errors[occlusion] = float((base_color - 0.6).abs().median())
    report(
        f"stage 2 on the concave object rendered with occlusion, base colour error where the occlusion is "
        f"below 0.85: {errors[True]:.3f} shading with occlusion, {errors[False]:.3f} without"
    )
    assert errors[True] < 0.05 and errors[False] > 0.1


def test_learning_rates_decay_to_the_final_fraction(tmp_path):
    """Every stage-2 group's rate decays exponentially to ``final_lr_fraction`` by the last step; a run
    stopped half-way resumes on the same schedule (the scheduler is in the checkpoint)."""
    vertices, _, faces = uv_sphere(8, 16, 0.7)
    vertices, faces = vertices.float(), faces.long()
    write_obj(tmp_path / "sphere.obj", vertices, faces)
    config = SyntheticConfig(object=str(tmp_path / "sphere.obj"), n_train=2, n_val=0, n_test=0, resolution=32,
                             light_resolution=16)  # fmt: skip
    synthetic = make_synthetic_scene(tmp_path / "scene", config)
    dataset = MultiViewDataset(synthetic.scene, "train", transform=SceneTransform(torch.zeros(3), 1.0))
    uv, uv_faces = unwrap_uv(vertices, faces, resolution=32)

    def trainer(run: str, steps: int) -> Stage2Trainer:
        material = lambda p: (torch.full_like(p, 0.5), p[:, :1] * 0 + 0.5, p[:, :1] * 0)  # noqa: E731
        textures = bake_textures(material, vertices, faces, uv, uv_faces, resolution=32)
        model = Stage2Model(vertices, faces, uv, uv_faces, TextureMaterial(textures), synthetic.light)
        stage2 = Stage2Config(steps=steps, batch_size=1, final_lr_fraction=0.25, occlusion=False)
        return Stage2Trainer(model, dataset, stage2, TrainConfig(progress=False), tmp_path / run)

    whole = trainer("whole", 8)
    whole.fit()
    start = {"textures": 1e-2, "light": 1e-2, "vertices": 1e-3}
    for group in whole.optimizer.param_groups:
        assert group["lr"] == pytest.approx(0.25 * start[group["name"]], rel=1e-9)
    first = trainer("halves", 8)
    for _ in range(4):  # stopped half-way
        first.train_step()
    first.save()
    second = trainer("halves", 8)
    second.restore()
    assert second.step == 4
    assert second.optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * 1e-2, rel=1e-9)


@pytest.mark.parametrize("normal_map", [False, True])
def test_texture_material_lookup_equals_one_lookup_per_map(normal_map):
    generator = torch.Generator().manual_seed(0)
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    textures = Textures(rand(16, 16, 3), rand(16, 16, 1), rand(16, 16, 1), torch.ones(1), None)
    material = TextureMaterial(textures, normal_map=normal_map, roughness_range=(0.2, 0.9))
    if normal_map:
        with torch.no_grad():
            material.normal_map.copy_(rand(1, 16, 16, 3))
    uv, uv_da = rand(40, 2), (rand(40, 4) - 0.5) * 0.3
    values = material(None, uv, uv_da)
    loss = sum((value * rand(*value.shape)).sum() for value in values)
    loss.backward()
    maps = [material.base_color, material.roughness_metallic[..., :1], material.roughness_metallic[..., 1:]]
    ranges = [material.base_color_range, material.roughness_range, material.metallic_range]
    if normal_map:
        maps.append(material.normal_map)
        ranges.append((-1.0, 1.0))
    assert len(values) == len(maps)
    options = {"uv_da": uv_da[None, :, None], "filter_mode": "linear-mipmap-linear", "boundary_mode": "clamp"}
    for value, tex, limits in zip(values, maps, ranges, strict=True):
        expected = texture(tex.detach().contiguous(), uv[None, :, None], **options)[0, :, 0].clamp(*limits)
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-6)
    assert material.base_color.grad.abs().sum() > 0 and material.roughness_metallic.grad.abs().sum() > 0
