"""Backend selection: "auto" | "torch" | "nvdiffrast", per call or as a scoped default."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from . import nvdiffrast_backend

BACKENDS = ("auto", "torch", "nvdiffrast")
_default = "auto"


def _check_name(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {name!r}")
    return name


def get_backend() -> str:
    """The default backend used when an op is called with ``backend=None``."""
    return _default


def set_backend(name: str) -> None:
    """Set the process-wide default backend ("auto", "torch" or "nvdiffrast")."""
    global _default
    _default = _check_name(name)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Temporarily change the default backend: ``with use_backend("torch"): ...``."""
    global _default
    previous, _default = _default, _check_name(name)
    try:
        yield
    finally:
        _default = previous


def resolve(name: str | None, device: torch.device) -> str:
    """Concrete backend ("torch" or "nvdiffrast") for tensors on ``device``.

    "auto" picks nvdiffrast for CUDA tensors when it imports, else torch. Asking for nvdiffrast
    where it cannot run raises a ValueError that says why.
    """
    name = _check_name(_default if name is None else name)
    if name == "auto":
        return "nvdiffrast" if device.type == "cuda" and nvdiffrast_backend.is_available() else "torch"
    if name == "nvdiffrast":
        nvdiffrast_backend._module()  # raises a clear error when missing
        if device.type != "cuda":
            raise nvdiffrast_backend.BackendUnavailableError(
                f"backend='nvdiffrast' needs CUDA tensors, got tensors on {device}; "
                "use backend='torch' or 'auto'"
            )
    return name
