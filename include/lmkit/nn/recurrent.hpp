// The machinery shared by the recurrent layers (lstm.hpp, rnn.hpp): a stack of `layers` recurrent
// layers over batches of sequences, with PyTorch's parameter layout and names (nn.LSTM / nn.RNN,
// batch_first=True), trained by backpropagation through time within the batch. What happens inside
// one step is the `Cell`'s business: the LSTM's four gates, or the Elman network's one tanh.
//
// Shapes, per batch of B sequences of T steps, hidden width H, G = Cell::gates gate blocks of H,
// layer input width I (the input width for layer 0, H above). The layer's input and output rows
// are b * T + t, as in every layer; inside, rows are time-major (t * B + b), so that one step's
// rows, and a run of steps, are one contiguous block:
//   forward:  for each run of S steps (S B ~ 256 rows):  pre[run] = x[run] W_ih^T
//               for each step t of the run:  pre[t] += h_{t-1} W_hh^T;  (gates, c_t, h_t) = cell(pre[t] + b, c_{t-1})
//   backward: for each run of S steps, from the last:
//               for each step t, from the last:  dpre[t] = cell'(dy[t] + dh_t, dc_t);  dh_{t-1} = dpre[t] W_hh
//               dW_hh += dpre[run]^T h_prev[run];  dW_ih += dpre[run]^T x[run];  db += sums of dpre[run];
//               dx[run] = dpre[run] W_ih
// A run's products are taken right after its steps, while its 256 rows are still in L2: over all
// rows at once, the transposed reads of dpre (a few floats from each of hundreds of 4 KiB rows) miss
// the caches and cost as much as the products. W_ih and W_hh are packed once per layer and pass
// (kernels::gemm_prepacked). The gate buffer holds the pre-activations, then (in place) the
// activations; a run's gradients go to a run-sized buffer.
//
// With bf16 products (run_context::products; `train --products bf16`), every one of these products
// takes bf16-rounded operands summed in f32, as the GPT's linear layers then do: the packed weights
// are rounded once per pass (prepacked_matrix's bf16 form) and each step packs only its batch rows.
//
// Dropout between layers (PyTorch's nn.LSTM(..., dropout=p); Zaremba et al.'s regularisation of
// the non-recurrent connections): while training, the input of each layer above the first is the
// layer below's output times a dropout mask; the recurrent connections are never dropped. Layer l's
// mask is nn::dropout_mask salted `dropout_salt + l`, over its input as a [B*T, H] matrix in the
// layer's row order b * T + t (the masks of an nn::dropout on that matrix).
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
#include "lmkit/nn/dropout.hpp"
#include "lmkit/nn/layer.hpp"

