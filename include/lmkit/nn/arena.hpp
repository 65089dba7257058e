// One block of memory for a model's activations and activation gradients, sized once per batch
// shape. Layers ask for their buffers in `reserve`; the arena runs every `reserve` twice: once to
// count, once to hand out spans of one allocation. No layer allocates during forward or backward.
#pragma once

#include <cstddef>
#include <span>

#include "lmkit/core/aligned_buffer.hpp"

namespace lmkit::nn {

class activation_arena {
 public:
  /// Calls `reserve_all(*this)` to count, allocates (only when the plan grew), then calls it again
  /// to hand out the buffers. Returns the number of floats in use.
  template <class ReserveAll>
  std::size_t plan(ReserveAll&& reserve_all) {
    counting_ = true;
    used_ = 0;
    reserve_all(*this);
    const std::size_t needed = used_;
    if (needed > storage_.size()) storage_ = aligned_buffer<float>(needed);
    counting_ = false;
    used_ = 0;
    reserve_all(*this);
    return used_;
  }

  /// A buffer of n floats, 64-byte aligned, zero the first time (callers must not rely on it after).
  /// While counting it is empty: layers only store what they are given.
  std::span<float> take(std::size_t n) {
    const std::size_t start = used_;
    used_ += (n + floats_per_line - 1) / floats_per_line * floats_per_line;
    if (counting_) return {};
    return {storage_.data() + start, n};
  }

  std::size_t capacity() const { return storage_.size(); }

 private:
  static constexpr std::size_t floats_per_line = buffer_alignment / sizeof(float);
  aligned_buffer<float> storage_;
  std::size_t used_ = 0;
  bool counting_ = false;
};

}  // namespace lmkit::nn
