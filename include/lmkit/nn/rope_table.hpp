// The cos / sin of rotary position embeddings (RoPE, Su et al. 2021) for positions 0 .. n - 1,
// computed once: rotating a head at position p is then a table lookup, not head_dim / 2 calls
// to cos and sin per token and layer.
#pragma once

#include <cstddef>
#include <span>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/kernels/kernels.hpp"

namespace lmkit::nn {

class rope_table {
 public:
  rope_table() = default;
  rope_table(std::size_t positions, std::size_t head_dim, double base)
      : positions_(positions), head_dim_(head_dim), base_(base), cos_(positions * (head_dim / 2)),
        sin_(positions * (head_dim / 2)) {
    for (std::size_t p = 0; p < positions; ++p)
      kernels::rope_angles(p, head_dim, base, {cos_.data() + p * half(), half()}, {sin_.data() + p * half(), half()});
  }

  std::size_t positions() const { return positions_; }
  std::size_t head_dim() const { return head_dim_; }
  double base() const { return base_; }

  std::span<const float> cos(std::size_t position) const { return {cos_.data() + checked(position) * half(), half()}; }
  std::span<const float> sin(std::size_t position) const { return {sin_.data() + checked(position) * half(), half()}; }

 private:
  std::size_t half() const { return head_dim_ / 2; }
  std::size_t checked(std::size_t position) const {
    require<argument_error>(position < positions_, "rope_table: position ", position, " is beyond the table's ",
                            positions_);
    return position;
  }

  std::size_t positions_ = 0, head_dim_ = 0;
  double base_ = 0.0;
  aligned_buffer<float> cos_, sin_;
};

}  // namespace lmkit::nn
