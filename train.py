"""Reconstruction entry point (Hydra). The trainer is not implemented yet."""

import sys


def main() -> int:
    print(
        "train.py: the reconstruction trainer is not implemented yet; the rasterization primitives, "
        "shading and marching cubes exist so far. See README.md for what works today.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
