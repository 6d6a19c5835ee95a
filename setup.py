"""Builds torch_fwdad's optional C++ kernel; all other metadata lives in pyproject.toml.

torch_fwdad/engine/_fast_path.cpp answers "no argument carries a tangent" without entering
Python (engine/fast_path.py). It is optional: where torch's C++ extension tooling or a
compiler is missing, or the build fails, the install goes on without it and the
pure-Python kernels run (`torch_fwdad.engine_info()` says which path is active).
"""

from setuptools import setup

FAST_PATH = "torch_fwdad.engine._fast_path"


def fast_path_build() -> dict:
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:  # no torch where this builds: the pure-Python kernels are used
        return {}

    class OptionalBuild(BuildExtension):
        """Builds the extension if it can; a failure drops it instead of failing the install."""

        def build_extensions(self):
            try:
                super().build_extensions()
            except Exception as error:  # no compiler, missing headers, ... (any reason)
                print(f"torch_fwdad: C++ kernel not built, the pure-Python kernels will be used: {error}")
                self.extensions = []  # nothing to copy into the source tree for editable installs

        def get_outputs(self):
            return [] if not self.extensions else super().get_outputs()

    extension = CppExtension(FAST_PATH, ["torch_fwdad/engine/_fast_path.cpp"], extra_compile_args=["-O2", "-g0"])
    return {"ext_modules": [extension], "cmdclass": {"build_ext": OptionalBuild.with_options(use_ninja=False)}}


setup(**fast_path_build())
