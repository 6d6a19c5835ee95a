"""Builds torch_fwdad's optional C++ kernels; all other metadata lives in pyproject.toml.

torch_fwdad/engine/_fast_path.cpp answers "no argument carries a tangent" without entering
Python (engine/fast_path.py). It is optional: where torch's C++ extension tooling or a
compiler is missing, or the build fails, the install goes on without it and the
pure-Python kernels run (`torch_fwdad.engine_info()` says which path is active).
"""

import os

from setuptools import setup

FAST_PATH = "torch_fwdad.engine._fast_path"
# attention's values-only tile loop (formulas/attention_tiles.py), optional in the same way
ATTENTION_TILES = "torch_fwdad.formulas._attention_tiles"
# grid_sample's values-only tangent in one pass (formulas/grid_sample_tangent.py), optional too
GRID_SAMPLE_TANGENT = "torch_fwdad.formulas._grid_sample_tangent"
# what those two share (the Python module init, the parallel-region thread count); listed as
# their dependency so that a change rebuilds them and the source distribution carries it
FORMULAS_HEADER = "torch_fwdad/formulas/_extension_module.h"


def fast_path_build() -> dict:
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:  # no torch where this builds: the pure-Python kernels are used
        return {}

    class OptionalBuild(BuildExtension):
        """Builds each extension if it can; a failure drops that one instead of failing the install."""

        def build_extensions(self):
            self.failed = []
            # the extensions compile at once, one per core (setuptools' thread pool): each takes
            # 20-40 s alone. Set here, as pip's editable builds pass no build_ext options.
            self.parallel = os.cpu_count() or 1
            try:
                super().build_extensions()
            except Exception as error:  # no compiler, missing headers, ... (any reason)
                print(f"torch_fwdad: C++ kernels not built, the pure-Python kernels will be used: {error}")
                self.failed = list(self.extensions)
            # nothing to copy into the source tree for editable installs
            self.extensions = [extension for extension in self.extensions if extension not in self.failed]

        def build_extension(self, extension):
            try:
                super().build_extension(extension)
            except Exception as error:
                print(f"torch_fwdad: {extension.name} not built, its pure-Python fallback will be used: {error}")
                self.failed.append(extension)

        def get_outputs(self):
            return [] if not self.extensions else super().get_outputs()

    extensions = [CppExtension(FAST_PATH, ["torch_fwdad/engine/_fast_path.cpp"], extra_compile_args=["-O2", "-g0"]),
                  # -fopenmp: at::parallel_for is a header template that runs its body on one thread
                  # unless the including file is compiled with OpenMP; libgomp then resolves to the
                  # copy torch has already loaded (same soname)
                  CppExtension(ATTENTION_TILES, ["torch_fwdad/formulas/_attention_tiles.cpp"],
                               depends=[FORMULAS_HEADER],
                               extra_compile_args=["-O2", "-g0", "-fopenmp"], extra_link_args=["-fopenmp"]),
                  CppExtension(GRID_SAMPLE_TANGENT, ["torch_fwdad/formulas/_grid_sample_tangent.cpp"],
                               depends=[FORMULAS_HEADER],
                               extra_compile_args=["-O2", "-g0", "-fopenmp"], extra_link_args=["-fopenmp"])]
    return {"ext_modules": extensions, "cmdclass": {"build_ext": OptionalBuild.with_options(use_ninja=False)}}


setup(**fast_path_build())
