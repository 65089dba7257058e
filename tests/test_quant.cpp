// Quantised weights (GGUF Q8_0 / Q4_0): the quantisers bit for bit against ggml's reference
// definitions (kernels/reference.hpp), the dequantisers exactly, and matmul_weights for every
// weight type against the scalar reference on every Highway target (and on AVX-512 both with and
// without VNNI), over awkward shapes, strides and misaligned weights; 1 and 2 threads give the same bits.
#include <algorithm>
#include <cstring>
#include <span>

#include "lmkit/core/weight_matrix.hpp"
#include "lmkit/kernels/reference.hpp"
#include "test_support.hpp"

using namespace lmkit;
namespace ref = lmkit::kernels::reference;
using test::on_every_target;
using test::random_floats;

namespace {

/// on_every_target, then once more on AVX-512 with VNNI switched off where the CPU has both, so that
/// both integer dot-product paths run. Returns the paths run.
template <class Check>
std::vector<std::string> on_every_path(Check&& check) {
  auto ran = on_every_target(check);
  const bool has_avx3 = std::find(ran.begin(), ran.end(), "AVX3") != ran.end();
  if (has_avx3 && __builtin_cpu_supports("avx512vnni")) {
    kernels::detail::quant_vnni_allowed = false;
    hwy::SetSupportedTargetsForTest(HWY_AVX3);
    INFO("AVX3 without VNNI");
    REQUIRE(std::string(kernels::active_target()) == "AVX3");
    check();
    hwy::SetSupportedTargetsForTest(0);
    kernels::detail::quant_vnni_allowed = true;
    ran.push_back("AVX3 without VNNI");
  }
  return ran;
}

/// Blocks whose values exercise the definitions' edges: zeros (and negative zeros), exact halves
/// for roundf, the largest magnitude twice with either sign, tiny and huge scales, and plain noise.
std::vector<float> awkward_blocks() {
  std::vector<float> v;
  auto block = [&](auto f) {
    for (int i = 0; i < 32; ++i) v.push_back(f(i));
  };
  block([](int) { return 0.0f; });
  block([](int i) { return i % 2 ? -0.0f : 0.0f; });
  block([](int) { return -0.0f; });
  // amax = 127: d = 1, id = 1, so x * id = x; halves round away from zero.
  block([](int i) { return i == 0 ? 127.0f : static_cast<float>(i - 16) + 0.5f; });
  block([](int i) { return i == 5 ? -127.0f : -static_cast<float>(i) * 0.5f; });
  // Q4_0: max = -8 gives d = 1; x + 8.5 on exact quarters and halves.
  block([](int i) { return i == 3 ? -8.0f : -8.0f + static_cast<float>(i) * 0.5f; });
  block([](int i) { return i == 0 ? 8.0f : static_cast<float>(i % 17) - 8.25f; });
  // The same magnitude with both signs: the first one sets Q4_0's sign.
  block([](int i) { return i == 4 ? -3.0f : i == 9 ? 3.0f : 0.05f * static_cast<float>(i); });
  block([](int i) { return i == 4 ? 3.0f : i == 9 ? -3.0f : -0.05f * static_cast<float>(i); });
  // One value only.
  block([](int i) { return i == 31 ? 0.75f : 0.0f; });
  // Scales below f16's normals, and above its range (d becomes inf in f16).
  block([](int i) { return 1e-6f * static_cast<float>(i - 10); });
  block([](int i) { return 1e-9f * static_cast<float>(i - 10); });
  block([](int i) { return 1e7f * static_cast<float>(i - 10); });
  const auto noise = random_floats(32 * 64, 7, -3.0f, 3.0f);
  v.insert(v.end(), noise.begin(), noise.end());
  const auto wide = random_floats(32 * 16, 8, -1000.0f, 1000.0f);
  v.insert(v.end(), wide.begin(), wide.end());
  return v;
}

/// A weight matrix of `type` with random weights, stored `offset` bytes past an aligned address.
struct stored_weights {
  stored_weights(weight_type type, std::size_t rows, std::size_t cols, std::uint64_t stream, std::size_t offset)
      : bytes(row_bytes(type, cols) * rows + offset + 64) {
    const auto values = random_floats(rows * cols, stream);
    unsigned char* data = bytes.data() + offset;
    const std::size_t blocks = cols / 32;
    for (std::size_t r = 0; r < rows; ++r) {
      const float* row = values.data() + r * cols;
      unsigned char* out = data + r * row_bytes(type, cols);
      switch (type) {
        case weight_type::f32: std::memcpy(out, row, cols * 4); break;
        case weight_type::f16:
          for (std::size_t c = 0; c < cols; ++c) {
            const auto h = f16::from_float(row[c]);
            std::memcpy(out + 2 * c, &h, 2);
          }
          break;
        case weight_type::bf16:
          for (std::size_t c = 0; c < cols; ++c) {
            const auto h = bf16::from_float(row[c]);
            std::memcpy(out + 2 * c, &h, 2);
          }
          break;
        case weight_type::q8_0: {
          std::vector<block_q8_0> q(blocks);
          ref::quantize_q8_0(row, q.data(), blocks);
          if (blocks) std::memcpy(out, q.data(), blocks * sizeof(block_q8_0));
          break;
        }
        case weight_type::q4_0: {
          std::vector<block_q4_0> q(blocks);
          ref::quantize_q4_0(row, q.data(), blocks);
          if (blocks) std::memcpy(out, q.data(), blocks * sizeof(block_q4_0));
          break;
        }
      }
    }
    matrix = {type, data, rows, cols};
  }
  aligned_buffer<unsigned char> bytes;
  weight_matrix matrix;
};

/// matmul_weights against the reference: x with padded rows, y with padded rows left untouched.
void check_matmul(weight_type type, std::size_t m, std::size_t rows, std::size_t cols, std::size_t offset,
                  const thread_pool& pool) {
  INFO(name_of(type) << " m " << m << " rows " << rows << " cols " << cols << " weight offset " << offset);
  const stored_weights w(type, rows, cols, 100 + rows + cols, offset);
  const std::size_t ldx = cols + 3, ldy = rows + 2;
  // Activations with a few large values, as transformer activations have.
  auto x = random_floats(m * ldx + 1, 200 + m, -2.0f, 2.0f);
  for (std::size_t i = 0; i < x.size(); i += 97) x[i] *= 30.0f;
  std::vector<float> y(m * ldy + 1, -7.0f), expected(m * ldy + 1, -7.0f);
  kernels::matmul_weights(x.data() + 1, m, ldx, w.matrix, y.data() + 1, ldy, pool);
  std::vector<double> magnitude;
  ref::matmul_weights(x.data() + 1, m, ldx, w.matrix, expected.data() + 1, ldy, &magnitude);
  const double unit = 0x1p-24;
  const std::size_t terms = is_block_type(type) ? cols / 32 + 8 : cols + 2;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t r = 0; r < ldy && 1 + i * ldy + r < y.size(); ++r) {
      const float got = y[1 + i * ldy + r], want = expected[1 + i * ldy + r];
      if (r >= rows) {
        REQUIRE(got == -7.0f);  // padding between rows of y is never written
        continue;
      }
      INFO("y[" << i << "][" << r << "] = " << got << ", reference " << want);
      REQUIRE(std::abs(got - want) <= 2.0 * terms * unit * magnitude[i * rows + r] + 1e-30);
    }
}

}  // namespace