namespace lmkit::nn {

namespace detail {
/// Batch rows per parallel task in the per-step cell math: a few thousand floats of work each, in
/// a fixed split (so results do not depend on the thread count).
inline std::size_t cell_rows_per_task(std::size_t hidden) { return std::max<std::size_t>(1, 2048 / std::max<std::size_t>(hidden, 1)); }

/// Steps per run of the products over runs of steps (about 256 rows: one depth slice of the GEMM).
inline std::size_t steps_per_run(std::size_t batch) { return std::max<std::size_t>(1, 256 / std::max<std::size_t>(batch, 1)); }

inline kernels::matrix_operand f32_operand(const float* data, std::size_t stride, bool transposed = false) {
  return {data, dtype::f32, stride, transposed};
}

/// C [m x n] += A^T B (A stored [k x m], B [k x n]): a weight's gradient over a run of rows, in
/// the run's product precision. In f32, kernels::gemm_tn; with bf16 products, kernels::gemm, whose
/// bf16 kernels pack a transposed A with register transposes.
inline void add_weight_gradient(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
                                const float* b, std::size_t ldb, float* c, std::size_t ldc, const run_context& ctx) {
  if (ctx.products == kernels::product_precision::bf16)
    kernels::gemm({m, n, k, f32_operand(a, lda, true), f32_operand(b, ldb), c, ldc, true, ctx.products}, *ctx.pool);
  else
    kernels::gemm_tn(m, n, k, a, lda, b, ldb, c, ldc, true, *ctx.pool);
}

/// Rows b * T + t of src to rows t * B + b of dst (`to_time_major`), or back; rows of `width`
/// floats, `src_stride` and `dst_stride` apart.
inline void reorder_rows(const float* src, std::size_t src_stride, float* dst, std::size_t dst_stride, batch_shape shape,
                         std::size_t width, bool to_time_major) {
  for (std::size_t b = 0; b < shape.batch; ++b)
    for (std::size_t t = 0; t < shape.time; ++t) {
      const std::size_t batch_major = b * shape.time + t, time_major = t * shape.batch + b;
      std::copy_n(src + (to_time_major ? batch_major : time_major) * src_stride, width,
                  dst + (to_time_major ? time_major : batch_major) * dst_stride);
    }
}

/// Floats between rows of an activation buffer that kernels read in place: one cache line more
/// than the row. Rows a multiple of 1-4 KiB apart fall into a few L1 sets, and the columns of a
/// few hundred of them, read one after another, would come from L2 one line at a time.
inline std::size_t padded_stride(std::size_t width) { return width + 16; }
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
  /// `dropout`: the probability with which each input of the layers above the first is dropped
  /// while training (masks salted dropout_salt + layer).
  recurrent(std::size_t in, std::size_t hidden, std::size_t layers = 1, bias b = bias::yes, float dropout = 0.0f,
            std::uint64_t dropout_salt = 0)
      : in_(detail::checked_width(In, in, Cell::name, "input width")),
        hidden_(detail::checked_width(Hidden, hidden, Cell::name, "hidden width")),
        has_bias_(b == bias::yes),
        dropout_(dropout),
        dropout_salt_(dropout_salt) {
    require<argument_error>(in > 0 && hidden > 0 && layers > 0, Cell::name, ": input width, hidden width and layers must be positive");
    require<argument_error>(dropout >= 0.0f && dropout < 1.0f, Cell::name, ": dropout ", dropout, " is not in [0, 1)");
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
  float dropout() const { return dropout_; }
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

  /// Takes the buffers for this batch shape; `table_rows` > 0 also for the forward from a table
  /// of that many rows (token input). A batch of another size than the state's resets (and
  /// resizes) the carried state.
  void reserve(activation_arena& arena, batch_shape shape, std::size_t table_rows = 0) {
    shape_ = shape;
    if (shape.batch != state_batch_) reset_state(shape.batch);
    const std::size_t rows = shape.rows(), g = Cell::gates * hidden_, batch = shape.batch;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      layer_state& s = layers_[l];
      s.gates = arena.take(rows * gate_stride());
      s.cell = Cell::has_cell_state ? arena.take(rows * hidden_) : std::span<float>{};
      s.y = arena.take(rows * detail::padded_stride(hidden_));
      s.dx = arena.take(rows * layer_input(l));
      s.h0 = arena.take(batch * hidden_);
      s.c0 = Cell::has_cell_state ? arena.take(batch * hidden_) : std::span<float>{};
      const bool drops = l > 0 && dropout_ > 0.0f;
      s.mask = drops ? arena.take(rows * hidden_) : std::span<float>{};
      s.dropped = drops ? arena.take(rows * detail::padded_stride(hidden_)) : std::span<float>{};
    }
    x_ = arena.take(rows * detail::padded_stride(in_));
    out_ = arena.take(rows * hidden_);
    dx_ = arena.take(rows * in_);
    table_rows_ = table_rows;
    projected_table_ = arena.take(table_rows * g);
    bias_sum_ = arena.take(g);
    bias_grad_ = arena.take(g);
    dh_ = arena.take(batch * hidden_);
    dc_ = Cell::has_cell_state ? arena.take(batch * hidden_) : std::span<float>{};
    dpre_ = arena.take(std::min(rows, detail::steps_per_run(batch) * batch) * gate_stride());
    // Both orientations of both weights, so that packing never allocates.
    for (std::size_t in : {in_, hidden_}) {
      packed_input_.reserve(in, g);
      packed_input_.reserve(g, in);
    }
    packed_recurrent_.reserve(hidden_, g);
    packed_recurrent_.reserve(g, hidden_);
  }

  /// x [B*T, in] -> h [B*T, hidden] of the top layer.
  const_matrix forward(const_matrix x, const run_context& ctx) {
    const std::size_t rows = shape_.rows();
    require<shape_error>(x.extent(0) == rows && x.extent(1) == in_ && (rows <= 1 || x.stride(0) == in_), Cell::name,
                         ": input is [", x.extent(0), " x ", x.extent(1), "], expected [", rows, " x ", in_, "]");
    table_ = {};
    detail::reorder_rows(x.data(), in_, x_.data(), detail::padded_stride(in_), shape_, in_, true);
    return forward_layers(ctx);
  }

