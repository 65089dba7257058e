// What every layer is: a `reserve` that takes its buffers for a batch shape from the arena, a
// `forward` that returns its output (a view of its own buffer, kept for the backward), a
// `backward` that takes the gradient of that output and returns the gradient of its input (adding
// into its parameters' gradients), and a visitor over its named parameters.
//
// Widths known at compile time are `in_width` / `out_width` (`dynamic` when they come from a file
// or a flag); `sequential` checks neighbouring widths with them.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/extents.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/kernels/gemm_problem.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/arena.hpp"
#include "lmkit/nn/parameter.hpp"

namespace lmkit::nn {

/// The shape of one batch: `batch` sequences of `time` positions, stored as rows b * time + t.
struct batch_shape {
  std::size_t batch = 1;
  std::size_t time = 1;
  constexpr std::size_t rows() const { return batch * time; }
  friend constexpr bool operator==(batch_shape, batch_shape) = default;
};

/// Whether a layer adds a learned bias.
enum class bias { no, yes };

/// How a forward or backward call runs: on which threads, and whether training (dropout on).
/// Random masks (dropout) are drawn from (noise, pass): the run's seed and the number of the
/// training pass (micro-batch) in the run, which train_step sets. A mask is thus a function of
/// where the run is, not of how many calls came before: a resumed run draws the same masks.
/// `products` says how the matrix products of linear layers, tied output heads and recurrent
/// layers' gates form their terms: exactly in f32, or from bf16-rounded operands (PyTorch's
/// autocast to bfloat16; AMX tiles or AVX512-BF16 where the CPU has them). Everything else stays in
/// f32, attention's per-head products too: at a head's 64 x 64 x 32 the packing and tile set-up
/// cost what the tiles save (trial builds that sent them to bf16, not kept, measured the char GPT's
/// step no faster on AMX tiles, and slower with AVX512-BF16 on a Zen 4: 39.0 vs 36.3 ms, median of 3).
struct run_context {
  const thread_pool* pool = &serial_pool();
  bool training = true;
  seed noise = {};
  std::uint64_t pass = 0;
  kernels::product_precision products = kernels::product_precision::f32;
};

/// A visitor that sees (name, parameter&); layers call it once per parameter they own.
struct parameter_visitor_archetype {
  void operator()(std::string_view, parameter&) const {}
};

template <class L>
concept has_parameters = requires(L& l, std::string_view prefix) {
  l.visit_parameters(parameter_visitor_archetype{}, prefix);
};

template <class L>
concept reservable = requires(L& l, activation_arena& a, batch_shape s) { l.reserve(a, s); };

template <class L, class Input>
concept has_forward = requires(L& l, Input in, const run_context& ctx) { l.forward(in, ctx); };

template <class L, class Input>
using forward_result = decltype(std::declval<L&>().forward(std::declval<Input>(), std::declval<const run_context&>()));

template <class L, class Input>
concept has_backward = has_forward<L, Input> && requires(L& l, const run_context& ctx) {
  l.backward(std::declval<forward_result<L, Input>>(), ctx);
};

/// A layer that maps rows of activations to rows of activations, with its backward.
template <class L>
concept matrix_layer = reservable<L> && has_parameters<L> && has_forward<L, const_matrix> &&
                       has_backward<L, const_matrix> && requires {
                         { L::in_width } -> std::convertible_to<std::size_t>;
                         { L::out_width } -> std::convertible_to<std::size_t>;
                       };

/// A layer that turns token ids into rows of activations (an embedding).
template <class L>
concept token_layer = reservable<L> && has_parameters<L> && has_forward<L, std::span<const token_id>> &&
                      requires(L& l, const_matrix dy, const run_context& ctx) { l.backward(dy, ctx); };

namespace detail {
/// The static width both sides agree on, or `dynamic` when either is only known at run time.
constexpr bool widths_agree(std::size_t out, std::size_t in) { return out == dynamic || in == dynamic || out == in; }

/// `given`, after checking it against the width in the type (unless that is dynamic).
inline std::size_t checked_width(std::size_t static_width, std::size_t given, const char* layer, const char* what) {
  require<shape_error>(static_width == dynamic || static_width == given, layer, ": ", what, " is ", static_width,
                       " in the type but ", given, " was given");
  return given;
}

/// out = a + b over fixed chunks on the context's threads (the residual stream's adds).
inline void parallel_add(const run_context& ctx, std::span<const float> a, std::span<const float> b, std::span<float> out) {
  require<shape_error>(a.size() == b.size() && a.size() == out.size(), "parallel_add: sizes differ");
  ctx.pool->for_each_chunk(a.size(), 1 << 14, [&](std::size_t begin, std::size_t end) {
    kernels::add(a.subspan(begin, end - begin), b.subspan(begin, end - begin), out.subspan(begin, end - begin));
  });
}

/// Rows per parallel task in row-wise layers: enough work per task to pay for the hand-off, and a
/// fixed split (so results do not depend on the thread count).
inline constexpr std::size_t rows_per_task = 32;
}  // namespace detail

}  // namespace lmkit::nn
