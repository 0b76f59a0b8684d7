"""Benchmark split-sum shading: prefilter the learnable light + shade one frame, forward + backward.

The frame is a unit sphere rendered at RES x RES with per-pixel random base colour, roughness and
metallic, framed as in bench_raster.py (covering about half of the pixels) or, with --framing full,
filling the view (the inscribed disk, about 78% of the pixels). Only covered pixels are shaded, as the
renderer does. The G-buffer is
built once (not timed); each timed step prefilters the light (specular chain + SH), shades every
covered pixel and back-propagates to the light texels, normals and materials. Prints a table (medians
after a warm-up, with the prefilter and shading parts timed separately) and writes JSON.

    python scripts/bench_shading.py                      # R = 64, 128, 256 at 512^2
    python scripts/bench_shading.py --light-res 128 --res 512 1024
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geometry.primitives import uv_sphere  # noqa: E402
from render.camera import look_at, perspective, to_clip  # noqa: E402
from render.light import EnvironmentLight, EnvironmentLightConfig  # noqa: E402
from render.raster import interpolate, rasterize  # noqa: E402
from scripts.bench_common import devices, peak_memory_mb, write_json  # noqa: E402

FOVY = math.radians(30)
DISTANCES = {
    "half": 4.78,  # the unit sphere covers about half of the frame, as in bench_raster.py
    "full": 1 / math.sin(FOVY / 2),  # the sphere's silhouette touches the frame's edges
}


def gbuffer(res: int, device: torch.device, framing: str = "half"):
    """Normals [P, 3] and view directions [P, 3] of the covered pixels of the framed sphere."""
    vertices, _, tri = uv_sphere(129, 256)
    vertices = vertices.float()
    eye = torch.tensor([0.0, -DISTANCES[framing], 0.0])
    mvp = perspective(FOVY) @ look_at(eye, (0, 0, 0), (0, 0, 1))
    rast, _ = rasterize(to_clip(vertices, mvp)[None].contiguous(), tri, (res, res), backend="torch")
    pos, _ = interpolate(vertices[None], rast, tri, backend="torch")
    covered = rast[0, ..., 3] > 0
    p = pos[0][covered]
    return p.to(device), (eye - p).to(device)


def step(light, normal, view, material, grad_out):
    """(prefilter seconds, total seconds) of one forward + backward."""
    sync = torch.cuda.synchronize if normal.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    maps = light.prefilter()
    sync()
    prefiltered = time.perf_counter()
    color = light.shade(normal, view, *material, maps=maps)
    (color * grad_out).sum().backward()
    sync()
    return prefiltered - start, time.perf_counter() - start


def run_case(light_res: int, res: int, device: torch.device, repeats: int, framing: str) -> dict:
    torch.manual_seed(0)
    light = EnvironmentLight(EnvironmentLightConfig(resolution=light_res)).to(device)
    with torch.no_grad():
        light.base.uniform_(0.0, 2.0)
    normal, view = gbuffer(res, device, framing)
    normal.requires_grad_(True)
    count = normal.shape[0]
    material = [
        torch.rand(count, 3, device=device, requires_grad=True),
        torch.rand(count, 1, device=device).mul(0.9).add(0.1).requires_grad_(),
        torch.rand(count, 1, device=device, requires_grad=True),
    ]
    grad_out = torch.rand(count, 3, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step(light, normal, view, material, grad_out)  # warm-up: builds the cached filters and DFG table
    prefilter, total = [], []
    for _ in range(repeats):
        for t in [light.base, normal, *material]:
            t.grad = None
        p, s = step(light, normal, view, material, grad_out)
        prefilter.append(p)
        total.append(s)
    return {
        "light_resolution": light_res,
        "resolution": res,
        "framing": framing,
        "pixels": count,
        "device": device.type,
        "median_s": statistics.median(total),
        "prefilter_forward_median_s": statistics.median(prefilter),
        "repeats": repeats,
        "peak_memory_mb": round(peak_memory_mb(device), 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--light-res", type=int, nargs="+", default=[64, 128, 256], help="cube face sizes R")
    parser.add_argument("--res", type=int, nargs="+", default=[512], help="square frame resolutions")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--framing", nargs="+", default=["half", "full"], choices=sorted(DISTANCES))
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats after one warm-up")
    parser.add_argument("--out", type=Path, default=Path("bench_results/bench_shading.json"))
    args = parser.parse_args(argv)
    header = (
        f"{'device':<7}{'R':>5}{'res':>6}{'framing':>8}{'pixels':>9}{'median s':>10}{'prefilter fwd s':>17}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for device in devices(args.devices):
        for light_res in args.light_res:
            for res in args.res:
                for framing in args.framing:
                    row = run_case(light_res, res, device, args.repeats, framing)
                    rows.append(row)
                    print(
                        f"{device.type:<7}{light_res:>5}{res:>6}{framing:>8}{row['pixels']:>9}"
                        f"{row['median_s']:>10.4f}{row['prefilter_forward_median_s']:>17.4f}",
                        flush=True,
                    )
    write_json(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