TEST_CASE("weight types: names and row sizes", "[quant]") {
  REQUIRE(name_of(weight_type::q8_0) == "q8_0");
  REQUIRE(name_of(weight_type::q4_0) == "q4_0");
  REQUIRE(name_of(weight_type::bf16) == "bf16");
  REQUIRE(row_bytes(weight_type::f32, 10) == 40);
  REQUIRE(row_bytes(weight_type::f16, 10) == 20);
  REQUIRE(row_bytes(weight_type::q8_0, 64) == 68);
  REQUIRE(row_bytes(weight_type::q4_0, 768) == 24 * 18);
  REQUIRE_THROWS_AS(row_bytes(weight_type::q4_0, 33), shape_error);
}

TEST_CASE("quantize_q8_0 and quantize_q4_0 equal ggml's reference definitions bit for bit", "[quant]") {
  const auto x = awkward_blocks();
  const std::size_t blocks = x.size() / 32;
  std::vector<block_q8_0> want8(blocks);
  std::vector<block_q4_0> want4(blocks);
  ref::quantize_q8_0(x.data(), want8.data(), blocks);
  ref::quantize_q4_0(x.data(), want4.data(), blocks);
  // Spot checks of the definitions themselves: halves away from zero, the first extreme's sign.
  REQUIRE(want8[3].d.to_float() == 1.0f);
  REQUIRE(want8[3].qs[1] == -15);  // -14.5 -> -15
  REQUIRE(want8[3].qs[16] == 1);   // 0.5 -> 1
  REQUIRE(want4[7].d.to_float() == 3.0f / 8.0f);  // max = -3 (first), d = -3 / -8
  REQUIRE(want4[8].d.to_float() == -3.0f / 8.0f);
  REQUIRE(want4[0].d.bits == 0x8000);  // all zeros: d = 0 / -8 = -0
  on_every_target([&] {
    std::vector<block_q8_0> got8(blocks);
    std::vector<block_q4_0> got4(blocks);
    kernels::quantize_q8_0(x, got8);
    kernels::quantize_q4_0(x, got4);
    for (std::size_t b = 0; b < blocks; ++b) {
      INFO("block " << b);
      REQUIRE(std::memcmp(&got8[b], &want8[b], sizeof(block_q8_0)) == 0);
      REQUIRE(std::memcmp(&got4[b], &want4[b], sizeof(block_q4_0)) == 0);
    }
  });
}