  /// The forward of x = rows `ids` of `table` [rows x in] (an embedding's weights): the same result
  /// as forward(embedding(ids)), with the first layer's input product taken once per table row
  /// (table W_ih^T) instead of once per position. Needs reserve(arena, shape, table rows).
  const_matrix forward(const_matrix table, std::span<const token_id> ids, const run_context& ctx) {
    require<shape_error>(table.extent(0) == table_rows_ && table.extent(1) == in_ &&
                             (table.extent(0) <= 1 || table.stride(0) == in_),
                         Cell::name, ": table is [", table.extent(0), " x ", table.extent(1), "], reserved for [",
                         table_rows_, " x ", in_, "]");
    require<shape_error>(ids.size() == shape_.rows(), Cell::name, ": ", ids.size(), " ids for a batch of ",
                         shape_.rows(), " positions");
    for (std::size_t r = 0; r < ids.size(); ++r)
      require<argument_error>(ids[r] < table_rows_, Cell::name, ": token id ", ids[r], " at position ", r,
                              " is outside the table of ", table_rows_, " rows");
    table_ = table;
    ids_ = ids;
    return forward_layers(ctx);
  }

  /// dy [B*T, hidden] -> dx [B*T, in]; adds into every weight's and bias's gradient.
  const_matrix backward(const_matrix dy, const run_context& ctx) {
    require<argument_error>(table_.data() == nullptr, Cell::name, ": the last forward read a table: backward into its gradient");
    backward_layers(dy, ctx);
    detail::reorder_rows(layers_.front().dx.data(), in_, dx_.data(), in_, shape_, in_, false);
    return as_matrix(std::span<const float>(dx_), shape_.rows(), in_);
  }

  /// The backward of forward(table, ids): adds the table's gradient into `table_grad` [rows x in].
  void backward(const_matrix dy, matrix table_grad, const run_context& ctx) {
    require<argument_error>(table_.data() != nullptr, Cell::name, ": the last forward did not read a table");
    require<shape_error>(table_grad.extent(0) == table_rows_ && table_grad.extent(1) == in_ &&
                             (table_rows_ <= 1 || table_grad.stride(0) == in_),
                         Cell::name, ": table gradient is [", table_grad.extent(0), " x ", table_grad.extent(1),
                         "], expected [", table_rows_, " x ", in_, "]");
    table_grad_ = table_grad.data();
    backward_layers(dy, ctx);
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
    aligned_buffer<float> final_h, final_c;  // the carried state, [state_batch x H]
    // Time-major [T*B x ...]: gates, c_t, h_t, the gradient of the input; [B x H]: where it started.
    std::span<float> gates, cell, y, dx, h0, c0;
    // Layers above the first, with dropout: the mask [B*T x H] (rows b * T + t) and the masked input
    // (time-major, like y).
    std::span<float> mask, dropped;
  };

  std::size_t layer_input(std::size_t l) const { return l == 0 ? in_ : hidden_; }
  std::size_t gate_stride() const { return detail::padded_stride(Cell::gates * hidden_); }
  /// Layer l's input, time-major, rows padded_stride(layer_input(l)) apart.
  const float* layer_x(std::size_t l) const {
    if (l == 0) return x_.data();
    return dropping_ ? layers_[l].dropped.data() : layers_[l - 1].y.data();
  }
  /// Whether layer l's input comes from the table (token input).
  bool from_table(std::size_t l) const { return l == 0 && table_.data() != nullptr; }

  const_matrix forward_layers(const run_context& ctx) {
    dropping_ = ctx.training && dropout_ > 0.0f;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      if (l > 0 && dropping_) drop_input(l, ctx);
      forward_layer(l, ctx);
    }
    return as_matrix(std::span<const float>(out_), shape_.rows(), hidden_);
  }

  void backward_layers(const_matrix dy, const run_context& ctx) {
    const std::size_t rows = shape_.rows();
    require<shape_error>(dy.extent(0) == rows && dy.extent(1) == hidden_ && (rows <= 1 || dy.stride(0) == hidden_),
                         Cell::name, ": output gradient is [", dy.extent(0), " x ", dy.extent(1), "], expected [", rows,
                         " x ", hidden_, "]");
    for (std::size_t l = layers_.size(); l-- > 0;) {
      if (l + 1 < layers_.size() && dropping_) mask_input_gradient(l + 1);
      backward_layer(l, l + 1 == layers_.size() ? dy.data() : layers_[l + 1].dx.data(), ctx);
    }
  }

