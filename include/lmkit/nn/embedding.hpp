// Token embedding: row `id` of a [vocab, width] table per input id.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>

#include "lmkit/core/error.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/layer.hpp"
#include "lmkit/nn/linear.hpp"

namespace lmkit::nn {

template <std::size_t Vocab = dynamic, std::size_t Width = dynamic>
class embedding {
 public:
  static constexpr std::size_t out_width = Width;

  embedding() requires(Vocab != dynamic && Width != dynamic) : embedding(Vocab, Width) {}
  embedding(std::size_t vocab, std::size_t width)
      : vocab_(detail::checked_width(Vocab, vocab, "embedding", "vocabulary size")),
        width_(detail::checked_width(Width, width, "embedding", "width")),
        table_({vocab, width}, decay::yes) {}

  std::size_t vocab_size() const { return vocab_; }
  std::size_t out_features() const { return width_; }
  parameter& weight() { return table_; }
  const parameter& weight() const { return table_; }

  void reserve(activation_arena& arena, batch_shape shape) {
    rows_ = shape.rows();
    y_ = arena.take(rows_ * width_);
  }

  /// ids [rows] -> y [rows, width]
  const_matrix forward(std::span<const token_id> ids, const run_context&) {
    require<shape_error>(ids.size() == rows_, "embedding: ", ids.size(), " ids for a batch of ", rows_, " positions");
    ids_ = ids;
    const float* table = table_.value().data();
    for (std::size_t r = 0; r < rows_; ++r) {
      require<argument_error>(ids[r] < vocab_, "embedding: token id ", ids[r], " at position ", r,
                              " is outside the vocabulary of ", vocab_);
      std::memcpy(y_.data() + r * width_, table + std::size_t{ids[r]} * width_, width_ * sizeof(float));
    }
    return as_matrix(std::span<const float>(y_), rows_, width_);
  }

  /// dtable[id] += dy row, in row order (so a repeated id sums in the same order on any thread count).
  void backward(const_matrix dy, const run_context&) {
    float* grad = table_.grad().data();
    for (std::size_t r = 0; r < rows_; ++r) {
      std::span<float> row(grad + std::size_t{ids_[r]} * width_, width_);
      kernels::add(dy[r].span(), row, row);
    }
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    visit(join_name(prefix, "weight"), table_);
  }

 private:
  std::size_t vocab_, width_;
  parameter table_;
  std::size_t rows_ = 0;
  std::span<float> y_;
  std::span<const token_id> ids_;
};

/// Learned absolute positions (GPT-2): y[b, t] = x[b, t] + P[t], for t below the context length.
template <std::size_t Context = dynamic, std::size_t Width = dynamic>
class positional_embedding {
 public:
  static constexpr std::size_t in_width = Width;
  static constexpr std::size_t out_width = Width;

  positional_embedding() requires(Context != dynamic && Width != dynamic) : positional_embedding(Context, Width) {}
  positional_embedding(std::size_t context, std::size_t width)
      : context_(detail::checked_width(Context, context, "positional_embedding", "context")),
        width_(detail::checked_width(Width, width, "positional_embedding", "width")),
        table_({context, width}, decay::yes) {}

  std::size_t in_features() const { return width_; }
  std::size_t out_features() const { return width_; }
  std::size_t context() const { return context_; }
  parameter& weight() { return table_; }
  const parameter& weight() const { return table_; }

  void reserve(activation_arena& arena, batch_shape shape) {
    require<argument_error>(shape.time <= context_, "positional_embedding: ", shape.time,
                            " positions do not fit the context of ", context_);
    shape_ = shape;
    y_ = arena.take(shape.rows() * width_);
  }

  const_matrix forward(const_matrix x, const run_context& ctx) {
    require<shape_error>(x.extent(0) == shape_.rows() && x.extent(1) == width_, "positional_embedding: input is [",
                         x.extent(0), " x ", x.extent(1), "], expected [", shape_.rows(), " x ", width_, "]");
    const matrix y = as_matrix(y_, shape_.rows(), width_);
    const const_matrix table = table_.value_matrix();
    ctx.pool->for_each_chunk(shape_.rows(), detail::rows_per_task, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) kernels::add(x[r].span(), table[r % shape_.time].span(), y[r].span());
    });
    return y;
  }

  /// dx = dy (returned as is); dP[t] += sum over the batch of dy[b, t].
  const_matrix backward(const_matrix dy, const run_context& ctx) {
    const matrix grad = table_.grad_matrix();
    // Position t's row sums over the batch in batch order, whichever thread takes it.
    ctx.pool->for_each_chunk(shape_.time, 8, [&](std::size_t begin, std::size_t end) {
      for (std::size_t t = begin; t < end; ++t)
        for (std::size_t b = 0; b < shape_.batch; ++b) kernels::add(dy[b * shape_.time + t].span(), grad[t].span(), grad[t].span());
    });
    return dy;
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    visit(join_name(prefix, "weight"), table_);
  }

 private:
  std::size_t context_, width_;
  parameter table_;
  batch_shape shape_;
  std::span<float> y_;
};

}  // namespace lmkit::nn
