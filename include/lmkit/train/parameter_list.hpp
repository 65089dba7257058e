// The parameters of a model as a flat list of (name, parameter*), in the model's visiting order:
// what optimizers, clipping and checkpoints walk over.
#pragma once

#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/parameter.hpp"

namespace lmkit::train {

struct named_parameter {
  std::string name;
  nn::parameter* parameter;
};

class parameter_list {
 public:
  parameter_list() = default;
  template <class Model>
    requires requires(Model& m) { m.visit_parameters([](std::string_view, nn::parameter&) {}); }
  explicit parameter_list(Model& model) {
    model.visit_parameters([&](std::string_view name, nn::parameter& p) {
      for (const named_parameter& seen : items_)
        require<argument_error>(seen.name != name, "parameter_list: two parameters are named ", name);
      items_.push_back({std::string(name), &p});
    });
  }

  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  std::size_t size() const { return items_.size(); }
  const named_parameter& operator[](std::size_t i) const { return items_[i]; }

  std::size_t element_count() const {
    std::size_t n = 0;
    for (const named_parameter& p : items_) n += p.parameter->size();
    return n;
  }
  void zero_grad(const thread_pool& pool = serial_pool()) const {
    for (const named_parameter& p : items_) {
      const std::span<float> g = p.parameter->grad();
      pool.for_each_chunk(g.size(), 1 << 16, [&](std::size_t begin, std::size_t end) {
        std::fill(g.begin() + begin, g.begin() + end, 0.0f);
      });
    }
  }

 private:
  std::vector<named_parameter> items_;
};

/// The Euclidean norm of all gradients together: each parameter's sum of squares by the SIMD dot
/// kernel, the sums added in double in list order (deterministic).
inline double gradient_norm(const parameter_list& params) {
  double sum = 0.0;
  for (const named_parameter& p : params) sum += kernels::dot(p.parameter->grad(), p.parameter->grad());
  return std::sqrt(sum);
}

/// Scales all gradients so that their global norm is at most max_norm (PyTorch's
/// clip_grad_norm_: factor max_norm / (norm + 1e-6) when that is below 1). Returns the norm before.
inline double clip_gradient_norm(const parameter_list& params, double max_norm) {
  const double norm = gradient_norm(params);
  const double factor = max_norm / (norm + 1e-6);
  if (factor < 1.0) {
    const float f = static_cast<float>(factor);
    for (const named_parameter& p : params) kernels::scale(p.parameter->grad(), f, p.parameter->grad());
  }
  return norm;
}

}  // namespace lmkit::train