  /// Layer l's masked input: the mask drawn (in fixed chunks: the same on any thread count), then
  /// dropped = y_{l-1} * mask, row by row (time-major t * B + b reads mask row b * T + t).
  void drop_input(std::size_t l, const run_context& ctx) {
    layer_state& s = layers_[l];
    const std::size_t h = hidden_, ys = detail::padded_stride(h);
    ctx.pool->for_each_chunk(s.mask.size(), 4096, [&](std::size_t begin, std::size_t end) {
      dropout_mask(ctx, dropout_salt_ + l, begin, dropout_, s.mask.subspan(begin, end - begin));
    });
    const float* y = layers_[l - 1].y.data();
    for (std::size_t b = 0; b < shape_.batch; ++b)
      for (std::size_t t = 0; t < shape_.time; ++t) {
        const std::size_t r = t * shape_.batch + b;
        kernels::mul(std::span<const float>(y + r * ys, h), s.mask.subspan((b * shape_.time + t) * h, h),
                     s.dropped.subspan(r * ys, h));
      }
  }

  /// The gradient of layer l's input (time-major dx, dense rows) times its mask: that of y_{l-1}.
  void mask_input_gradient(std::size_t l) {
    layer_state& s = layers_[l];
    const std::size_t h = hidden_;
    for (std::size_t b = 0; b < shape_.batch; ++b)
      for (std::size_t t = 0; t < shape_.time; ++t) {
        const std::span<float> dx = s.dx.subspan((t * shape_.batch + b) * h, h);
        kernels::mul(dx, s.mask.subspan((b * shape_.time + t) * h, h), dx);
      }
  }

  void forward_layer(std::size_t l, const run_context& ctx) {
    layer_state& s = layers_[l];
    const std::size_t batch = shape_.batch, time = shape_.time;
    const std::size_t h = hidden_, g = Cell::gates * h, gs = gate_stride(), in = layer_input(l);
    const std::size_t ys = detail::padded_stride(h), xs = detail::padded_stride(in), run = detail::steps_per_run(batch);
    const float* x = layer_x(l);
    const bool top = l + 1 == layers_.size();
    // Where this forward starts: a copy, since the state is overwritten at the end.
    if (carry_) {
      std::copy_n(s.final_h.data(), batch * h, s.h0.begin());
      if constexpr (Cell::has_cell_state) std::copy_n(s.final_c.data(), batch * h, s.c0.begin());
    } else {
      std::fill(s.h0.begin(), s.h0.end(), 0.0f);
      std::fill(s.c0.begin(), s.c0.end(), 0.0f);
    }
    if (has_bias_) kernels::add(s.bias_ih.value(), s.bias_hh.value(), bias_sum_);
    else std::fill(bias_sum_.begin(), bias_sum_.end(), 0.0f);
    const bool table = from_table(l);
    if (table) {
      // The input product of every table row, with the biases: [rows x G H] = table W_ih^T + b. A
      // step's rows then start from h W_hh^T alone and take their row of this as the cell's bias.
      kernels::gemm({table_rows_, g, in, detail::f32_operand(table_.data(), in),
                     detail::f32_operand(s.weight_ih.value().data(), in, true), projected_table_.data(), g, false,
                     ctx.products},
                    *ctx.pool);
      for (std::size_t v = 0; v < table_rows_; ++v) {
        const std::span<float> row = projected_table_.subspan(v * g, g);
        kernels::add(row, bias_sum_, row);
      }
    } else {
      packed_input_.pack(detail::f32_operand(s.weight_ih.value().data(), in, true), in, g, ctx.products);  // W_ih^T [I x G H]
    }
    packed_recurrent_.pack(detail::f32_operand(s.weight_hh.value().data(), h, true), h, g, ctx.products);  // W_hh^T [H x G H]

    const std::size_t grain = detail::cell_rows_per_task(h);
    for (std::size_t t0 = 0; t0 < time; t0 += run) {
      const std::size_t t1 = std::min(time, t0 + run);
      if (!table)
        kernels::gemm_prepacked((t1 - t0) * batch, x + t0 * batch * xs, xs, packed_input_, s.gates.data() + t0 * batch * gs,
                                gs, false, *ctx.pool);
      for (std::size_t t = t0; t < t1; ++t) {
        float* pre = s.gates.data() + t * batch * gs;
        if (t > 0) kernels::gemm_prepacked(batch, s.y.data() + (t - 1) * batch * ys, ys, packed_recurrent_, pre, gs, !table, *ctx.pool);
        else if (carry_) kernels::gemm_prepacked(batch, s.h0.data(), h, packed_recurrent_, pre, gs, !table, *ctx.pool);
        else if (table)
          for (std::size_t b = 0; b < batch; ++b) std::fill_n(pre + b * gs, g, 0.0f);
        ctx.pool->for_each_chunk(batch, grain, [&](std::size_t begin, std::size_t end) {
          for (std::size_t b = begin; b < end; ++b) {
            const std::size_t r = t * batch + b;
            const float* c_prev = nullptr;
            float* c = nullptr;
            if constexpr (Cell::has_cell_state) {
              c_prev = t == 0 ? s.c0.data() + b * h : s.cell.data() + (r - batch) * h;
              c = s.cell.data() + r * h;
            }
            const std::span<const float> bias =
                table ? std::span<const float>(projected_table_).subspan(std::size_t{ids_[b * time + t]} * g, g) : bias_sum_;
            Cell::forward(s.gates.subspan(r * gs, g), bias, c_prev, c, s.y.data() + r * ys, h);
            if (top) std::copy_n(s.y.data() + r * ys, h, out_.data() + (b * time + t) * h);  // the layer's output
          }
        });
      }
    }
    const std::size_t last = (time - 1) * batch;
    for (std::size_t b = 0; b < batch; ++b) std::copy_n(s.y.data() + (last + b) * ys, h, s.final_h.data() + b * h);
    if constexpr (Cell::has_cell_state) std::copy_n(s.cell.data() + last * h, batch * h, s.final_c.data());
  }

