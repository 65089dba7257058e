// Seeded random windows of a token stream, the way nanoGPT samples batches: for each row a start s
// uniform in [0, n - time - 1), inputs tokens[s, s + time), targets tokens[s + 1, s + time + 1).
// Its whole state is a philox position, which a checkpoint stores.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/nn/layer.hpp"

namespace lmkit::train {

class window_sampler {
 public:
  window_sampler(std::span<const token_id> tokens, nn::batch_shape shape, philox rng)
      : tokens_(tokens), shape_(shape), rng_(rng) {
    require<argument_error>(shape.batch > 0 && shape.time > 0, "window_sampler: empty batch shape (", shape.batch, " x ",
                            shape.time, ")");
    require<argument_error>(tokens.size() > shape.time + 1, "window_sampler: a stream of ", tokens.size(),
                            " tokens is too short for windows of ", shape.time, " (+1 for the targets)");
  }

  nn::batch_shape shape() const { return shape_; }
  const philox& rng() const { return rng_; }
  void set_rng(const philox& rng) { rng_ = rng; }

  /// Fills ids and targets (batch * time each, rows b * time + t) with the next batch.
  void next(std::vector<token_id>& ids, std::vector<token_id>& targets) {
    ids.resize(shape_.rows());
    targets.resize(shape_.rows());
    const std::size_t starts = tokens_.size() - shape_.time - 1;
    for (std::size_t b = 0; b < shape_.batch; ++b) {
      const auto s = static_cast<std::size_t>(rng_.uniform_double() * static_cast<double>(starts));
      for (std::size_t t = 0; t < shape_.time; ++t) {
        ids[b * shape_.time + t] = tokens_[s + t];
        targets[b * shape_.time + t] = tokens_[s + t + 1];
      }
    }
  }

 private:
  std::span<const token_id> tokens_;
  nn::batch_shape shape_;
  philox rng_;
};

}  // namespace lmkit::train
