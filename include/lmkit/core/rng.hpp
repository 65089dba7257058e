// A counter-based random number generator: Philox4x32-10 (Salmon et al., SC'11, "Parallel random
// numbers: as easy as 1, 2, 3"). Value i of a stream is a pure function of (seed, stream, i), so a
// thread may jump to any position: results never depend on the thread count or the call order.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

namespace lmkit {

/// A seed, as a type, so that constructors taking one cannot be confused with sizes.
struct seed {
  std::uint64_t value = 0;
};

/// The Philox4x32 block function with 10 rounds: 128-bit counter, 64-bit key -> 128 random bits.
constexpr std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> counter,
                                                     std::array<std::uint32_t, 2> key) {
  constexpr std::uint32_t multiplier0 = 0xD2511F53u, multiplier1 = 0xCD9E8D57u;
  constexpr std::uint32_t weyl0 = 0x9E3779B9u, weyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t product0 = std::uint64_t{multiplier0} * counter[0];
    const std::uint64_t product1 = std::uint64_t{multiplier1} * counter[2];
    counter = {static_cast<std::uint32_t>(product1 >> 32) ^ counter[1] ^ key[0], static_cast<std::uint32_t>(product1),
               static_cast<std::uint32_t>(product0 >> 32) ^ counter[3] ^ key[1], static_cast<std::uint32_t>(product0)};
    key[0] += weyl0;
    key[1] += weyl1;
  }
  return counter;
}

/// A stream of random numbers addressed by position. Satisfies std::uniform_random_bit_generator,
/// and its whole state is three integers (seed, stream, position) that a checkpoint can store.
class philox {
 public:
  using result_type = std::uint32_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  constexpr philox() = default;
  constexpr explicit philox(seed s, std::uint64_t stream = 0, std::uint64_t position = 0)
      : seed_(s.value), stream_(stream), position_(position) {}

  /// The 32-bit value at `index` of this stream, without moving the position.
  constexpr result_type at(std::uint64_t index) const {
    return block(index / 4)[static_cast<std::size_t>(index % 4)];
  }

  /// Values 4 * block_index .. 4 * block_index + 3 of this stream at once (one Philox block).
  constexpr std::array<result_type, 4> block_at(std::uint64_t block_index) const { return block(block_index); }

  /// The next 32-bit value.
  constexpr result_type operator()() { return at(position_++); }

  /// A uniform float in [0, 1) with 24 random bits.
  constexpr float uniform() { return static_cast<float>((*this)() >> 8) * 0x1p-24f; }

  /// A uniform double in [0, 1) with 53 random bits.
  constexpr double uniform_double() {
    const std::uint64_t high = (*this)() >> 5, low = (*this)() >> 6;
    return static_cast<double>((high << 26) | low) * 0x1p-53;
  }

  /// A standard normal deviate (Box-Muller; uses two uniforms, so it is stateless between calls).
  double normal() {
    const double u1 = 1.0 - uniform_double();  // (0, 1]: log is finite
    const double u2 = uniform_double();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

  /// An independent stream from the same seed (for a layer, a worker, a data shard).
  constexpr philox split(std::uint64_t stream) const { return philox(seed{seed_}, stream, 0); }

  constexpr std::uint64_t seed_value() const { return seed_; }
  constexpr std::uint64_t stream() const { return stream_; }
  constexpr std::uint64_t position() const { return position_; }
  constexpr void set_position(std::uint64_t position) { position_ = position; }
  constexpr void discard(std::uint64_t n) { position_ += n; }

  friend constexpr bool operator==(const philox&, const philox&) = default;

 private:
  constexpr std::array<std::uint32_t, 4> block(std::uint64_t block_index) const {
    // Counter = (block index, stream); key = seed.
    return philox4x32_10({static_cast<std::uint32_t>(block_index), static_cast<std::uint32_t>(block_index >> 32),
                          static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)},
                         {static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)});
  }

  std::uint64_t seed_ = 0;
  std::uint64_t stream_ = 0;
  std::uint64_t position_ = 0;
};

}  // namespace lmkit
