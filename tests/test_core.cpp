// core/: extents and tensors, the 16-bit float types (exhaustively), the counter-based RNG,
// errors, mapped and atomically written files, the thread pool's determinism; and the examples'
// run_tool (their main's error handling).
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <numeric>
#include <set>
#include <stdexcept>
#include <utility>

#include "lmkit/core/atomic_file.hpp"
#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/float_text.hpp"
#include "lmkit/core/mapped_file.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/core/tensor.hpp"
#include "../examples/cli_main.hpp"
#include "test_support.hpp"

using namespace lmkit;

TEST_CASE("extents mix static and dynamic sizes", "[core][tensor]") {
  using mixed = extents<dynamic, 768, dynamic>;
  static_assert(mixed::rank() == 3 && mixed::rank_dynamic() == 2);
  static_assert(sizeof(extents<4, 5>) == 1);  // static extents take no storage
  const mixed e(2, 5);
  REQUIRE(e.extent(0) == 2);
  REQUIRE(e.extent(1) == 768);
  REQUIRE(e.extent(2) == 5);
  REQUIRE(e.size() == 2 * 768 * 5);
  REQUIRE(mixed(2, 768, 5) == e);                       // all extents given: the static one is checked
  REQUIRE_THROWS_AS(mixed(2, 767, 5), shape_error);     // ... and must agree
  REQUIRE_THROWS_AS(dims<2>(-1, 3), shape_error);
  constexpr extents<3, 4> fixed;
  static_assert(fixed.size() == 12);
  const dims<2> as_dynamic(fixed);                       // static -> dynamic: always fine
  REQUIRE(as_dynamic.extent(1) == 4);
  REQUIRE_THROWS_AS((extents<3, 5>(dims<2>(3, 4))), shape_error);  // dynamic -> static: checked
  REQUIRE(extents<>{}.size() == 1);
}

