"""The optional C++ extensions' parallel regions run on all of torch's intra-op threads.

at::parallel_for is a header template: built without OpenMP (setup.py passes -fopenmp), it
runs its body on the calling thread alone, silently, which the first build of the attention
tile loop did (at half the speed on 2 cores). Each extension with a region reports how many
threads one of them runs on.
"""

import pytest
import torch

from torch_fwdad.formulas import attention_tiles, grid_sample_tangent

# (the module that loads the extension, the op reporting one region's thread count)
REGIONS = {
    "attention tile loop": (attention_tiles, "attention_tiles_parallel_threads"),
    "grid-sample tangent": (grid_sample_tangent, "grid_sample_tangent_parallel_threads"),
}


@pytest.mark.parametrize("name", REGIONS)
def test_parallel_region_runs_on_all_of_torchs_threads(name):
    module, op = REGIONS[name]
    if not module.extension.info()["built"]:
        pytest.skip(f"{name} not built here: {module.extension.info()['reason']}")
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            assert getattr(torch.ops.torch_fwdad, op)() == count
    finally:
        torch.set_num_threads(threads)
