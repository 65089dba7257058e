// The machinery shared by the recurrent layers (lstm.hpp, rnn.hpp): a stack of `layers` recurrent
// layers over batches of sequences, with PyTorch's parameter layout and names (nn.LSTM / nn.RNN,
// batch_first=True), trained by backpropagation through time within the batch. What happens inside
// one step is the `Cell`'s business: the LSTM's four gates, or the Elman network's one tanh.
//
// Shapes, per batch of B sequences of T steps (rows b * T + t, as in every layer), hidden width H,
// G = Cell::gates gate blocks of H, layer input width I (the input width for layer 0, H above):
//   forward:  pre (B*T, G H) = x W_ih^T              one GEMM over all rows
//             for t: pre[:, t] += h_{t-1} W_hh^T      one GEMM per step, rows b * T + t (stride T G H)
//                    (gates, c_t, h_t) = cell(pre[:, t] + b_ih + b_hh, c_{t-1})
//   backward: for t = T-1 .. 0: dpre[:, t] = cell'(dy[:, t] + dh_t, dc_t);  dh_{t-1} = dpre[:, t] W_hh
//             dW_hh += dpre^T h_prev, dW_ih += dpre^T x, db += column sums of dpre, dx = dpre W_ih
//             (one GEMM each over all rows)
// The gate buffer is reused in place: pre-activations, then activations, then their gradients.
//
// Carried state (truncated BPTT): the final (h, c) of each layer is kept after every forward; with
// carry_state(true) the next forward starts from it instead of from zero. The state is a constant
// to that forward (no gradient flows back into the earlier batch), as PyTorch's h.detach() makes it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/layer.hpp"

namespace lmkit::nn {

namespace detail {
/// Batch rows per parallel task in the per-step cell math: a few thousand floats of work each, in
/// a fixed split (so results do not depend on the thread count).
inline std::size_t cell_rows_per_task(std::size_t hidden) { return std::max<std::size_t>(1, 2048 / std::max<std::size_t>(hidden, 1)); }

inline kernels::matrix_operand f32_operand(const float* data, std::size_t stride, bool transposed = false) {
  return {data, dtype::f32, stride, transposed};
}
}  // namespace detail

/// A multi-layer recurrent network whose step is `Cell`: a type with
///   static constexpr std::size_t gates;        gate blocks of H in the weights (LSTM 4, Elman 1)
///   static constexpr bool has_cell_state;      whether a second state c runs beside h (LSTM)
///   static constexpr const char* name;          for messages
///   static void forward(gates, bias, c_prev, c, h, H)     one row: pre-activations [G H] (without the
///                                                          biases) -> activations, in place; c_t, h_t
///   static void backward(gates, c_prev, c, dy, dh, dc, H) one row: activations -> gradients of the
///                                                          pre-activations, in place; dh = dL/dh_t from
///                                                          step t+1 (dy is the part from above); dc in/out
template <class Cell, std::size_t In = dynamic, std::size_t Hidden = dynamic>
class recurrent {
 public:
  static constexpr std::size_t in_width = In;
  static constexpr std::size_t out_width = Hidden;

  recurrent() requires(In != dynamic && Hidden != dynamic) : recurrent(In, Hidden) {}
  recurrent(std::size_t in, std::size_t hidden, std::size_t layers = 1, bias b = bias::yes)
      : in_(detail::checked_width(In, in, Cell::name, "input width")),
        hidden_(detail::checked_width(Hidden, hidden, Cell::name, "hidden width")),
        has_bias_(b == bias::yes) {
    require<argument_error>(in > 0 && hidden > 0 && layers > 0, Cell::name, ": input width, hidden width and layers must be positive");
    const std::size_t g = Cell::gates * hidden;
    layers_.reserve(layers);
    for (std::size_t l = 0; l < layers; ++l) {
      layer_state& s = layers_.emplace_back();
      s.weight_ih = parameter({g, layer_input(l)}, decay::yes);
      s.weight_hh = parameter({g, hidden}, decay::yes);
      if (has_bias_) {
        s.bias_ih = parameter({g}, decay::no);
        s.bias_hh = parameter({g}, decay::no);
      }
    }
  }