TEST_CASE("dequantize and dequantize_row widen exactly, from any alignment", "[quant]") {
  const auto x = awkward_blocks();
  const std::size_t blocks = x.size() / 32;
  std::vector<block_q8_0> q8(blocks);
  std::vector<block_q4_0> q4(blocks);
  ref::quantize_q8_0(x.data(), q8.data(), blocks);
  ref::quantize_q4_0(x.data(), q4.data(), blocks);
  std::vector<float> want8(x.size()), want4(x.size());
  ref::dequantize(q8.data(), want8.data(), blocks);
  ref::dequantize(q4.data(), want4.data(), blocks);
  on_every_target([&] {
    std::vector<float> got(x.size());
    kernels::dequantize(std::span<const block_q8_0>(q8), got);
    REQUIRE(std::memcmp(got.data(), want8.data(), got.size() * 4) == 0);
    kernels::dequantize(std::span<const block_q4_0>(q4), got);
    REQUIRE(std::memcmp(got.data(), want4.data(), got.size() * 4) == 0);
    for (weight_type type : {weight_type::f32, weight_type::f16, weight_type::bf16, weight_type::q8_0, weight_type::q4_0})
      for (std::size_t offset : {0, 1, 3}) {
        INFO(name_of(type) << " offset " << offset);
        const stored_weights w(type, 5, 96, 11, type == weight_type::f32 ? 4 * offset : offset);
        std::vector<float> row(96);
        for (std::size_t r = 0; r < 5; ++r) {
          kernels::dequantize_row(w.matrix, r, row);
          for (std::size_t c = 0; c < 96; ++c) REQUIRE(row[c] == ref::weight_element(w.matrix, r, c));
        }
      }
  });
}

TEST_CASE("matmul_weights equals the reference for every weight type and shape", "[quant][matmul]") {
  const thread_pool two(2);
  const auto ran = on_every_path([&] {
    for (weight_type type : {weight_type::q8_0, weight_type::q4_0}) {
      for (std::size_t m : {1, 2, 3, 7})
        for (std::size_t rows : {1, 2, 3, 4, 5, 8, 13, 67})
          for (std::size_t cols : {32, 64, 96, 160, 1024}) check_matmul(type, m, rows, cols, (m + rows) % 3, two);
      for (std::size_t m : {8, 16, 17, 33, 128})
        for (std::size_t rows : {1, 3, 4, 9, 67})
          for (std::size_t cols : {32, 96, 512}) check_matmul(type, m, rows, cols, (m + rows) % 3, two);
      check_matmul(type, 0, 5, 64, 0, two);
      check_matmul(type, 3, 0, 64, 0, two);
      check_matmul(type, 3, 5, 0, 0, two);
    }
    for (weight_type type : {weight_type::f32, weight_type::f16, weight_type::bf16})
      // m > 1: the direct tiles below two vectors of rows, panels from there (whole, partial and
      // one-vector last panels; whole and partial weight blocks of 6 / 14 rows)
      for (std::size_t m : {1, 2, 4, 5, 17, 24, 40, 50, 128})
        for (std::size_t rows : {1, 6, 7, 12, 15, 29, 67})
          for (std::size_t cols : {1, 33, 100, 768}) check_matmul(type, m, rows, cols, type == weight_type::f32 ? 0 : 2, two);
    // Deep enough that the panels of 100 rows exceed a pass (1 MiB): several passes over A.
    for (weight_type type : {weight_type::f32, weight_type::f16})
      check_matmul(type, 100, 29, 8200, type == weight_type::f32 ? 0 : 2, two);
  });
  std::string list;
  for (const auto& name : ran) list += name + ", ";
  WARN("matmul_weights tested on: " << list);
}

