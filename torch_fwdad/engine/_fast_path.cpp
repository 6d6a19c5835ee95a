// The no-tangent test of torch_fwdad's Autograd kernels, in C++ (engine/fast_path.py loads it).
//
// For each overload with a forward rule, engine/registry.py installs its Python kernel on the
// Autograd alias key (engine/kernel.py), then this kernel above it. Per call this kernel looks at
// every tensor argument's autograd metadata for a forward grad at any level, without building
// the view that Python's only query (`_unpack_dual`) builds. With none, it calls the Autograd
// kernel that was there before torch_fwdad, boxed, without touching Python. Otherwise (a
// tangent, a nested tensor whose tangent engine/nested.py keeps in Python, or a backward that
// engine/forward_over_reverse.py is recovering tangents for) it calls the Python kernel beneath
// it through the dispatcher's own Python-kernel holder, which acquires the GIL and converts the
// arguments exactly as for any torch.library Python kernel.
#include <Python.h>
#include <pybind11/pybind11.h>

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/forward_grad.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/headeronly/version.h>
#include <torch/library.h>

#include <atomic>
#include <memory>
#include <string>

namespace py = pybind11;

namespace {

// Number of backwards engine/forward_over_reverse.py recovers output tangents for, in any
// thread: while positive, every call goes to Python, whose test is per thread.
std::atomic<int64_t> recovering{0};

// Python's translator of upstream errors into torch_fwdad's messages (kernel.py): called
// with (operator name, message); it raises a clearer error or returns. Set once, never freed
// (a kernel may outlive the interpreter's teardown).
PyObject* error_translator = nullptr;

bool has_forward_grad(const at::Tensor& tensor) {
  auto* meta = torch::autograd::impl::get_autograd_meta(tensor);
  if (meta == nullptr) {
    return false;
  }
  if (meta->fw_grad_ && !meta->fw_grad_->empty()) {
    return true;
  }
  // A view without a forward grad of its own shows its base's (AutogradMeta::fw_grad).
  if (meta->is_view_) {
    auto* view = static_cast<torch::autograd::DifferentiableViewMeta*>(meta);
    if (view->has_fw_view()) {
      return has_forward_grad(view->get_forward_view().base_);
    }
  }
  return false;
}

bool python_must_judge(const at::Tensor& tensor) {
  return tensor.defined() && (tensor.is_nested() || has_forward_grad(tensor));
}

bool python_must_judge(const c10::IValue& value) {
  if (value.isTensor()) {
    return python_must_judge(value.toTensor());
  }
  if (value.isList()) {  // Tensor[] and Tensor?[]
    for (const auto& element : value.toListRef()) {
      if (element.isTensor() && python_must_judge(element.toTensor())) {
        return true;
      }
    }
  }
  return false;
}

class FastPathKernel final : public c10::OperatorKernel {
 public:
  FastPathKernel(c10::SafeKernelFunction upstream, c10::SafeKernelFunction python_kernel)
      : upstream_(std::move(upstream)), python_kernel_(std::move(python_kernel)) {}

  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet keyset, torch::jit::Stack* stack) {
    if (needs_python(op, *stack)) {
      python_kernel_.callBoxed(op, keyset, stack);
      return;
    }
    try {
      upstream_.callBoxed(op, keyset, stack);
    } catch (const c10::Error& error) {
      translate(op, error);
      throw;
    }
  }

 private:
  static bool needs_python(const c10::OperatorHandle& op, const torch::jit::Stack& stack) {
    if (recovering.load(std::memory_order_relaxed) > 0) {
      return true;
    }
    const auto count = op.schema().arguments().size();
    for (const auto& value : torch::jit::last(stack, count)) {
      if (python_must_judge(value)) {
        return true;
      }
    }
    return false;
  }