TEST_CASE("tensors own aligned storage and views index it", "[core][tensor]") {
  tensor<float, extents<dynamic, 7>> t(5);
  REQUIRE(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  REQUIRE(t.size() == 35);
  REQUIRE(std::all_of(t.data(), t.data() + t.size(), [](float v) { return v == 0.0f; }));
  for (std::size_t i = 0; i < 5; ++i)
    for (std::size_t j = 0; j < 7; ++j) t(i, j) = static_cast<float>(10 * i + j);
  REQUIRE(t.data()[3 * 7 + 2] == 32.0f);

  auto row = t[3];
  static_assert(decltype(row)::rank() == 1);
  REQUIRE(row.extent(0) == 7);
  REQUIRE(row(4) == 34.0f);
  REQUIRE_THROWS_AS(t.at(5, 0), shape_error);
  REQUIRE_THROWS_AS(t.at(0, 7), shape_error);

  tensor_view<const float, dims<2>> dynamic_view = t.view();  // static -> dynamic, non-const -> const
  REQUIRE(dynamic_view(4, 6) == 46.0f);
  REQUIRE(dynamic_view.is_contiguous());
  REQUIRE(dynamic_view.span().size() == 35);

  // A strided view of column 2: rows apart by 7.
  tensor_view<float, dims<1>> column(t.data() + 2, dims<1>(5), {7});
  REQUIRE_FALSE(column.is_contiguous());
  REQUIRE(column(3) == 32.0f);
  REQUIRE_THROWS_AS(column.span(), shape_error);

  const tensor<float, dims<3>> empty(0, 4, 2);
  REQUIRE(empty.empty());
  tensor<float, extents<2, 3>> fixed;
  fixed(1, 2) = 1.5f;
  const auto fixed_again = tensor_view<float, extents<2, 3>>(tensor_view<float, dims<2>>(fixed.view()));
  REQUIRE(fixed_again(1, 2) == 1.5f);

  tensor<float, dims<2>> copy_source(2, 2);
  copy_source(1, 1) = 3.0f;
  auto copy = copy_source;
  copy(1, 1) = 4.0f;
  REQUIRE(copy_source(1, 1) == 3.0f);  // owning: a copy is deep
}

namespace {
// Independent decoding of a binary16 pattern from its definition.
double decode_f16(std::uint16_t bits) {
  const int sign = bits >> 15, exponent = (bits >> 10) & 31, mantissa = bits & 1023;
  double magnitude;
  if (exponent == 31) magnitude = mantissa ? NAN : INFINITY;
  else if (exponent == 0) magnitude = std::ldexp(mantissa, -24);
  else magnitude = std::ldexp(1024 + mantissa, exponent - 25);
  return sign ? -magnitude : magnitude;
}
double decode_bf16(std::uint16_t bits) {
  const int sign = bits >> 15, exponent = (bits >> 7) & 255, mantissa = bits & 127;
  double magnitude;
  if (exponent == 255) magnitude = mantissa ? NAN : INFINITY;
  else if (exponent == 0) magnitude = std::ldexp(mantissa, -133);
  else magnitude = std::ldexp(128 + mantissa, exponent - 134);
  return sign ? -magnitude : magnitude;
}

/// For every pattern: widening equals the definition; narrowing the widened value gives the
/// pattern back; the midpoint to the next pattern rounds to the even one of the two, and the
/// floats just either side of it round down and up. Checks round-to-nearest-even exhaustively.
template <class Half>
void check_all_patterns(double (*decode)(std::uint16_t), double largest_finite, double next_after_largest) {
  for (std::uint32_t p = 0; p < 65536; ++p) {
    const auto bits = static_cast<std::uint16_t>(p);
    const Half h = Half::from_bits(bits);
    const double exact = decode(bits);
    INFO("pattern " << p);
    if (std::isnan(exact)) {
      REQUIRE(std::isnan(h.to_float()));
      REQUIRE(std::isnan(Half::from_float(h.to_float()).to_float()));
      continue;
    }
    REQUIRE(static_cast<double>(h.to_float()) == exact);
    if (!(exact == 0 && std::signbit(exact) != std::signbit(h.to_float())))
      REQUIRE(Half::from_float(h.to_float()) == h);
    if (std::isinf(exact) || std::signbit(exact)) continue;  // negatives mirror positives through the sign bit
    const double next = exact == largest_finite ? next_after_largest : decode(static_cast<std::uint16_t>(p + 1));
    const double mid = (exact + next) / 2;  // exactly representable in float: one more bit than Half
    const auto up = Half::from_float(static_cast<float>(next));
    const Half even = (p & 1) ? up : h;
    REQUIRE(static_cast<double>(static_cast<float>(mid)) == mid);
    const Half infinity = Half::from_float(INFINITY);
    const bool overflows = next == next_after_largest;  // beyond the largest finite value lies infinity
    REQUIRE(Half::from_float(static_cast<float>(mid)).bits == (overflows ? infinity.bits : even.bits));
    REQUIRE(Half::from_float(std::nextafter(static_cast<float>(mid), 0.0f)) == h);
    REQUIRE(Half::from_float(std::nextafter(static_cast<float>(mid), INFINITY)).bits ==
            (overflows ? infinity.bits : up.bits));
    REQUIRE(Half::from_float(static_cast<float>(-mid)).bits == (Half::from_float(static_cast<float>(mid)).bits | 0x8000));
  }
}
}  // namespace

TEST_CASE("f16 conversions round to nearest even on all 65536 patterns", "[core][dtype]") {
  check_all_patterns<f16>(decode_f16, 65504.0, 65536.0);
  REQUIRE(f16::from_float(65519.0f).bits == 0x7bff);
  REQUIRE(f16::from_float(65520.0f).bits == 0x7c00);
  REQUIRE(f16::from_float(1e-8f).bits == 0);  // below half the smallest subnormal
  REQUIRE(f16::from_float(-0.0f).bits == 0x8000);
}

TEST_CASE("bf16 conversions round to nearest even on all 65536 patterns", "[core][dtype]") {
  check_all_patterns<bf16>(decode_bf16, decode_bf16(0x7f7f), std::ldexp(1.0, 128));
  REQUIRE(bf16::from_float(1.0f + 0x1p-8f).bits == 0x3f80);  // tie: to even (down)
  REQUIRE(bf16::from_float(1.0f + 0x1p-8f + 0x1p-23f).bits == 0x3f81);
  REQUIRE(bf16::from_float(1.0f + 3 * 0x1p-8f).bits == 0x3f82);  // tie: to even (up)
}

TEST_CASE("floats as text read back to the same bits; only whole numbers parse", "[core][float_text]") {
  // Random bit patterns over every exponent (NaNs aside), and the edges: denormals, the largest float.
  lmkit::philox rng(lmkit::seed{5});
  std::size_t checked = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto bits = static_cast<std::uint32_t>(rng());
    float x;
    std::memcpy(&x, &bits, sizeof x);
    if (!std::isfinite(x)) continue;
    const auto back = lmkit::parse_float(lmkit::shortest_text(x));
    REQUIRE(back.has_value());
    std::uint32_t back_bits;
    std::memcpy(&back_bits, &*back, sizeof back_bits);
    CHECK(back_bits == bits);
    ++checked;
  }
  CHECK(checked > 19000);
  for (const float x : {1e-7f, 0.1f, 0.123456789f, 1.17549435e-38f, 1.4e-45f, 3.40282347e38f, -0.0f}) {
    INFO(x);
    CHECK(lmkit::parse_float(lmkit::shortest_text(x)) == x);
  }
  CHECK(lmkit::shortest_text(1e-7f) == "1e-07");
  CHECK(lmkit::shortest_text(0.1f) == "0.1");
  for (const char* bad : {"", "0.2x", " 1", "1 ", "0,5", "1e99", "--1", "e5"}) {
    INFO(bad);
    CHECK_FALSE(lmkit::parse_float(bad).has_value());
  }
  CHECK(lmkit::parse_float("-2.5e-3") == -2.5e-3f);
}