  std::size_t in_features() const { return in_; }
  std::size_t out_features() const { return hidden_; }
  std::size_t hidden_size() const { return hidden_; }
  std::size_t layers() const { return layers_.size(); }
  bool has_bias() const { return has_bias_; }
  parameter& weight_ih(std::size_t l) { return layers_.at(l).weight_ih; }
  parameter& weight_hh(std::size_t l) { return layers_.at(l).weight_hh; }
  parameter& bias_ih(std::size_t l) { return layers_.at(l).bias_ih; }
  parameter& bias_hh(std::size_t l) { return layers_.at(l).bias_hh; }

  /// Every weight and bias uniform(-bound, bound); PyTorch's default bound is 1 / sqrt(hidden).
  void init_uniform(philox& rng, float bound) {
    visit_parameters([&](std::string_view, parameter& p) { p.init_uniform(rng, bound); }, "");
  }

  // ---- carried state --------------------------------------------------------------------

  /// With `true`, each forward starts from the final state of the one before (consecutive batches
  /// continue the same B sequences); with `false` (the default), from zero.
  void carry_state(bool carry) { carry_ = carry; }
  bool carries_state() const { return carry_; }
  /// Zeroes the carried state (the sequences start afresh); sized for `batch` sequences when given.
  void reset_state() {
    for (layer_state& s : layers_) {
      std::fill(s.final_h.data(), s.final_h.data() + s.final_h.size(), 0.0f);
      std::fill(s.final_c.data(), s.final_c.data() + s.final_c.size(), 0.0f);
    }
  }
  void reset_state(std::size_t batch) {
    state_batch_ = batch;
    for (layer_state& s : layers_) {
      s.final_h = aligned_buffer<float>(batch * hidden_);
      if (Cell::has_cell_state) s.final_c = aligned_buffer<float>(batch * hidden_);
    }
  }
  /// The number of sequences the state holds (the batch of the last reserve or reset_state(batch)).
  std::size_t state_batch() const { return state_batch_; }

  /// The carried state as named [batch x hidden] matrices, "state.h_l0" (and "state.c_l0" for a
  /// cell state) per layer, in PyTorch's (h_n, c_n) order: for checkpoints, not parameters.
  template <class Visitor>
  void visit_state(Visitor&& visit, std::string_view prefix) {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      layer_state& s = layers_[l];
      visit(join_name(prefix, "state.h_l" + std::to_string(l)), as_matrix(std::span<float>(s.final_h.data(), s.final_h.size()), state_batch_, hidden_));
      if constexpr (Cell::has_cell_state)
        visit(join_name(prefix, "state.c_l" + std::to_string(l)),
              as_matrix(std::span<float>(s.final_c.data(), s.final_c.size()), state_batch_, hidden_));
    }
  }

  // ---- the layer ------------------------------------------------------------------------