  static void translate(const c10::OperatorHandle& op, const c10::Error& error) {
    if (error_translator == nullptr) {
      return;
    }
    py::gil_scoped_acquire gil;
    const auto& name = op.operator_name();
    std::string qualified = name.overload_name.empty() ? name.name : name.name + "." + name.overload_name;
    py::reinterpret_borrow<py::object>(error_translator)(qualified, error.what_without_backtrace());
  }

  c10::SafeKernelFunction upstream_;
  c10::SafeKernelFunction python_kernel_;
};

// Ignores PyTorch's "Overriding a previously registered kernel" for our registrations only.
class QuietOverride final : public c10::WarningHandler {
 public:
  explicit QuietOverride(c10::WarningHandler* previous) : previous_(previous) {}
  void process(const c10::Warning& warning) override {
    if (warning.msg().find("Overriding a previously registered kernel") == std::string::npos) {
      previous_->process(warning);
    }
  }

 private:
  c10::WarningHandler* previous_;
};

c10::OperatorHandle find_op(const std::string& name, const std::string& overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name.c_str(), overload.c_str());
}

// The kernel the dispatcher runs now for `name.overload` on Autograd (read at AutogradCPU,
// where an Autograd-alias kernel shows up, as torch.library.get_kernel does).
struct CapturedKernel {
  c10::SafeKernelFunction kernel;
};

CapturedKernel capture(const std::string& name, const std::string& overload) {
  return CapturedKernel{find_op(name, overload).getComputedKernelForDispatchKey(c10::DispatchKey::AutogradCPU)};
}

// One installed kernel; destroying it restores the kernel beneath (the Python one).
struct Installed {
  std::unique_ptr<torch::Library> library;
  void destroy() { library.reset(); }
};

std::atomic<uint32_t> registrations{0};

std::unique_ptr<Installed> install(const std::string& ns, const std::string& name, const std::string& overload,
                                   const CapturedKernel& upstream) {
  auto op = find_op(ns + "::" + name, overload);
  auto python_kernel = op.getComputedKernelForDispatchKey(c10::DispatchKey::AutogradCPU);
  // a distinct line per registration gives each kernel its own debug string (registry.py
  // compares it to tell whether another library installed a kernel above ours)
  auto line = ++registrations;
  auto library = std::make_unique<torch::Library>(torch::Library::IMPL, ns, std::nullopt, "torch_fwdad/engine/_fast_path.cpp", line);
  QuietOverride quiet(c10::WarningUtils::get_warning_handler());
  c10::WarningUtils::WarningHandlerGuard guard(&quiet);
  const std::string qualified = overload.empty() ? name : name + "." + overload;
  library->impl(
      qualified.c_str(),
      torch::dispatch(
          c10::DispatchKey::Autograd,
          torch::CppFunction::makeFromBoxedFunctor(std::make_unique<FastPathKernel>(upstream.kernel, python_kernel))));
  return std::make_unique<Installed>(Installed{std::move(library)});
}

}  // namespace

PYBIND11_MODULE(_fast_path, m) {
  m.doc() = "torch_fwdad's no-tangent test in C++ (see engine/fast_path.py)";
  // torch's C++ ABI is not stable across releases: fast_path.py loads this only under the same one
  m.attr("TORCH_VERSION") = py::make_tuple(TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
  py::class_<CapturedKernel>(m, "CapturedKernel");
  py::class_<Installed>(m, "Installed").def("destroy", &Installed::destroy);
  m.def("capture", &capture, "the Autograd kernel of an overload now", py::arg("name"), py::arg("overload"));
  m.def("install", &install, "install the C++ fast path above the Python kernel now on Autograd",
        py::arg("namespace"), py::arg("name"), py::arg("overload"), py::arg("upstream"));
  m.def("set_error_translator", [](py::object translator) {
    Py_XINCREF(translator.ptr());
    error_translator = translator.ptr();
  });
  m.def("enter_recovery", []() { ++recovering; });
  m.def("exit_recovery", []() { --recovering; });
}