TEST_CASE("philox4x32-10 matches the published known-answer vectors", "[core][rng]") {
  // From the Random123 distribution's kat_vectors (Salmon et al. 2011).
  REQUIRE(philox4x32_10({0, 0, 0, 0}, {0, 0}) == std::array<std::uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  REQUIRE(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
          std::array<std::uint32_t, 4>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  REQUIRE(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
          std::array<std::uint32_t, 4>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("philox streams are addressable, splittable and well spread", "[core][rng]") {
  philox a(seed{42});
  std::vector<std::uint32_t> first(1000);
  for (auto& v : first) v = a();
  philox b(seed{42}, 0, 500);  // jump to position 500
  for (std::size_t i = 500; i < 1000; ++i) REQUIRE(b() == first[i]);
  REQUIRE(a.at(123) == first[123]);
  REQUIRE(a.position() == 1000);

  philox other_stream = a.split(1), other_seed(seed{43});
  int same_stream = 0, same_seed = 0;
  for (std::size_t i = 0; i < 1000; ++i) {
    same_stream += other_stream.at(i) == first[i];
    same_seed += other_seed.at(i) == first[i];
  }
  REQUIRE(same_stream < 3);
  REQUIRE(same_seed < 3);

  // Uniform floats: in [0, 1), mean 1/2, variance 1/12; normals: mean 0, variance 1.
  philox r(seed{7});
  double sum = 0, sum_sq = 0, nsum = 0, nsum_sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const float u = r.uniform();
    REQUIRE((u >= 0.0f && u < 1.0f));
    sum += u, sum_sq += double{u} * u;
    const double z = r.normal();
    nsum += z, nsum_sq += z * z;
  }
  REQUIRE(std::abs(sum / n - 0.5) < 0.005);
  REQUIRE(std::abs(sum_sq / n - sum / n * sum / n - 1.0 / 12) < 0.002);
  REQUIRE(std::abs(nsum / n) < 0.01);
  REQUIRE(std::abs(nsum_sq / n - 1.0) < 0.02);
}

TEST_CASE("errors form one hierarchy with a kind each", "[core][error]") {
  REQUIRE_THROWS_AS(require<format_error>(false, "bad byte at ", 12), lmkit::error);
  try {
    require<io_error>(false, "file ", "x.bin", " offset ", 7);
    FAIL("require did not throw");
  } catch (const io_error& e) {
    REQUIRE(std::string(e.what()) == "file x.bin offset 7");
  }
  REQUIRE_NOTHROW(require<argument_error>(true, "never"));
}

TEST_CASE("mapped files expose the bytes and report what is wrong", "[core][io]") {
  const auto dir = test::temporary_folder("mapped_file");
  const auto path = dir / "data.bin";
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 1000; ++i) out.put(static_cast<char>(i % 251));
  }
  const mapped_file file(path);
  REQUIRE(file.size() == 1000);
  REQUIRE(static_cast<int>(file.data()[999]) == 999 % 251);
  REQUIRE(file.subspan(990, 10).size() == 10);
  REQUIRE_THROWS_AS(file.subspan(995, 10), format_error);
  REQUIRE_THROWS_AS(file.subspan(2000, 0), format_error);
  REQUIRE_THROWS_AS(mapped_file(dir / "missing.bin"), io_error);
  REQUIRE_THROWS_AS(mapped_file(dir), io_error);
  { std::ofstream empty(dir / "empty.bin"); }
  REQUIRE(mapped_file(dir / "empty.bin").size() == 0);
  mapped_file moved = mapped_file(path);
  REQUIRE(moved.size() == 1000);
}

TEST_CASE("atomic writes replace the file whole or leave it untouched", "[core][io]") {
  const auto dir = test::temporary_folder("atomic_file");
  const auto path = dir / "model.bin";
  const std::string first = "first version", second = "second version, longer";
  write_file_atomically(path, std::as_bytes(std::span(first.data(), first.size())));
  {
    atomic_file_writer writer(path);
    writer.write(second);
    // no commit: an error on the way
  }
  auto read = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  REQUIRE(read() == first);
  atomic_file_writer writer(path);
  writer.write(second);
  writer.commit();
  REQUIRE(read() == second);
  std::size_t leftovers = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) leftovers += entry.path() != path;
  REQUIRE(leftovers == 0);
  REQUIRE_THROWS_AS(atomic_file_writer(dir / "no-such-folder" / "x"), io_error);
}