  /// dy: the gradient of layer l's output: the layer's own dy (batch-major) for the top layer, the
  /// gradient of the next layer's input (time-major) below.
  void backward_layer(std::size_t l, const float* dy, const run_context& ctx) {
    layer_state& s = layers_[l];
    const std::size_t batch = shape_.batch, time = shape_.time;
    const std::size_t h = hidden_, g = Cell::gates * h, gs = gate_stride(), in = layer_input(l);
    const std::size_t ys = detail::padded_stride(h), xs = detail::padded_stride(in), run = detail::steps_per_run(batch);
    const float* x = layer_x(l);
    const bool table = from_table(l), top = l + 1 == layers_.size();
    std::fill(dh_.begin(), dh_.end(), 0.0f);
    std::fill(dc_.begin(), dc_.end(), 0.0f);
    std::fill(bias_grad_.begin(), bias_grad_.end(), 0.0f);
    // From a table, the input's gradient is gathered per table row: S [rows x G H], S[v] = the sum
    // of dpre over the positions of token v (kept in the projected table's place).
    if (table) std::fill(projected_table_.begin(), projected_table_.end(), 0.0f);
    else packed_input_.pack(detail::f32_operand(s.weight_ih.value().data(), in), g, in, ctx.products);  // W_ih [G H x I]
    packed_recurrent_.pack(detail::f32_operand(s.weight_hh.value().data(), h), g, h, ctx.products);      // W_hh [G H x H]

    const std::size_t grain = detail::cell_rows_per_task(h);
    for (std::size_t runs = (time + run - 1) / run; runs-- > 0;) {
      const std::size_t t0 = runs * run, t1 = std::min(time, t0 + run);
      // The run's dpre goes to its own buffer, which stays in cache; the gate buffer is only read,
      // so its lines are not written back to memory.
      const std::size_t r0 = t0 * batch, rows = (t1 - t0) * batch;
      for (std::size_t t = t1; t-- > t0;) {
        ctx.pool->for_each_chunk(batch, grain, [&](std::size_t begin, std::size_t end) {
          for (std::size_t b = begin; b < end; ++b) {
            const std::size_t r = t * batch + b;
            const float* c_prev = nullptr;
            const float* c = nullptr;
            float* dc = nullptr;
            if constexpr (Cell::has_cell_state) {
              c_prev = t == 0 ? s.c0.data() + b * h : s.cell.data() + (r - batch) * h;
              c = s.cell.data() + r * h;
              dc = dc_.data() + b * h;
            }
            const float* dy_row = dy + (top ? b * time + t : r) * h;
            Cell::backward(s.gates.subspan(r * gs, g), dpre_.subspan((r - r0) * gs, g), c_prev, c, dy_row,
                           dh_.data() + b * h, dc, h);
          }
        });
        // Sums over the step's rows, in row order (the same on any thread count), while they are in L1.
        for (std::size_t b = 0; b < batch; ++b) {
          const std::span<const float> dpre = dpre_.subspan((t * batch + b - r0) * gs, g);
          if (table) {  // the bias sums then come from the per-token sums, after the loop
            const std::span<float> sum = projected_table_.subspan(std::size_t{ids_[b * time + t]} * g, g);
            kernels::add(dpre, sum, sum);
          } else if (has_bias_) {
            kernels::add(dpre, bias_grad_, bias_grad_);
          }
        }
        // dh_{t-1} = dpre[t] W_hh (not needed at t = 0: the initial state is a constant).
        if (t > 0)
          kernels::gemm_prepacked(batch, dpre_.data() + (t * batch - r0) * gs, gs, packed_recurrent_, dh_.data(), h, false,
                                  *ctx.pool);
      }
      // The run's products, while its rows are in cache.
      const float* dpre = dpre_.data();
      // dW_hh += dpre^T h_prev, h_prev of row r being row r - B of y (of h0 for the first step).
      float* dw_hh = s.weight_hh.grad().data();
      if (t0 == 0) {
        if (carry_) detail::add_weight_gradient(g, h, batch, dpre, gs, s.h0.data(), h, dw_hh, h, ctx);
        detail::add_weight_gradient(g, h, rows - batch, dpre + batch * gs, gs, s.y.data(), ys, dw_hh, h, ctx);
      } else {
        detail::add_weight_gradient(g, h, rows, dpre, gs, s.y.data() + (r0 - batch) * ys, ys, dw_hh, h, ctx);
      }
      if (!table) {
        detail::add_weight_gradient(g, in, rows, dpre, gs, x + r0 * xs, xs, s.weight_ih.grad().data(), in, ctx);
        kernels::gemm_prepacked(rows, dpre, gs, packed_input_, s.dx.data() + r0 * in, in, false, *ctx.pool);
      }
    }
    if (table) {
      if (has_bias_)
        for (std::size_t v = 0; v < table_rows_; ++v) kernels::add(projected_table_.subspan(v * g, g), bias_grad_, bias_grad_);
      // dW_ih += S^T table;  dtable += S W_ih.
      detail::add_weight_gradient(g, in, table_rows_, projected_table_.data(), g, table_.data(), in,
                                  s.weight_ih.grad().data(), in, ctx);
      kernels::gemm({table_rows_, in, g, detail::f32_operand(projected_table_.data(), g),
                     detail::f32_operand(s.weight_ih.value().data(), in), table_grad_, in, true, ctx.products},
                    *ctx.pool);
    }
    if (has_bias_) {
      kernels::add(bias_grad_, s.bias_ih.grad(), s.bias_ih.grad());
      kernels::add(bias_grad_, s.bias_hh.grad(), s.bias_hh.grad());
    }
  }

  std::size_t in_, hidden_;
  bool has_bias_;
  float dropout_;
  std::uint64_t dropout_salt_;
  bool dropping_ = false;  // the last forward dropped (training with dropout > 0)
  bool carry_ = false;
  std::vector<layer_state> layers_;
  std::size_t state_batch_ = 0;
  batch_shape shape_{0, 0};
  kernels::prepacked_matrix packed_input_, packed_recurrent_;  // W_ih, W_hh: transposed for the forward
  // Token input: the table and ids of the last forward; its product with W_ih^T (or, in the
  // backward, the per-row sums of the first layer's dpre) [table rows x G H]; the table's gradient.
  const_matrix table_;
  std::span<const token_id> ids_;
  std::size_t table_rows_ = 0;
  float* table_grad_ = nullptr;
  // x time-major; out, dx batch-major (the layer's interface); per-step scratch.
  std::span<float> x_, out_, dx_, projected_table_, bias_sum_, bias_grad_, dh_, dc_, dpre_;
};

}  // namespace lmkit::nn
