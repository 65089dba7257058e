// A trainable tensor: its values, its gradient (same shape), and whether weight decay applies.
#pragma once

#include <cstddef>
#include <functional>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/extents.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/core/tensor.hpp"

namespace lmkit::nn {

using matrix = tensor_view<float, dims<2>>;
using const_matrix = tensor_view<const float, dims<2>>;

/// A row-major [rows x cols] view of a span (which must hold exactly that many floats).
inline matrix as_matrix(std::span<float> s, std::size_t rows, std::size_t cols) {
  return {s.data(), dims<2>(rows, cols)};
}
inline const_matrix as_matrix(std::span<const float> s, std::size_t rows, std::size_t cols) {
  return {s.data(), dims<2>(rows, cols)};
}

/// Whether AdamW's weight decay applies: matrices decay; norm gains, biases and (by choice of the
/// layer) positional tables need not.
enum class decay { yes, no };

class parameter {
 public:
  parameter() = default;
  parameter(std::vector<std::size_t> shape, decay d)
      : shape_(std::move(shape)),
        value_(element_count(shape_)),
        grad_(element_count(shape_)),
        decays_(d == decay::yes) {}

  std::span<float> value() { return {value_.data(), value_.size()}; }
  std::span<const float> value() const { return {value_.data(), value_.size()}; }
  std::span<float> grad() { return {grad_.data(), grad_.size()}; }
  std::span<const float> grad() const { return {grad_.data(), grad_.size()}; }
  const std::vector<std::size_t>& shape() const { return shape_; }
  std::size_t size() const { return value_.size(); }
  bool decays() const { return decays_; }

  /// The value as [rows x cols] (a rank-2 parameter) or [1 x n] (a rank-1 one).
  matrix value_matrix() { return as_matrix(value(), rows(), cols()); }
  const_matrix value_matrix() const { return as_matrix(value(), rows(), cols()); }
  matrix grad_matrix() { return as_matrix(grad(), rows(), cols()); }

  void fill(float v) { std::fill(value().begin(), value().end(), v); }
  /// Normal(0, stddev) values from `rng` (which moves on).
  void init_normal(philox& rng, float stddev) {
    for (float& v : value()) v = static_cast<float>(rng.normal() * stddev);
  }
  /// Uniform(-bound, bound) values.
  void init_uniform(philox& rng, float bound) {
    for (float& v : value()) v = (2.0f * rng.uniform() - 1.0f) * bound;
  }
  void zero_grad() { std::fill(grad().begin(), grad().end(), 0.0f); }

 private:
  static std::size_t element_count(const std::vector<std::size_t>& shape) {
    return std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>());
  }
  std::size_t rows() const { return shape_.size() == 2 ? shape_[0] : 1; }
  std::size_t cols() const { return shape_.size() == 2 ? shape_[1] : size(); }

  std::vector<std::size_t> shape_;
  aligned_buffer<float> value_, grad_;
  bool decays_ = true;
};

/// "prefix.name", or "name" when there is no prefix: Hugging Face-style dotted parameter paths.
inline std::string join_name(std::string_view prefix, std::string_view name) {
  std::string out(prefix);
  if (!out.empty() && !name.empty()) out += '.';
  out += name;
  return out;
}

}  // namespace lmkit::nn
