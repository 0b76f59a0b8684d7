"""Benchmark rasterize -> interpolate -> texture -> antialias, forward + backward.

Scenes: a tessellated sphere filling about half the frame, and a soup of small scattered triangles.
For each backend available on each device, resolution and triangle count it reports the median
over repeats (after a warm-up) of the full step, its forward part, and peak memory; prints a table
and writes JSON.

    python scripts/bench_raster.py                       # the full grid (slow on CPU)
    python scripts/bench_raster.py --res 512 --tris 100000 --scenes sphere
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

import render.raster as dr  # noqa: E402
from geometry.primitives import triangle_soup, uv_sphere  # noqa: E402
from render.camera import look_at, perspective, to_clip  # noqa: E402
from scripts.bench_common import devices, peak_memory_mb, write_json  # noqa: E402

FOVY = math.radians(30)
DISTANCE = 4.78  # a unit sphere then covers about half of a square frame


def make_scene(kind: str, triangles: int, device: torch.device):
    """Clip-space positions [1, V, 4], triangles, uv [1, V, 2] for the named scene."""
    if kind == "sphere":
        n = max(3, round(math.sqrt(triangles / 2)))
        vertices, uv, tri = uv_sphere(n + 1, n)
    else:
        size = 2.5 / math.sqrt(triangles)
        vertices, tri = triangle_soup(triangles, size=size)
        uv = torch.rand(vertices.shape[0], 2, generator=torch.Generator().manual_seed(1))
    mvp = perspective(FOVY) @ look_at((0.0, -DISTANCE, 0.0), (0, 0, 0), (0, 0, 1))
    pos = to_clip(vertices, mvp)[None].contiguous()
    return pos.to(device), tri.to(device), uv[None].contiguous().to(device)


def step(pos, tri, uv, tex, topology, resolution, backend):
    """One forward + backward; returns (forward seconds, total seconds)."""
    sync = torch.cuda.synchronize if pos.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    rast, rast_db = dr.rasterize(pos, tri, resolution, backend=backend)
    texc, texd = dr.interpolate(uv, rast, tri, rast_db, diff_attrs="all", backend=backend)
    color = dr.texture(tex, texc, texd, filter_mode="linear-mipmap-linear", backend=backend)
    color = dr.antialias(color, rast, pos, tri, topology_hash=topology, backend=backend)
    loss = color.sum()
    sync()
    forward = time.perf_counter() - start
    loss.backward()
    sync()
    return forward, time.perf_counter() - start


def run_case(kind, triangles, res, device, backend, repeats):
    pos, tri, uv = make_scene(kind, triangles, device)
    pos.requires_grad_(True)
    tex = torch.rand(1, 512, 512, 3, device=device, requires_grad=True)
    topology = dr.antialias_construct_topology_hash(tri)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step(pos, tri, uv, tex, topology, (res, res), backend)  # warm-up (and topology build)
    forwards, totals = [], []
    for _ in range(repeats):
        pos.grad, tex.grad = None, None
        f, t = step(pos, tri, uv, tex, topology, (res, res), backend)
        forwards.append(f)
        totals.append(t)
    with torch.no_grad():
        rast, _ = dr.rasterize(pos, tri, (res, res), backend=backend)
        coverage = float((rast[..., 3] > 0).float().mean())
    return {
        "scene": kind,
        "triangles": int(tri.shape[0]),
        "resolution": res,
        "device": device.type,
        "backend": backend,
        "median_s": statistics.median(totals),
        "forward_median_s": statistics.median(forwards),
        "repeats": repeats,
        "coverage": round(coverage, 3),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--res", type=int, nargs="+", default=[256, 512, 1024], help="square resolutions")
    parser.add_argument(
        "--tris", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="triangle counts"
    )
    parser.add_argument("--scenes", nargs="+", default=["sphere", "soup"], choices=["sphere", "soup"])
    parser.add_argument(
        "--backends", nargs="+", default=["torch", "nvdiffrast"], choices=["torch", "nvdiffrast"]
    )
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats after one warm-up")
    parser.add_argument("--out", type=Path, default=Path("bench_results/bench_raster.json"))
    args = parser.parse_args(argv)
    rows = []
    header = (
        f"{'backend':<11}{'device':<7}{'scene':<8}{'tris':>9}{'res':>6}"
        f"{'median s':>10}{'fwd s':>9}{'cover':>7}{'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    for device in devices(args.devices):
        for backend in args.backends:
            if backend == "nvdiffrast" and (device.type != "cuda" or not dr.nvdiffrast_available()):
                continue
            for kind in args.scenes:
                for triangles in args.tris:
                    for res in args.res:
                        row = run_case(kind, triangles, res, device, backend, args.repeats)
                        rows.append(row)
                        print(
                            f"{backend:<11}{device.type:<7}{kind:<8}{row['triangles']:>9}{res:>6}"
                            f"{row['median_s']:>10.4f}{row['forward_median_s']:>9.4f}{row['coverage']:>7.2f}"
                            f"{row['peak_memory_mb']:>9.0f}",
                            flush=True,
                        )
    write_json(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
