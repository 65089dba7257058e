// User-written element-wise functors in xsimd's vocabulary: write the function once as a generic
// lambda over `xsimd::batch<float>` (and plain float, for the tail), and lmkit applies it over a
// span. It is compiled for the build's instruction set (xsimd 8 dispatches per translation unit,
// which a header-only library cannot do), unlike the library's own kernels, which Highway
// dispatches at run time.
//
//   auto squash = [](auto x) { return x / (1.0f + xsimd::abs(x)); };   // "softsign"
//   lmkit::simd::transform(in, out, squash);
#pragma once

#include <xsimd/xsimd.hpp>

#include <concepts>
#include <cstddef>
#include <span>

#include "lmkit/core/error.hpp"

namespace lmkit::simd {

using float_batch = xsimd::batch<float>;

/// A functor usable by transform: callable on a batch of floats and on one float.
template <class F>
concept elementwise_functor = requires(const F& f, float_batch b, float x) {
  { f(b) } -> std::convertible_to<float_batch>;
  { f(x) } -> std::convertible_to<float>;
};

/// out[i] = f(in[i]); out may be in.
template <elementwise_functor F>
void transform(std::span<const float> in, std::span<float> out, const F& f) {
  require<shape_error>(in.size() == out.size(), "simd::transform: sizes differ (", in.size(), " vs ", out.size(), ")");
  constexpr std::size_t lanes = float_batch::size;
  std::size_t i = 0;
  for (; i + lanes <= in.size(); i += lanes) {
    const float_batch result = f(float_batch::load_unaligned(in.data() + i));
    result.store_unaligned(out.data() + i);
  }
  for (; i < in.size(); ++i) out[i] = f(in[i]);
}

/// out[i] = f(a[i], b[i]); out may be a or b.
template <class F>
  requires requires(const F& f, float_batch x, float s) {
    { f(x, x) } -> std::convertible_to<float_batch>;
    { f(s, s) } -> std::convertible_to<float>;
  }
void transform(std::span<const float> a, std::span<const float> b, std::span<float> out, const F& f) {
  require<shape_error>(a.size() == b.size() && a.size() == out.size(), "simd::transform: sizes differ (", a.size(),
                       ", ", b.size(), ", ", out.size(), ")");
  constexpr std::size_t lanes = float_batch::size;
  std::size_t i = 0;
  for (; i + lanes <= a.size(); i += lanes) {
    const float_batch result = f(float_batch::load_unaligned(a.data() + i), float_batch::load_unaligned(b.data() + i));
    result.store_unaligned(out.data() + i);
  }
  for (; i < a.size(); ++i) out[i] = f(a[i], b[i]);
}

}  // namespace lmkit::simd
