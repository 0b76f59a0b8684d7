"""The compiled loops of :mod:`render.raster.torch_backend.scan_cpu` (imported only when numba is).

Module-level functions, so that numba's on-disk cache finds them again in every process (a kernel
defined inside a function would be compiled anew by each one).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

f32 = np.float32


@njit(inline="always")
def box_bound(lo, hi, size, eps):
    """Inclusive pixel range [first, last] of NDC interval [lo, hi] (rasterize._bounding_boxes)."""
    half = f32(size * 0.5)
    first = np.ceil((lo + f32(1.0)) * half - f32(0.5) - eps)
    last = np.floor((hi + f32(1.0)) * half - f32(0.5) + eps)
    first = min(max(first, f32(0.0)), f32(size))
    last = min(max(last, f32(-1.0)), f32(size - 1))
    return first, last


@njit(parallel=True, cache=True)
def setup_scan(verts, tri_ids, view_start, keys, height, width, box_eps):
    views = view_start.shape[0] - 1
    low, high = f32(-1.0), f32(1.0)
    sx, ox = f32(2.0 / width), f32(1.0 / width - 1.0)
    sy, oy = f32(2.0 / height), f32(1.0 / height - 1.0)
    for view in prange(views):
        depth = np.empty(1, np.float32)
        bits = depth.view(np.int32)
        planes = np.empty((4, 3), np.float32)
        coeffs = np.empty((4, 3), np.float32)
        base = view * height * width
        for t in range(view_start[view], view_start[view + 1]):
            # Edge rows of the adjugate, as rasterize._setup_triangles (each product rounded).
            for i in range(3):
                j, k = (i + 1) % 3, (i + 2) % 3
                planes[i, 0] = verts[t, j, 1] * verts[t, k, 3] - verts[t, j, 3] * verts[t, k, 1]
                planes[i, 1] = verts[t, j, 3] * verts[t, k, 0] - verts[t, j, 0] * verts[t, k, 3]
                planes[i, 2] = verts[t, j, 0] * verts[t, k, 1] - verts[t, j, 1] * verts[t, k, 0]
            x0, y0, w0 = verts[t, 0, 0], verts[t, 0, 1], verts[t, 0, 3]
            det = (x0 * planes[0, 0] + y0 * planes[0, 1]) + w0 * planes[0, 2]
            if det == 0 or det != det:
                continue
            sign = f32(1.0) if det > 0 else f32(-1.0)
            for i in range(3):
                for c in range(3):
                    planes[i, c] = planes[i, c] * sign
            magnitude = abs(det)
            z0, z1, z2 = verts[t, 0, 2], verts[t, 1, 2], verts[t, 2, 2]
            for c in range(3):
                total = (z0 * planes[0, c] + z1 * planes[1, c]) + z2 * planes[2, c]
                planes[3, c] = total / magnitude
            finite = True
            for r in range(4):
                coeffs[r, 0] = planes[r, 0] * sx
                coeffs[r, 1] = planes[r, 1] * sy
                coeffs[r, 2] = (planes[r, 0] * ox + planes[r, 1] * oy) + planes[r, 2]
                for c in range(3):
                    finite &= np.isfinite(coeffs[r, c])
            if not finite:
                continue
            # Bounding box of the part in front of the near plane (rasterize._bounding_boxes).
            xmin, ymin, xmax, ymax = np.inf, np.inf, -np.inf, -np.inf
            any_valid, full = False, False
            for i in range(6):
                a = i % 3
                d_a = verts[t, a, 2] + verts[t, a, 3]
                if i < 3:
                    if not d_a >= 0:
                        continue
                    px, py, pw = verts[t, a, 0], verts[t, a, 1], verts[t, a, 3]
                else:
                    b = (a + 1) % 3
                    d_b = verts[t, b, 2] + verts[t, b, 3]
                    if (d_a >= 0) == (d_b >= 0):
                        continue
                    s = d_a / (d_a - d_b)
                    px = verts[t, a, 0] + s * (verts[t, b, 0] - verts[t, a, 0])
                    py = verts[t, a, 1] + s * (verts[t, b, 1] - verts[t, a, 1])
                    pw = verts[t, a, 3] + s * (verts[t, b, 3] - verts[t, a, 3])
                any_valid = True
                if pw <= 0:
                    full = True
                    continue
                nx, ny = px / pw, py / pw
                xmin, xmax = min(xmin, nx), max(xmax, nx)
                ymin, ymax = min(ymin, ny), max(ymax, ny)
            if not any_valid:
                continue
            if full:
                xmin, ymin, xmax, ymax = low, low, high, high
            x0, x1 = box_bound(f32(xmin), f32(xmax), width, box_eps)
            y0, y1 = box_bound(f32(ymin), f32(ymax), height, box_eps)
            if not (x1 >= x0 and y1 >= y0):  # empty, or NaN
                continue
            a0, b0, c0 = coeffs[0, 0], coeffs[0, 1], coeffs[0, 2]
            a1, b1, c1 = coeffs[1, 0], coeffs[1, 1], coeffs[1, 2]
            a2, b2, c2 = coeffs[2, 0], coeffs[2, 1], coeffs[2, 2]
            a3, b3, c3 = coeffs[3, 0], coeffs[3, 1], coeffs[3, 2]
            ident = tri_ids[t]
            for y in range(int(y0), int(y1) + 1):
                fy = f32(y)
                row = base + y * width
                for x in range(int(x0), int(x1) + 1):
                    fx = f32(x)
                    if (a0 * fx + c0) + b0 * fy < 0:
                        continue
                    if (a1 * fx + c1) + b1 * fy < 0:
                        continue
                    if (a2 * fx + c2) + b2 * fy < 0:
                        continue
                    z = (a3 * fx + c3) + b3 * fy
                    if not (z >= low and z <= high):
                        continue
                    depth[0] = z
                    key_bits = bits[0]
                    ordered = key_bits ^ np.int32(0x7FFFFFFF) if key_bits < 0 else key_bits
                    key = (np.int64(ordered) << 32) | ident
                    if key < keys[row + x]:
                        keys[row + x] = key
