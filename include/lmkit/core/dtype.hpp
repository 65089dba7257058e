// Element types: f32, and the two 16-bit floats, bf16 and f16, with exact conversions.
// Narrowing rounds to nearest, ties to even, as IEEE 754 and PyTorch do; NaN stays NaN.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lmkit {

/// bfloat16: the top half of an IEEE binary32. Layout-compatible with hwy::bfloat16_t.
struct bf16 {
  std::uint16_t bits = 0;

  static constexpr bf16 from_bits(std::uint16_t b) { return bf16{b}; }

  static constexpr bf16 from_float(float f) {
    std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      // NaN: keep the sign and the top payload bits, force a quiet bit so it cannot become inf.
      return bf16{static_cast<std::uint16_t>((u >> 16) | 0x0040u)};
    }
    // Adding 0x7fff plus the lowest kept bit rounds to nearest with ties to even; a carry into
    // the exponent is exactly the right rounding up to the next binade (or to infinity).
    std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return bf16{static_cast<std::uint16_t>((u + rounding) >> 16)};
  }

  constexpr float to_float() const { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }
  explicit constexpr operator float() const { return to_float(); }
  friend constexpr bool operator==(bf16, bf16) = default;
};

/// IEEE 754 binary16. Layout-compatible with hwy::float16_t.
struct f16 {
  std::uint16_t bits = 0;

  static constexpr f16 from_bits(std::uint16_t b) { return f16{b}; }

  static constexpr f16 from_float(float f) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    const std::uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return f16{static_cast<std::uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x1ffu))};
    if (abs >= 0x477ff000u) return f16{static_cast<std::uint16_t>(sign | 0x7c00u)};  // rounds to >= 65520: inf
    if (abs < 0x38800000u) {
      // Below the smallest normal half (2^-14): the result is subnormal or zero. Scale the
      // mantissa (with its implicit bit) so that bit 0 of the result has weight 2^-24, and round.
      if (abs < 0x33000000u) return f16{sign};  // below half of 2^-24: rounds to zero (ties too)
      const std::uint32_t exponent = abs >> 23;
      const std::uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
      const std::uint32_t shift = 126u - exponent;  // 14..24 for exponents 112..102
      std::uint32_t half = mantissa >> shift;
      const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
      const std::uint32_t midpoint = 1u << (shift - 1u);
      if (rest > midpoint || (rest == midpoint && (half & 1u))) ++half;
      return f16{static_cast<std::uint16_t>(sign | half)};
    }
    // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits; a carry
    // ripples correctly into the exponent.
    const std::uint32_t rebased = abs - ((127u - 15u) << 23);
    const std::uint32_t rounded = rebased + 0xfffu + ((rebased >> 13) & 1u);
    return f16{static_cast<std::uint16_t>(sign | (rounded >> 13))};
  }

  constexpr float to_float() const {
    const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
    const std::uint32_t exponent = (bits >> 10) & 0x1fu;
    std::uint32_t mantissa = bits & 0x3ffu;
    if (exponent == 0x1fu) {  // inf, or NaN made quiet (as F16C hardware widens it)
      return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13) | (mantissa ? 0x00400000u : 0u));
    }
    if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    if (mantissa == 0) return std::bit_cast<float>(sign);
    // Subnormal half: normalise the mantissa into a float exponent.
    std::uint32_t e = 113u;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    return std::bit_cast<float>(sign | (e << 23) | ((mantissa & 0x3ffu) << 13));
  }
  explicit constexpr operator float() const { return to_float(); }
  friend constexpr bool operator==(f16, f16) = default;
};

static_assert(sizeof(bf16) == 2 && sizeof(f16) == 2);

/// Run-time tag for the element types, used where types cross a file or a dispatch boundary.
/// A token's index in a vocabulary: what tokenizers produce and models consume.
using token_id = std::uint32_t;

enum class dtype : std::uint8_t { f32, f16, bf16 };

constexpr std::size_t size_of(dtype t) { return t == dtype::f32 ? 4 : 2; }

constexpr std::string_view name_of(dtype t) {
  switch (t) {
    case dtype::f32: return "f32";
    case dtype::f16: return "f16";
    case dtype::bf16: return "bf16";
  }
  return "?";
}

template <class T>
inline constexpr bool is_element_type_v = false;
template <>
inline constexpr bool is_element_type_v<float> = true;
template <>
inline constexpr bool is_element_type_v<bf16> = true;
template <>
inline constexpr bool is_element_type_v<f16> = true;

template <class T>
  requires is_element_type_v<T>
inline constexpr dtype dtype_of = std::is_same_v<T, float> ? dtype::f32 : std::is_same_v<T, bf16> ? dtype::bf16 : dtype::f16;

/// Widens any element type to float (identity for float).
constexpr float to_float(float x) { return x; }
constexpr float to_float(bf16 x) { return x.to_float(); }
constexpr float to_float(f16 x) { return x.to_float(); }

/// Narrows a float to the element type T, rounding to nearest even.
template <class T>
constexpr T from_float(float x) {
  if constexpr (std::is_same_v<T, float>) return x;
  else return T::from_float(x);
}

}  // namespace lmkit
