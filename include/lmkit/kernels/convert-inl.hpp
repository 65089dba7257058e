// Conversions between f32 and the 16-bit floats, rounding to nearest even. Highway 1.0.3's own
// DemoteTo truncates where the CPU has no F16C (and for bf16 everywhere), so the rounding is ours.
#if defined(LMKIT_KERNELS_CONVERT_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMKIT_KERNELS_CONVERT_INL_HPP_
#undef LMKIT_KERNELS_CONVERT_INL_HPP_
#else
#define LMKIT_KERNELS_CONVERT_INL_HPP_
#endif

#include <cstddef>
#include <cstdint>

#include <hwy/highway.h>

#include "lmkit/kernels/tail-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace lmkit::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// Loads lanes of bf16 and widens them: bf16 is the top half of a float, so this is a shift.
template <class DF>
HWY_INLINE hn::Vec<DF> load_bf16(DF df, const std::uint16_t* p) {
  const hn::RebindToUnsigned<DF> du32;
  const hn::Rebind<std::uint16_t, DF> du16;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
}

/// Loads lanes of f16 and widens them exactly. Moving the 15 magnitude bits to a float's exponent
/// and mantissa positions and multiplying by 2^112 rebiases the exponent (15 -> 127) and turns
/// subnormal halves into the right normal floats in one exact multiplication; inf and NaN get the
/// all-ones exponent back (NaN made quiet, as F16C hardware does).
template <class DF>
HWY_INLINE hn::Vec<DF> load_f16(DF df, const std::uint16_t* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // Highway's AVX2 and AVX-512 targets imply F16C: one vcvtph2ps per vector, the same values
  // (exact, NaN made quiet). Decoding an f16 model spends its time here.
  const hn::Rebind<hwy::float16_t, DF> df16;
  return hn::PromoteTo(df, hn::LoadU(df16, reinterpret_cast<const hwy::float16_t*>(p)));
#else
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<std::uint16_t, DF> du16;
  const auto h = hn::PromoteTo(du, hn::LoadU(du16, p));
  const auto magnitude = hn::ShiftLeft<13>(hn::And(h, hn::Set(du, 0x7fffu)));
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  const auto scaled = hn::BitCast(du, hn::Mul(hn::BitCast(df, magnitude), hn::Set(df, 0x1p112f)));
  const auto is_special = hn::Gt(hn::BitCast(di, magnitude), hn::Set(di, (0x7c00 << 13) - 1));  // inf or NaN
  const auto special = hn::Or(hn::Or(magnitude, hn::Set(du, 0x7f800000u)),
                              hn::IfThenElseZero(hn::RebindMask(du, hn::Gt(hn::BitCast(di, magnitude), hn::Set(di, 0x7c00 << 13))),
                                                 hn::Set(du, 0x00400000u)));
  return hn::BitCast(df, hn::Or(sign, hn::IfThenElse(hn::RebindMask(du, is_special), special, scaled)));
#endif
}

/// f32 lanes -> bf16 bit patterns (as u16), round to nearest even, NaN kept quiet.
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<std::uint16_t, DF>> narrow_to_bf16(DF, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<std::uint16_t, DF> du16;
  const auto bits = hn::BitCast(du, v);
  const auto lowest_kept = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1));
  const auto rounded = hn::Add(bits, hn::Add(hn::Set(du, 0x7fffu), lowest_kept));
  const auto is_nan = hn::Gt(hn::BitCast(di, hn::And(bits, hn::Set(du, 0x7fffffffu))), hn::Set(di, 0x7f800000));
  const auto quiet_nan = hn::Or(bits, hn::Set(du, 0x00400000u));
  const auto result = hn::ShiftRight<16>(hn::IfThenElse(hn::RebindMask(du, is_nan), quiet_nan, rounded));
  return hn::DemoteTo(du16, hn::BitCast(di, result));  // values fit in 16 bits: no saturation
}

