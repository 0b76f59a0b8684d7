"""Marching-cubes case tables, generated in code (no copied table).

Corner c of a cell sits at offset (c & 1, (c >> 1) & 1, (c >> 2) & 1); a corner is *inside* when its
SDF value is negative, and the case index is the bitmask of inside corners. For every case the
iso-contour is built face by face: on each cube face the crossed edges are joined by directed
segments that keep the face's inside corners on their left (seen from outside the cube). A face with
two diagonal inside corners (the ambiguous case) always separates them. The rule depends only on the
face's four corners, so neighbouring cells agree on the shared face and the mesh is watertight.
Chaining the directed segments gives closed loops, which are fan-triangulated; the direction makes
every triangle counter-clockwise seen from outside (positive SDF) once the loops are reversed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

CORNERS = np.array([[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)])
EDGES = np.array(
    [(a, b) for a in range(8) for b in range(8) if a < b and np.abs(CORNERS[a] - CORNERS[b]).sum() == 1]
)
"""[12, 2] corner pairs; each edge goes from its lower to its upper corner along one axis."""
EDGE_AXIS = np.array([int(np.argmax(CORNERS[b] - CORNERS[a])) for a, b in EDGES])
EDGE_ORIGIN = CORNERS[EDGES[:, 0]]


def _faces() -> list[list[int]]:
    """The 6 faces as corner cycles, counter-clockwise seen from outside the cube."""
    faces = []
    for axis in range(3):
        for side in (0, 1):
            members = [c for c in range(8) if CORNERS[c][axis] == side]
            centre = CORNERS[members].mean(0)
            normal = np.zeros(3)
            normal[axis] = 1 if side else -1
            u = CORNERS[members[0]] - centre
            v = np.cross(normal, u)
            angle = [np.arctan2((CORNERS[c] - centre) @ v, (CORNERS[c] - centre) @ u) for c in members]
            faces.append([members[i] for i in np.argsort(angle)])
    return faces


def _edge_index(a: int, b: int) -> int:
    a, b = min(a, b), max(a, b)
    return int(np.nonzero((EDGES[:, 0] == a) & (EDGES[:, 1] == b))[0][0])


def _segments(case: int) -> list[tuple[int, int]]:
    """Directed (from edge, to edge) segments of all faces for one case."""
    inside = [(case >> c) & 1 for c in range(8)]
    segments = []
    for cycle in _faces():
        for k, corner in enumerate(cycle):
            prev_c = cycle[k - 1]
            if not inside[corner] or inside[prev_c]:
                continue  # only the first corner of a run of inside corners starts a segment
            # Walk counter-clockwise over the run (a run that starts after an outside corner has < 4).
            last = k
            while inside[cycle[(last + 1) % 4]]:
                last += 1
            after = cycle[(last + 1) % 4]
            # Inside corners on the left when going from the exit edge back to the entry edge.
            segments.append((_edge_index(cycle[last % 4], after), _edge_index(prev_c, corner)))
    return segments


@lru_cache(maxsize=1)
def triangle_table() -> np.ndarray:
    """[256, 5, 3] edge indices of up to five triangles per case, -1 where unused."""
    table = -np.ones((256, 5, 3), dtype=np.int64)
    for case in range(1, 255):
        nxt = dict(_segments(case))
        triangles = []
        while nxt:
            start, _ = next(iter(nxt.items()))
            loop = [start]
            while nxt[loop[-1]] != start:
                loop.append(nxt[loop[-1]])
            for e in loop:
                del nxt[e]
            # The loops run clockwise seen from outside: reverse them into counter-clockwise triangles.
            triangles += [(loop[0], loop[i + 1], loop[i]) for i in range(1, len(loop) - 1)]
        table[case, : len(triangles)] = triangles
    return table
