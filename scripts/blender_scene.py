"""Write a ready-to-render Blender scene of a run's result: the asset (mesh.glb), the world lit by its
probe.hdr, the dataset's test cameras and an animated turntable camera (the active one), Cycles set up.

    python scripts/blender_scene.py outputs/2026-12-02/10-00-00 result.blend [--frames 120]

Open result.blend in Blender 5 and press F12 (one frame) or Ctrl+F12 (the turntable). Needs bpy
(pip install -e '.[blender]', Python 3.11).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.files import atomic_path  # noqa: E402
from recon.asset.load import asset_dataset  # noqa: E402
from recon.evaluation.blender import require_bpy  # noqa: E402
from recon.evaluation.evaluate import load_run  # noqa: E402
from recon.run_dir import RunDir  # noqa: E402
from scripts.cli import run  # noqa: E402


def build(run_dir: Path, out: Path, frames: int, samples: int) -> None:
    bpy = require_bpy()
    from recon.evaluation import blender
    from recon.evaluation.relight import turntable_cameras
    from recon.scenes.scene import build_scene

    settings, folder = load_run(run_dir)
    up, _ = RunDir(run_dir).up()
    scene_data = build_scene(settings.dataset, run_dir)
    split = "test" if scene_data.splits.get("test") else "val"
    dataset = asset_dataset(scene_data, split, settings.dataset.downscale_for(scene_data))
    scene = blender.new_scene(samples=samples)
    scene.render.film_transparent = False  # show the environment behind the asset
    scene.render.image_settings.file_format = "PNG"
    objects = blender.import_asset(folder, "glb", up)
    blender.set_world(folder / "probe.hdr")
    for view in range(len(dataset)):
        blender.add_camera(dataset.cameras, view, up, name=f"{split}_{dataset.views[view]:03d}")
    # The turntable: one camera parented to an empty at the asset's centre that turns once about +Z.
    lower, upper = blender.world_bounds(objects)
    corners = torch.tensor([lower.tolist(), upper.tolist()], dtype=torch.float32)
    orbit = turntable_cameras(corners, 1, max(dataset.cameras.width, dataset.cameras.height))
    pivot = bpy.data.objects.new("turntable_pivot", None)
    pivot.location = ((lower + upper) / 2).tolist()
    scene.collection.objects.link(pivot)
    camera = blender.add_camera(orbit, 0, name="turntable")
    world_matrix = camera.matrix_world.copy()
    camera.parent = pivot
    camera.matrix_parent_inverse = pivot.matrix_world.inverted()
    camera.matrix_world = world_matrix
    scene.frame_start, scene.frame_end = 1, frames
    for frame in range(1, frames + 1):
        pivot.rotation_euler = (0.0, 0.0, 2 * math.pi * (frame - 1) / frames)
        pivot.keyframe_insert("rotation_euler", frame=frame)
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_y = dataset.cameras.width, dataset.cameras.height
    scene.render.filepath = "//render/frame_"
    with atomic_path(out) as tmp:
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp.resolve()), check_existing=False, copy=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="a run folder written by train.py")
    parser.add_argument("out", type=Path, help="the .blend file to write")
    parser.add_argument("--frames", type=int, default=120, help="turntable length in frames (default 120)")
    parser.add_argument("--samples", type=int, default=64, help="Cycles samples per pixel (default 64)")
    args = parser.parse_args()
    if args.out.suffix != ".blend":
        print(f"blender_scene.py: {args.out}: the output must be a .blend file", file=sys.stderr)
        return 1
    code = run("blender_scene.py", lambda: build(args.run_dir, args.out, args.frames, args.samples))
    if code == 0:
        print(f"blender_scene.py: wrote {args.out} (asset, world light, cameras, turntable of {args.frames})")
    return code


if __name__ == "__main__":
    sys.exit(main())
