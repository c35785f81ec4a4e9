// oneDNN's inner product on dense tensors, `mkldnn::_linear_pointwise` (the op TorchInductor emits for CPU
// linears), which tch does not bind. Called from models/src/arch/onednn.rs; errors come back as a message
// (allocated with strdup, freed by the caller) instead of an exception crossing into Rust.
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstring>
#include <exception>
#include <optional>
#include <string_view>

namespace {

using LinearPointwise = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                   std::string_view, c10::List<std::optional<at::Scalar>>,
                                   std::optional<std::string_view>);

const c10::TypedOperatorHandle<LinearPointwise>& linear_pointwise() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
                             .typed<LinearPointwise>();
  return op;
}

}  // namespace

// `x W^T + b` for `x` [rows, in], `weight` [out, in], `bias` [out] or null. On success stores a new tensor in
// `*out` and returns null; on failure returns the error message.
extern "C" char* workbench_onednn_linear(const at::Tensor* x, const at::Tensor* weight, const at::Tensor* bias,
                                         at::Tensor** out) {
  try {
    std::optional<at::Tensor> b;
    if (bias != nullptr) b = *bias;
    const c10::List<std::optional<at::Scalar>> no_scalars;
    *out = new at::Tensor(linear_pointwise().call(*x, *weight, b, "none", no_scalars, std::nullopt));
    return nullptr;
  } catch (const std::exception& e) {
    return strdup(e.what());
  } catch (...) {
    return strdup("unknown C++ exception");
  }
}