TEST_CASE("matmul_weights gives identical bits with 1 and 2 threads", "[quant][matmul][threads]") {
  const thread_pool one(1), two(2);
  on_every_path([&] {
    for (weight_type type : {weight_type::q8_0, weight_type::q4_0, weight_type::f16, weight_type::f32})
      for (std::size_t m : {1, 3, 40}) {
        INFO(name_of(type) << " m " << m);
        const std::size_t rows = 517, cols = 768;
        const stored_weights w(type, rows, cols, 5, is_block_type(type) ? 1 : type == weight_type::f32 ? 4 : 2);
        const auto x = random_floats(m * cols, 6);
        std::vector<float> y1(m * rows), y2(m * rows);
        kernels::matmul_weights(x.data(), m, cols, w.matrix, y1.data(), rows, one);
        kernels::matmul_weights(x.data(), m, cols, w.matrix, y2.data(), rows, two);
        REQUIRE(std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0);
      }
  });
}

TEST_CASE("quantised kernels check their arguments", "[quant]") {
  std::vector<float> x(64), y(4);
  std::vector<block_q8_0> q8(3);
  std::vector<block_q4_0> q4(1);
  REQUIRE_THROWS_AS(kernels::quantize_q8_0(x, q8), shape_error);
  REQUIRE_THROWS_AS(kernels::quantize_q4_0(x, q4), shape_error);
  REQUIRE_THROWS_AS(kernels::dequantize(std::span<const block_q8_0>(q8), x), shape_error);
  const stored_weights w(weight_type::q8_0, 4, 64, 1, 0);
  REQUIRE_THROWS_AS(kernels::matmul_weights(x.data(), 1, 64, {weight_type::q8_0, w.matrix.data, 4, 48}, y.data(), 4),
                    shape_error);
  REQUIRE_THROWS_AS(kernels::matmul_weights(x.data(), 1, 64, {weight_type::q8_0, nullptr, 4, 64}, y.data(), 4),
                    argument_error);
  REQUIRE_THROWS_AS(kernels::matmul_weights(x.data(), 2, 32, w.matrix, y.data(), 4), shape_error);  // ldx < cols
  REQUIRE_THROWS_AS(kernels::matmul_weights(x.data(), 2, 64, w.matrix, y.data(), 2), shape_error);  // ldy < rows
  REQUIRE_THROWS_AS(kernels::matmul_weights(nullptr, 1, 64, w.matrix, y.data(), 4), argument_error);
  std::vector<float> row(64);
  REQUIRE_THROWS_AS(kernels::dequantize_row(w.matrix, 4, row), argument_error);
  REQUIRE_THROWS_AS(kernels::dequantize_row(w.matrix, 0, std::span<float>(row).first(32)), shape_error);
}

TEST_CASE("a block with inf or NaN quantises to zeros with a NaN scale, never an undefined conversion", "[quant]") {
  on_every_path([] {
    for (const float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN()}) {
      std::vector<float> x(64, 0.5f);
      x[40] = bad;  // the second block
      std::vector<block_q8_0> q8(2);
      std::vector<block_q4_0> q4(2);
      kernels::quantize_q8_0(x, q8);
      kernels::quantize_q4_0(x, q4);
      CHECK(std::isnan(q8[1].d.to_float()));
      CHECK(std::isnan(q4[1].d.to_float()));
      CHECK(std::all_of(std::begin(q8[1].qs), std::end(q8[1].qs), [](std::int8_t v) { return v == 0; }));
      CHECK(std::all_of(std::begin(q4[1].qs), std::end(q4[1].qs), [](std::uint8_t v) { return v == 0x88; }));
      CHECK(q8[0].d.to_float() > 0.0f);  // the finite block is untouched
      // As activations: the product of that row is NaN, the other rows' are finite.
      const stored_weights w(weight_type::q8_0, 3, 64, 9, 0);
      std::vector<float> xs(2 * 64, 0.25f), y(2 * 3);
      std::copy(x.begin(), x.end(), xs.begin());
      kernels::matmul_weights(xs.data(), 2, 64, w.matrix, y.data(), 3);
      CHECK(std::isnan(y[0]));
      CHECK(std::isfinite(y[3]));
    }
  });
}
