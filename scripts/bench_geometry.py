"""Benchmark shape extraction: SDF network on the grid -> marching cubes, forward + backward to the network.

The network (default SDFNetworkConfig) is first fitted for a few seconds to an analytic shape (a box
with a torus through it, filling about half of the box's width), so that the timed field has a
realistic surface and narrow band. Each timed step samples the grid (narrow band, or every point),
extracts the mesh and back-propagates a vertex loss into the network's parameters. Prints a table
(medians after a warm-up) and writes JSON.

    python scripts/bench_geometry.py                       # 64^3, 128^3, 256^3; full evaluation up to 128^3
    python scripts/bench_geometry.py --res 128 --repeats 9 --full-max 0
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geometry.extraction import GridConfig, extract_mesh  # noqa: E402
from geometry.regularizers import eikonal_loss, eikonal_points  # noqa: E402
from geometry.sdf import SDFNetwork  # noqa: E402
from scripts.bench_common import devices, peak_memory_mb, write_json  # noqa: E402


def shape(points: torch.Tensor) -> torch.Tensor:
    """A box with a torus through it (genus 1, flat faces, sharp edges)."""
    q = points.abs() - 0.35
    box = q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0)
    ring = torch.stack((points[:, :2].norm(dim=-1) - 0.6, points[:, 2]), -1)
    return torch.minimum(box, ring.norm(dim=-1) - 0.12)


def fitted_network(device: torch.device, steps: int = 150) -> SDFNetwork:
    torch.manual_seed(0)
    network = SDFNetwork(seed=0).to(device)
    optimizer = torch.optim.Adam(
        [
            {"params": network.encoding.parameters(), "lr": 1e-2},
            {"params": network.layers.parameters(), "lr": 1e-3},
        ]
    )
    for _ in range(steps):
        points = torch.rand(4096, 3, device=device) * 2 - 1
        points[:2048] *= 0.9
        loss = (network.sdf(points) - shape(points)).abs().mean()
        loss = loss + 0.1 * eikonal_loss(
            network.sdf, eikonal_points(1024, network.lower, network.upper), 5e-3
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return network


def step(network: SDFNetwork, config: GridConfig) -> dict:
    sync = torch.cuda.synchronize if network.centre.is_cuda else (lambda: None)
    network.zero_grad(set_to_none=True)
    sync()
    start = time.perf_counter()
    vertices, faces, grid = extract_mesh(network.sdf, network.lower, network.upper, config)
    sync()
    forward = time.perf_counter() - start
    vertices.square().sum().backward()
    sync()
    total = time.perf_counter() - start
    return {
        "forward_s": forward,
        "backward_s": total - forward,
        "total_s": total,
        "vertices": len(vertices),
        "faces": len(faces),
        "evaluated": grid.evaluated,
        "evaluated_with_grad": grid.evaluated_with_grad,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--res", type=int, nargs="+", default=[64, 128, 256], help="grid cells per axis")
    parser.add_argument("--full-max", type=int, default=128, help="also time full evaluation up to this res")
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per case (after one warm-up)")
    parser.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: all present)")
    parser.add_argument("--out", type=Path, default=Path("bench_results/bench_geometry.json"))
    args = parser.parse_args()

    rows = []
    columns = ("device", "res", "mode", "verts", "evals", "grad", "fwd s", "bwd s", "total s")
    print(" ".join(f"{c:>{w}}" for c, w in zip(columns, (6, 4, 7, 7, 9, 7, 7, 7, 8), strict=True)))
    for device in devices(args.devices):
        network = fitted_network(device)
        for res in args.res:
            modes = [True] + ([False] if res <= args.full_max else [])
            for narrow in modes:
                config = GridConfig(res, narrow_band=narrow)
                runs = [step(network, config) for _ in range(args.repeats + 1)][1:]
                row = {"device": device.type, "res": res, "narrow_band": narrow, "repeats": args.repeats}
                for key in runs[0]:
                    row[key] = statistics.median(r[key] for r in runs)
                row["peak_memory_mb"] = peak_memory_mb(device)
                rows.append(row)
                mode = "narrow" if narrow else "full"
                print(
                    f"{device.type:6} {res:4d} {mode:7} {row['vertices']:7.0f} {row['evaluated']:9.0f} "
                    f"{row['evaluated_with_grad']:7.0f} {row['forward_s']:7.3f} {row['backward_s']:7.3f} "
                    f"{row['total_s']:8.3f}"
                )
    write_json(args.out, rows)


if __name__ == "__main__":
    main()
