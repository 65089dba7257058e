// The keys and values a decoder has computed for the positions of one sequence so far, per layer,
// so that each new token attends to them without recomputing them. Sized once from the context the
// caller asks for (not the model's maximum, which may be far larger); a token beyond it is an error
// that says so, never a write past the end.
#pragma once

#include <cstddef>
#include <span>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/error.hpp"

namespace lmkit::gen {

class kv_cache {
 public:
  kv_cache() = default;
  /// `width` = key/value heads x head_dim.
  kv_cache(std::size_t layers, std::size_t context, std::size_t width)
      : layers_(layers), context_(context), width_(width), keys_(layers * context * width),
        values_(layers * context * width) {}

  std::size_t layers() const { return layers_; }
  std::size_t context() const { return context_; }
  std::size_t width() const { return width_; }
  /// Positions filled so far.
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return 2 * keys_.size() * sizeof(float); }

  /// Refuses `count` more positions when they do not fit.
  void check_room(std::size_t count) const {
    if (size_ + count > context_)
      throw argument_error(lmkit::detail::concat("kv_cache: the context is full: ", size_, " positions held + ", count,
                                          " new > ", context_, " (ask for a longer context, up to the model's)"));
  }

  /// Key and value rows [width] of `layer` at `position`.
  std::span<float> key(std::size_t layer, std::size_t position) { return {keys_.data() + offset(layer, position), width_}; }
  std::span<float> value(std::size_t layer, std::size_t position) {
    return {values_.data() + offset(layer, position), width_};
  }
  /// Every key (value) of a layer, position-major: [context, width].
  const float* keys(std::size_t layer) const { return keys_.data() + offset(layer, 0); }
  const float* values(std::size_t layer) const { return values_.data() + offset(layer, 0); }

  /// Marks `count` more positions as filled (after every layer has written them).
  void advance(std::size_t count) {
    check_room(count);
    size_ += count;
  }
  /// Forgets the positions from `size` on (a rejected draft, a shortened conversation).
  void truncate(std::size_t size) {
    require<argument_error>(size <= size_, "kv_cache: cannot truncate ", size_, " positions to ", size);
    size_ = size;
  }
  void clear() { size_ = 0; }

 private:
  std::size_t offset(std::size_t layer, std::size_t position) const { return (layer * context_ + position) * width_; }

  std::size_t layers_ = 0, context_ = 0, width_ = 0, size_ = 0;
  aligned_buffer<float> keys_, values_;
};

}  // namespace lmkit::gen