/// f32 lanes -> f16 bit patterns (as u16), round to nearest even, overflow to inf, subnormals exact.
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<std::uint16_t, DF>> narrow_to_f16(DF df, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<std::uint16_t, DF> du16;
  const auto bits = hn::BitCast(du, v);
  const auto sign = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 0x8000u));
  const auto abs_bits = hn::And(bits, hn::Set(du, 0x7fffffffu));
  const auto abs_i = hn::BitCast(di, abs_bits);
  // Normal halves: rebias the exponent and round the 13 dropped bits (a carry is a correct round-up).
  const auto rebased = hn::Sub(abs_bits, hn::Set(du, (127u - 15u) << 23));
  const auto normal = hn::ShiftRight<13>(
      hn::Add(rebased, hn::Add(hn::Set(du, 0xfffu), hn::And(hn::ShiftRight<13>(rebased), hn::Set(du, 1)))));
  // Subnormal halves: adding 0.5 puts the unit 2^-24 in the last mantissa bit, so the FPU's own
  // round-to-nearest-even does the rounding; subtracting 0.5's bits leaves the half's mantissa.
  const auto shifted = hn::BitCast(du, hn::Add(hn::BitCast(df, abs_bits), hn::Set(df, 0.5f)));
  const auto subnormal = hn::Sub(shifted, hn::Set(du, 0x3f000000u));
  const auto nan = hn::Or(hn::Set(du, 0x7e00u), hn::And(hn::ShiftRight<13>(abs_bits), hn::Set(du, 0x1ffu)));
  auto result = hn::IfThenElse(hn::RebindMask(du, hn::Lt(abs_i, hn::Set(di, 0x38800000))), subnormal, normal);
  result = hn::IfThenElse(hn::RebindMask(du, hn::Gt(abs_i, hn::Set(di, 0x477fefff))), hn::Set(du, 0x7c00u), result);
  result = hn::IfThenElse(hn::RebindMask(du, hn::Gt(abs_i, hn::Set(di, 0x7f800000))), nan, result);
  return hn::DemoteTo(du16, hn::BitCast(di, hn::Or(result, sign)));
}

template <class Narrow>
HWY_INLINE void narrow_array(const float* in, std::uint16_t* out, std::size_t n, const Narrow& narrow) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<std::uint16_t, decltype(df)> du16;
  const std::size_t lanes = hn::Lanes(df);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(narrow(df, hn::LoadU(df, in + i)), du16, out + i);
  if (i < n) {
    // Stage the tail through a full-width buffer: 16-bit blended stores are not on every target.
    HWY_ALIGN float staged_in[hn::MaxLanes(df)] = {};
    HWY_ALIGN std::uint16_t staged_out[hn::MaxLanes(df)];
    for (std::size_t j = 0; j < n - i; ++j) staged_in[j] = in[i + j];
    hn::Store(narrow(df, hn::Load(df, staged_in)), du16, staged_out);
    for (std::size_t j = 0; j < n - i; ++j) out[i + j] = staged_out[j];
  }
}

template <class Widen>
HWY_INLINE void widen_array(const std::uint16_t* in, float* out, std::size_t n, const Widen& widen) {
  const hn::ScalableTag<float> df;
  const std::size_t lanes = hn::Lanes(df);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(widen(df, in + i), df, out + i);
  if (i < n) {
    HWY_ALIGN std::uint16_t staged_in[hn::MaxLanes(df)] = {};
    for (std::size_t j = 0; j < n - i; ++j) staged_in[j] = in[i + j];
    store_tail(widen(df, staged_in), df, out + i, n - i);
  }
}

inline void f32_to_bf16(const float* in, std::uint16_t* out, std::size_t n) {
  narrow_array(in, out, n, [](auto df, auto v) HWY_ATTR { return narrow_to_bf16(df, v); });
}
inline void f32_to_f16(const float* in, std::uint16_t* out, std::size_t n) {
  narrow_array(in, out, n, [](auto df, auto v) HWY_ATTR { return narrow_to_f16(df, v); });
}
inline void bf16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  widen_array(in, out, n, [](auto df, const std::uint16_t* p) HWY_ATTR { return load_bf16(df, p); });
}
inline void f16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  widen_array(in, out, n, [](auto df, const std::uint16_t* p) HWY_ATTR { return load_f16(df, p); });
}

}  // namespace lmkit::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
