// Loads and stores of the last, partial vector of an array. Highway 1.0.3 emulates MaskedLoad on
// SSE4 and SCALAR with a full-width load, which can read past the end of the array (and fault at a
// page boundary); AVX2 and AVX-512 have fault-free masked moves. Per-target code, re-included once
// per Highway target by kernels.hpp.
#if defined(LMKIT_KERNELS_TAIL_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_TAIL_INL_HPP_
#undef LMKIT_KERNELS_TAIL_INL_HPP_
#else
#define LMKIT_KERNELS_TAIL_INL_HPP_
#endif

#include <algorithm>
#include <cstddef>

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define LMKIT_HAVE_FAULT_FREE_MASKED_MOVES 1
#else
#define LMKIT_HAVE_FAULT_FREE_MASKED_MOVES 0
#endif

/// The first `count` floats at p (count <= Lanes), the other lanes zero. Never reads past p + count.
template <class D>
HWY_INLINE hn::Vec<D> load_tail(D d, const float* p, std::size_t count) {
  if (count >= hn::Lanes(d)) return hn::LoadU(d, p);
#if LMKIT_HAVE_FAULT_FREE_MASKED_MOVES
  return hn::MaskedLoad(hn::FirstN(d, count), d, p);
#else
  HWY_ALIGN float staged[HWY_LANES(float)] = {};
  std::copy_n(p, count, staged);
  return hn::Load(d, staged);
#endif
}

/// Stores the first `count` lanes of v at p (count <= Lanes). Never writes past p + count.
template <class D>
HWY_INLINE void store_tail(hn::Vec<D> v, D d, float* p, std::size_t count) {
  if (count >= hn::Lanes(d)) return hn::StoreU(v, d, p);
#if LMKIT_HAVE_FAULT_FREE_MASKED_MOVES
  hn::BlendedStore(v, hn::FirstN(d, count), d, p);
#else
  HWY_ALIGN float staged[HWY_LANES(float)];
  hn::Store(v, d, staged);
  std::copy_n(staged, count, p);
#endif
}

#undef LMKIT_HAVE_FAULT_FREE_MASKED_MOVES

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
