// Batches for truncated backpropagation through time: the token sequence cut into `batch`
// contiguous streams of L = (n - 1) / batch tokens, read `time` steps at a time, so that row b of
// one batch continues row b of the batch before (a recurrent model carries its state across).
// After the last whole chunk the streams start over (the model should reset its state then:
// `at_start()`). The state is the chunk index, which a checkpoint stores.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/nn/layer.hpp"

namespace lmkit::train {

class stream_batches {
 public:
  stream_batches(std::span<const token_id> tokens, nn::batch_shape shape) : tokens_(tokens), shape_(shape) {
    require<argument_error>(shape.batch > 0 && shape.time > 0, "stream_batches: empty batch shape");
    stream_length_ = tokens.size() > 0 ? (tokens.size() - 1) / shape.batch : 0;
    chunks_ = stream_length_ / shape.time;
    require<argument_error>(chunks_ > 0, "stream_batches: ", tokens.size(), " tokens do not make ", shape.batch,
                            " streams of at least ", shape.time, " steps");
  }

  nn::batch_shape shape() const { return shape_; }
  std::uint64_t chunks() const { return chunks_; }
  /// Chunks handed out so far (the position a checkpoint stores).
  std::uint64_t position() const { return position_; }
  void set_position(std::uint64_t p) { position_ = p; }
  /// Whether the next batch starts the streams from their beginning.
  bool at_start() const { return position_ % chunks_ == 0; }

  void next(std::vector<token_id>& ids, std::vector<token_id>& targets) {
    ids.resize(shape_.rows());
    targets.resize(shape_.rows());
    const std::size_t chunk = static_cast<std::size_t>(position_++ % chunks_);
    for (std::size_t b = 0; b < shape_.batch; ++b) {
      const std::size_t start = b * stream_length_ + chunk * shape_.time;
      for (std::size_t t = 0; t < shape_.time; ++t) {
        ids[b * shape_.time + t] = tokens_[start + t];
        targets[b * shape_.time + t] = tokens_[start + t + 1];
      }
    }
  }

 private:
  std::span<const token_id> tokens_;
  nn::batch_shape shape_;
  std::size_t stream_length_ = 0;
  std::uint64_t chunks_ = 0;
  std::uint64_t position_ = 0;
};

}  // namespace lmkit::train
