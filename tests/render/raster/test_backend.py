import subprocess
import sys

import pytest
import torch

import render.raster as R
from render.raster import backend
from render.raster.nvdiffrast_backend import BackendUnavailableError


def test_auto_uses_torch_for_cpu_tensors():
    assert backend.resolve("auto", torch.device("cpu")) == "torch"
    assert backend.resolve(None, torch.device("cpu")) == "torch"


def test_use_backend_scopes_the_default():
    assert R.get_backend() == "auto"
    with R.use_backend("torch"):
        assert R.get_backend() == "torch"
    assert R.get_backend() == "auto"
    with pytest.raises(ValueError, match="^backend"):
        R.set_backend("vulkan")


@pytest.mark.skipif(R.nvdiffrast_available(), reason="nvdiffrast is installed here")
def test_missing_nvdiffrast_gives_a_clear_error():
    pos = torch.tensor([[[-0.5, -0.5, 0, 1], [0.5, -0.5, 0, 1], [0, 0.5, 0, 1]]])
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    with pytest.raises(BackendUnavailableError, match="nvdiffrast"):
        R.rasterize(pos, tri, (4, 4), backend="nvdiffrast")


def test_nvdiffrast_backend_rejects_cpu_tensors():
    with pytest.raises(BackendUnavailableError, match="nvdiffrast"):
        backend.resolve("nvdiffrast", torch.device("cpu"))


def test_packages_import_without_accelerators():
    # Block nvdiffrast and tinycudann even if installed: every package must still import and work.
    code = (
        "import sys; sys.modules['nvdiffrast'] = None; sys.modules['nvdiffrast.torch'] = None; "
        "sys.modules['tinycudann'] = None\n"
        "import render, render.raster, render.camera, geometry, geometry.primitives, recon, data\n"
        "import torch\n"
        "pos = torch.tensor([[[-0.5, -0.5, 0, 1], [0.5, -0.5, 0, 1], [0, 0.5, 0, 1]]])\n"
        "rast, _ = render.raster.rasterize(pos, torch.tensor([[0, 1, 2]], dtype=torch.int32), (4, 4))\n"
        "assert not render.raster.nvdiffrast_available()\n"
        "print(int(rast[..., 3].sum()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 0
