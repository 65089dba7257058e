// Stochastic gradient descent with optional momentum and L2 weight decay, as torch.optim.SGD:
//   g += wd p;  buf = momentum buf + g (buf = g on the first step);  p -= lr buf
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/train/parameter_list.hpp"

namespace lmkit::train {

struct sgd_options {
  float lr = 0.1f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;
};

class sgd {
 public:
  sgd(parameter_list params, sgd_options options) : params_(std::move(params)), options_(options) {
    require<argument_error>(std::isfinite(options.lr) && options.lr >= 0.0f, "sgd: learning rate ", options.lr,
                            " is not a finite number >= 0");
    require<argument_error>(std::isfinite(options.momentum) && options.momentum >= 0.0f, "sgd: momentum ",
                            options.momentum, " is not a finite number >= 0");
    require<argument_error>(std::isfinite(options.weight_decay) && options.weight_decay >= 0.0f, "sgd: weight decay ",
                            options.weight_decay, " is not a finite number >= 0");
    if (options_.momentum != 0.0f)
      for (const named_parameter& p : params_) velocity_.emplace_back(p.parameter->size());
  }

  const parameter_list& parameters() const { return params_; }
  std::uint64_t steps() const { return step_; }
  void set_steps(std::uint64_t n) { step_ = n; }
  std::span<float> momentum_buffer(std::size_t i) { return {velocity_[i].data(), velocity_[i].size()}; }
  bool has_momentum() const { return !velocity_.empty(); }

  void zero_grad(const thread_pool& pool = serial_pool()) { params_.zero_grad(pool); }

  /// The optimizer's state as named tensors: visit(name, values, parameter).
  template <class Visitor>
  void visit_state(Visitor&& visit) {
    if (has_momentum())
      for (std::size_t i = 0; i < params_.size(); ++i) visit("optimizer.momentum_buffer." + params_[i].name, momentum_buffer(i), *params_[i].parameter);
  }

  void step(float lr, const thread_pool& = serial_pool()) {
    require<argument_error>(std::isfinite(lr) && lr >= 0.0f, "sgd: step ", step_ + 1, " has learning rate ", lr,
                            ", not a finite number >= 0");
    for (std::size_t i = 0; i < params_.size(); ++i) {
      nn::parameter& p = *params_[i].parameter;
      const float wd = p.decays() ? options_.weight_decay : 0.0f;
      float* w = p.value().data();
      const float* g = p.grad().data();
      for (std::size_t j = 0; j < p.size(); ++j) {
        float d = g[j] + wd * w[j];
        if (has_momentum()) {
          float& buf = velocity_[i].data()[j];
          buf = step_ == 0 ? d : options_.momentum * buf + d;
          d = buf;
        }
        w[j] -= lr * d;
      }
    }
    ++step_;
  }
  void step() { step(options_.lr); }

 private:
  parameter_list params_;
  sgd_options options_;
  std::vector<aligned_buffer<float>> velocity_;
  std::uint64_t step_ = 0;
};

}  // namespace lmkit::train
