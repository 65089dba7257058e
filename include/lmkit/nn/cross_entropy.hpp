// Softmax and cross-entropy in one step: the mean over rows of -log softmax(logits)[target].
// The forward keeps the probabilities (in a buffer of its own, or over the logits it was given); the
// backward turns them into (p - onehot(target)) / rows, in place, without a separate softmax gradient.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

#include "lmkit/core/error.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/layer.hpp"

namespace lmkit::nn {

class softmax_cross_entropy {
 public:
  explicit softmax_cross_entropy(std::size_t vocab = 0) : vocab_(vocab) {}

  void reserve(activation_arena& arena, batch_shape shape, std::size_t vocab) {
    reserve_in_place(arena, shape, vocab);
    in_place_ = false;
    probs_ = arena.take(rows_ * vocab_);
  }

  /// For forward_in_place only: no room of its own for the probabilities.
  void reserve_in_place(activation_arena& arena, batch_shape shape, std::size_t vocab) {
    vocab_ = vocab;
    rows_ = shape.rows();
    in_place_ = true;
    probs_ = {};
    losses_ = arena.take(rows_);
  }

  /// Mean cross-entropy (natural log) of `targets` under softmax(logits).
  float forward(const_matrix logits, std::span<const token_id> targets, const run_context& ctx) {
    require<argument_error>(!in_place_, "softmax_cross_entropy: reserved for forward_in_place, not forward");
    return run(logits, targets, ctx);
  }

  /// As forward, with the probabilities written over `logits`, which backward then turns into the
  /// gradient: one [rows x vocab] buffer fewer (196 MiB for GPT-2 small at 4 x 256 tokens).
  float forward_in_place(matrix logits, std::span<const token_id> targets, const run_context& ctx) {
    require<argument_error>(in_place_, "softmax_cross_entropy: reserved for forward, not forward_in_place");
    probs_ = logits.span();
    return run(logits, targets, ctx);
  }

  /// The gradient of (dloss * mean loss) with respect to the logits. Overwrites the probabilities.
  const_matrix backward(const run_context& ctx, float dloss = 1.0f) {
    const float scale = dloss / static_cast<float>(rows_);
    ctx.pool->for_each_chunk(rows_, detail::rows_per_task, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        std::span<float> p = probs_.subspan(r * vocab_, vocab_);
        p[targets_[r]] -= 1.0f;
        kernels::scale(p, scale, p);
      }
    });
    return as_matrix(std::span<const float>(probs_), rows_, vocab_);
  }

  /// Each row's loss from the last forward (for per-token scores).
  std::span<const float> row_losses() const { return losses_; }

 private:
  float run(const_matrix logits, std::span<const token_id> targets, const run_context& ctx) {
    require<shape_error>(logits.extent(0) == rows_ && logits.extent(1) == vocab_, "softmax_cross_entropy: logits are [",
                         logits.extent(0), " x ", logits.extent(1), "], expected [", rows_, " x ", vocab_, "]");
    require<shape_error>(targets.size() == rows_, "softmax_cross_entropy: ", targets.size(), " targets for ", rows_,
                         " rows");
    targets_ = targets;
    ctx.pool->for_each_chunk(rows_, detail::rows_per_task, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        require<argument_error>(targets[r] < vocab_, "softmax_cross_entropy: target ", targets[r], " at row ", r,
                                " is outside the vocabulary of ", vocab_);
        std::span<float> p = probs_.subspan(r * vocab_, vocab_);
        kernels::log_softmax(logits[r].span(), p);  // p may be the row itself
        losses_[r] = -p[targets[r]];
        for (float& v : p) v = std::exp(v);
      }
    });
    double sum = 0.0;  // in row order: the same bits for any thread count
    for (float l : losses_) sum += l;
    return static_cast<float>(sum / static_cast<double>(rows_));
  }

  std::size_t vocab_ = 0, rows_ = 0;
  bool in_place_ = false;  // reserved by reserve_in_place: the probabilities go over the logits
  std::span<float> probs_, losses_;
  std::span<const token_id> targets_;
};

}  // namespace lmkit::nn
