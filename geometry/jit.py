"""numba, the optional compiler of the CPU fast paths (:mod:`geometry.hashgrid_cpu`, :mod:`geometry.gather`,
:mod:`render.raster.torch_backend.scan_cpu`): imported on first use, never required.

numba compiles with the LLVM inside its wheel, so pip alone installs it; the compiled code is cached
beside each module (or in numba's user cache when that folder is not writable). Each fast path has a
pure-torch twin with the same semantics, used when numba is missing and tested against it.
"""

from __future__ import annotations

import importlib
import os
from functools import cache, lru_cache
from types import ModuleType

import torch

DISABLE_VARIABLE = "RECON_NO_NUMBA"
"""Set to 1 to run the torch twins even where numba imports (comparisons, debugging)."""


@lru_cache(maxsize=1)
def numba_module() -> ModuleType | None:
    """numba, or None when it does not import (any reason) or ``RECON_NO_NUMBA=1``."""
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return None
    # numba's thread pool is sized once, at import; beyond torch's thread count its threads would only
    # compete with torch's (and, under pytest -n 2, with the other worker) for the cores.
    os.environ.setdefault("NUMBA_NUM_THREADS", str(max(1, torch.get_num_threads())))
    try:
        return importlib.import_module("numba")
    except Exception:  # noqa: BLE001 - an optional accelerator must never break the import
        return None


@cache
def compiled_module(name: str) -> ModuleType | None:
    """The module ``name`` of numba kernels (imported on first use; it imports numba at its top), or None
    when numba is not available (see :func:`numba_module`). The kernels live at module level so that
    numba's disk cache finds them again in every process."""
    return None if numba_module() is None else importlib.import_module(name)


def use_torch_threads() -> None:
    """Run the compiled loops on as many threads as torch's operators (``torch.set_num_threads``)."""
    numba = numba_module()
    if numba is not None:
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
