// Helpers shared by the tests: running a check on every Highway target, random data, tolerances.
#pragma once

#include <hwy/targets.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lmkit/core/rng.hpp"
#include "lmkit/kernels/kernels.hpp"

namespace lmkit::test {

/// Runs `check()` once per Highway target that is both compiled and supported by this CPU, after
/// making dispatch pick exactly that target, and asserts that it did. Returns the targets run.
template <class Check>
std::vector<std::string> on_every_target(Check&& check) {
  std::vector<std::string> ran;
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string name = hwy::TargetName(target);
    INFO("Highway target " << name);
    REQUIRE(std::string(kernels::active_target()) == name);
    check();
    ran.push_back(name);
  }
  hwy::SetSupportedTargetsForTest(0);  // back to the best target
  return ran;
}

/// n floats uniform in [lo, hi) from a seeded stream.
inline std::vector<float> random_floats(std::size_t n, std::uint64_t stream, float lo = -1.0f, float hi = 1.0f) {
  philox rng(seed{2024}, stream);
  std::vector<float> v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform();
  return v;
}

/// |actual - expected| <= abs + rel * |expected|
inline bool close(double actual, double expected, double rel, double abs = 0.0) {
  if (std::isnan(expected)) return std::isnan(actual);
  if (std::isinf(expected)) return actual == expected;
  return std::abs(actual - expected) <= abs + rel * std::abs(expected);
}

/// A folder under the build tree for temporary files.
inline std::filesystem::path temporary_folder(const std::string& name) {
  auto dir = std::filesystem::path(LMKIT_TEST_TMPDIR) / "tmp" / name;
  std::filesystem::create_directories(dir);
  return dir;
}

/// A file under ../shared/data (or $LMKIT_SHARED_DATA). When it is missing the test process exits
/// with code 77, which ctest reports as skipped (never as passed).
inline std::filesystem::path shared_data(const std::string& relative) {
  const char* root = std::getenv("LMKIT_SHARED_DATA");
  const auto path = std::filesystem::path(root && *root ? root : LMKIT_DEFAULT_SHARED_DATA) / relative;
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr, "SKIPPED: %s is not here\n", path.c_str());
    std::exit(77);
  }
  return path;
}

/// Ends the test process with code 77, which ctest reports as skipped: for a test whose subject
/// (a CPU feature, a file) is not here. Never a pass.
[[noreturn]] inline void skip_test(const char* why) {
  std::fprintf(stderr, "SKIPPED: %s\n", why);
  std::exit(77);
}

/// The whole content of a file.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Sizes that exercise empty input, a single element, odd tails and several vector lengths.
inline const std::vector<std::size_t>& awkward_sizes() {
  static const std::vector<std::size_t> sizes{0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1000};
  return sizes;
}

}  // namespace lmkit::test