  /// Takes the buffers for this batch shape. A batch of another size than the state's resets
  /// (and resizes) the carried state.
  void reserve(activation_arena& arena, batch_shape shape) {
    shape_ = shape;
    if (shape.batch != state_batch_) reset_state(shape.batch);
    const std::size_t rows = shape.rows(), g = Cell::gates * hidden_, batch = shape.batch;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      layer_state& s = layers_[l];
      s.gates = arena.take(rows * g);
      s.cell = Cell::has_cell_state ? arena.take(rows * hidden_) : std::span<float>{};
      s.y = arena.take(rows * hidden_);
      s.dx = arena.take(rows * layer_input(l));
      s.h0 = arena.take(batch * hidden_);
      s.c0 = Cell::has_cell_state ? arena.take(batch * hidden_) : std::span<float>{};
    }
    w_hh_packed_.reserve(hidden_, g);  // both orientations, so that packing never allocates
    w_hh_packed_.reserve(g, hidden_);
    bias_sum_ = arena.take(g);
    bias_grad_ = arena.take(g);
    h_prev_ = arena.take(rows * hidden_);
    dh_ = arena.take(batch * hidden_);
    dc_ = Cell::has_cell_state ? arena.take(batch * hidden_) : std::span<float>{};
    ones_ = arena.take(rows);
    std::fill(ones_.begin(), ones_.end(), 1.0f);
  }

  /// x [B*T, in] -> h [B*T, hidden] of the top layer.
  const_matrix forward(const_matrix x, const run_context& ctx) {
    const std::size_t rows = shape_.rows();
    require<shape_error>(x.extent(0) == rows && x.extent(1) == in_ && (rows <= 1 || x.stride(0) == in_), Cell::name,
                         ": input is [", x.extent(0), " x ", x.extent(1), "], expected [", rows, " x ", in_, "]");
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      forward_layer(l, x, ctx);
      x = as_matrix(std::span<const float>(layers_[l].y), rows, hidden_);
    }
    return x;
  }

  /// dy [B*T, hidden] -> dx [B*T, in]; adds into every weight's and bias's gradient.
  const_matrix backward(const_matrix dy, const run_context& ctx) {
    const std::size_t rows = shape_.rows();
    require<shape_error>(dy.extent(0) == rows && dy.extent(1) == hidden_ && (rows <= 1 || dy.stride(0) == hidden_),
                         Cell::name, ": output gradient is [", dy.extent(0), " x ", dy.extent(1), "], expected [", rows,
                         " x ", hidden_, "]");
    for (std::size_t l = layers_.size(); l-- > 0;) {
      backward_layer(l, dy, ctx);
      dy = as_matrix(std::span<const float>(layers_[l].dx), rows, layer_input(l));
    }
    return dy;
  }

  /// PyTorch's names and order: weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_ih_l1, ...
  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const std::string k = std::to_string(l);
      visit(join_name(prefix, "weight_ih_l" + k), layers_[l].weight_ih);
      visit(join_name(prefix, "weight_hh_l" + k), layers_[l].weight_hh);
      if (has_bias_) {
        visit(join_name(prefix, "bias_ih_l" + k), layers_[l].bias_ih);
        visit(join_name(prefix, "bias_hh_l" + k), layers_[l].bias_hh);
      }
    }
  }

 private:
  struct layer_state {
    parameter weight_ih, weight_hh, bias_ih, bias_hh;
    aligned_buffer<float> final_h, final_c;   // the carried state, [state_batch x H]
    std::span<float> gates, cell, y, dx, h0, c0;
    const_matrix x;
  };

  std::size_t layer_input(std::size_t l) const { return l == 0 ? in_ : hidden_; }

  void forward_layer(std::size_t l, const_matrix x, const run_context& ctx) {
    layer_state& s = layers_[l];
    const std::size_t batch = shape_.batch, time = shape_.time, rows = shape_.rows();
    const std::size_t h = hidden_, g = Cell::gates * h, in = layer_input(l);
    s.x = x;
    // Where this forward starts: a copy, since the state is overwritten at the end.
    if (carry_) {
      std::copy(s.final_h.data(), s.final_h.data() + batch * h, s.h0.begin());
      if constexpr (Cell::has_cell_state) std::copy(s.final_c.data(), s.final_c.data() + batch * h, s.c0.begin());
    } else {
      std::fill(s.h0.begin(), s.h0.end(), 0.0f);
      std::fill(s.c0.begin(), s.c0.end(), 0.0f);
    }
    if (has_bias_) kernels::add(s.bias_ih.value(), s.bias_hh.value(), bias_sum_);
    else std::fill(bias_sum_.begin(), bias_sum_.end(), 0.0f);
    // W_hh^T [H x G H], packed once for the T per-step products.
    w_hh_packed_.pack(detail::f32_operand(s.weight_hh.value().data(), h, true), h, g);

    kernels::gemm({rows, g, in, detail::f32_operand(x.data(), in), detail::f32_operand(s.weight_ih.value().data(), in, true),
                   s.gates.data(), g, false},
                  *ctx.pool);
    const std::size_t grain = detail::cell_rows_per_task(h);
    for (std::size_t t = 0; t < time; ++t) {
      // pre[b * T + t] += h_{t-1}[b] W_hh^T, h_{t-1} being row b * T + t - 1 of y (or of h0).
      const float* h_prev = t == 0 ? s.h0.data() : s.y.data() + (t - 1) * h;
      const std::size_t h_stride = t == 0 ? h : time * h;
      if (t > 0 || carry_)
        kernels::gemm_prepacked(batch, h_prev, h_stride, w_hh_packed_, s.gates.data() + t * g, time * g, true, *ctx.pool);
      ctx.pool->for_each_chunk(batch, grain, [&](std::size_t begin, std::size_t end) {
        for (std::size_t b = begin; b < end; ++b) {
          const std::size_t r = b * time + t;
          const float* c_prev = nullptr;
          float* c = nullptr;
          if constexpr (Cell::has_cell_state) {
            c_prev = t == 0 ? s.c0.data() + b * h : s.cell.data() + (r - 1) * h;
            c = s.cell.data() + r * h;
          }
          Cell::forward(s.gates.subspan(r * g, g), bias_sum_, c_prev, c, s.y.data() + r * h, h);
        }
      });
    }
    for (std::size_t b = 0; b < batch; ++b) {
      const std::size_t last = b * time + time - 1;
      std::copy_n(s.y.data() + last * h, h, s.final_h.data() + b * h);
      if constexpr (Cell::has_cell_state) std::copy_n(s.cell.data() + last * h, h, s.final_c.data() + b * h);
    }
  }

  void backward_layer(std::size_t l, const_matrix dy, const run_context& ctx) {
    layer_state& s = layers_[l];
    const std::size_t batch = shape_.batch, time = shape_.time, rows = shape_.rows();
    const std::size_t h = hidden_, g = Cell::gates * h, in = layer_input(l);
    std::fill(dh_.begin(), dh_.end(), 0.0f);
    std::fill(dc_.begin(), dc_.end(), 0.0f);
    w_hh_packed_.pack(detail::f32_operand(s.weight_hh.value().data(), h), g, h);  // W_hh [G H x H] for dh_{t-1}
    const std::size_t grain = detail::cell_rows_per_task(h);
    for (std::size_t t = time; t-- > 0;) {
      ctx.pool->for_each_chunk(batch, grain, [&](std::size_t begin, std::size_t end) {
        for (std::size_t b = begin; b < end; ++b) {
          const std::size_t r = b * time + t;
          const float* c_prev = nullptr;
          const float* c = nullptr;
          float* dc = nullptr;
          if constexpr (Cell::has_cell_state) {
            c_prev = t == 0 ? s.c0.data() + b * h : s.cell.data() + (r - 1) * h;
            c = s.cell.data() + r * h;
            dc = dc_.data() + b * h;
          }
          Cell::backward(s.gates.subspan(r * g, g), c_prev, c, dy.data() + r * h, dh_.data() + b * h, dc, h);
        }
      });
      // dh_{t-1} = dpre[:, t] W_hh (not needed at t = 0: the initial state is a constant).
      if (t > 0) kernels::gemm_prepacked(batch, s.gates.data() + t * g, time * g, w_hh_packed_, dh_.data(), h, false, *ctx.pool);
    }
    // h_prev [B*T, H]: row b * T + t holds h_{t-1} (h0 at t = 0), for dW_hh in one product.
    for (std::size_t b = 0; b < batch; ++b) {
      std::copy_n(s.h0.data() + b * h, h, h_prev_.data() + b * time * h);
      std::copy_n(s.y.data() + b * time * h, (time - 1) * h, h_prev_.data() + (b * time + 1) * h);
    }
    const kernels::matrix_operand dpre_t = detail::f32_operand(s.gates.data(), g, true);
    kernels::gemm({g, h, rows, dpre_t, detail::f32_operand(h_prev_.data(), h), s.weight_hh.grad().data(), h, true}, *ctx.pool);
    kernels::gemm({g, in, rows, dpre_t, detail::f32_operand(s.x.data(), in), s.weight_ih.grad().data(), in, true}, *ctx.pool);
    if (has_bias_) {
      // Column sums as a product with a row of ones: the same fixed order on any thread count.
      kernels::gemm({1, g, rows, detail::f32_operand(ones_.data(), rows), detail::f32_operand(s.gates.data(), g), bias_grad_.data(),
                     g, false},
                    *ctx.pool);
      kernels::add(bias_grad_, s.bias_ih.grad(), s.bias_ih.grad());
      kernels::add(bias_grad_, s.bias_hh.grad(), s.bias_hh.grad());
    }
    kernels::gemm({rows, in, g, detail::f32_operand(s.gates.data(), g), detail::f32_operand(s.weight_ih.value().data(), in),
                   s.dx.data(), in, false},
                  *ctx.pool);
  }

  std::size_t in_, hidden_;
  bool has_bias_;
  bool carry_ = false;
  std::vector<layer_state> layers_;
  std::size_t state_batch_ = 0;
  batch_shape shape_{0, 0};
  kernels::prepacked_matrix w_hh_packed_;  // W_hh^T in the forward, W_hh in the backward
  std::span<float> bias_sum_, bias_grad_, h_prev_, dh_, dc_, ones_;
};

}  // namespace lmkit::nn