TEST_CASE("the thread pool covers every index once and reduces deterministically", "[core][threads]") {
  REQUIRE_THROWS_AS(thread_pool(-1), argument_error);
  const thread_pool one(1), two(2);
  REQUIRE(two.threads() == 2);
  for (const thread_pool* pool : {&one, &two}) {
    for (std::size_t n : {0, 1, 7, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(n);
      pool->for_each_chunk(n, 64, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) hits[i]++;
      });
      REQUIRE(std::all_of(hits.begin(), hits.end(), [](const auto& h) { return h == 1; }));
    }
  }
  // A float sum whose value depends on the order of additions: equal bits for 1 and 2 threads.
  const auto values = test::random_floats(1 << 20, 3, -1e6f, 1e6f);
  auto sum_with = [&](const thread_pool& pool) {
    return pool.reduce(
        values.size(), 4096, 0.0f,
        [&](std::size_t begin, std::size_t end) { return std::accumulate(values.begin() + begin, values.begin() + end, 0.0f); },
        [](float a, float b) { return a + b; });
  };
  REQUIRE(std::bit_cast<std::uint32_t>(sum_with(one)) == std::bit_cast<std::uint32_t>(sum_with(two)));
}

namespace {
/// What `run` writes to stderr (fd 2), and its result.
template <class Run>
std::pair<int, std::string> capture_stderr(const std::filesystem::path& file, Run run) {
  std::fflush(stderr);
  const int kept = ::dup(2);
  FILE* sink = std::fopen(file.c_str(), "w+");
  REQUIRE(sink);
  ::dup2(::fileno(sink), 2);
  const int status = run();
  std::fflush(stderr);
  ::dup2(kept, 2);
  ::close(kept);
  std::fclose(sink);
  std::ifstream in(file);
  return {status, std::string(std::istreambuf_iterator<char>(in), {})};
}
}  // namespace

TEST_CASE("the examples' run_tool turns any exception into one line on stderr and status 1", "[core][cli]") {
  const auto file = std::filesystem::path(LMKIT_TEST_TMPDIR) / "run_tool_stderr.txt";
  char name[] = "tool";
  char* argv[] = {name, nullptr};
  auto run = [&](int (*body)(int, char**)) { return capture_stderr(file, [&] { return cli::run_tool("tool", body, 1, argv); }); };
  // A standard exception that is not an lmkit::error (these once ended in std::terminate).
  REQUIRE(run([](int, char**) -> int { throw std::runtime_error("disk on fire"); }) ==
          std::pair<int, std::string>{1, "tool: disk on fire\n"});
  REQUIRE(run([](int, char**) -> int { throw std::bad_alloc(); }).first == 1);
  // An lmkit::error whose message names the tool already: the name is not repeated.
  REQUIRE(run([](int, char**) -> int { throw io_error("tool: cannot open x"); }) ==
          std::pair<int, std::string>{1, "tool: cannot open x\n"});
  // No exception: the tool's own status, nothing written.
  REQUIRE(run([](int argc, char**) { return argc + 6; }) == std::pair<int, std::string>{7, ""});
}
