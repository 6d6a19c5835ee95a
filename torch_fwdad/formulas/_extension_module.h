// What the optional C++ extensions beside it share (_attention_tiles.cpp,
// _grid_sample_tangent.cpp; setup.py lists this header in their depends).
#pragma once

#include <Python.h>

#include <ATen/Parallel.h>
#include <torch/headeronly/version.h>

#include <atomic>
#include <cstdint>

namespace torch_fwdad {

// How many threads one at::parallel_for region of the including file runs on.
// at::parallel_for is a header template: compiled without OpenMP it runs its body on the
// calling thread alone, so this tells whether the build made the file's loops parallel
// (setup.py passes -fopenmp; tests/test_parallel_regions.py checks it).
inline int64_t parallel_region_threads() {
  std::atomic<int64_t> threads{0};
  at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) { ++threads; });
  return threads;
}

// A Python module only to be found and imported like any other (the ops live in torch.ops),
// carrying the torch release it was built against as TORCH_VERSION (engine/extension.py
// refuses a module built for another release).
inline PyObject* create_extension_module(PyModuleDef* definition) {
  PyObject* module = PyModule_Create(definition);
  if (module == nullptr) {
    return nullptr;
  }
  PyObject* version = Py_BuildValue("(iii)", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
  if (version == nullptr || PyModule_AddObject(module, "TORCH_VERSION", version) < 0) {
    Py_XDECREF(version);
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}

}  // namespace torch_fwdad
