// For compilers without libFuzzer (g++): runs a fuzz target on seed inputs and on `iterations`
// seeded random mutations of them (bit flips, byte changes, truncation, splices, insertions). Built
// with the sanitizers in CI, it catches out-of-bounds reads and undefined behaviour on bad input.
//
//   fuzz_arpa_driver ITERATIONS SEED_FILE...
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lmkit/core/rng.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {
void run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

std::string mutate(std::string s, lmkit::philox& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const std::size_t at = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 6) {
      case 0:
        if (!s.empty()) s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8)));
        break;
      case 1:
        if (!s.empty()) s[at] = "-0123456789.\t \n\\=ngram"[rng() % 22];
        break;
      case 2:
        s.resize(at);
        break;
      case 3:
        if (!s.empty()) {
          const std::string piece = s.substr(rng() % s.size(), rng() % 64);
          s.insert(at, piece);
        }
        break;
      case 4:
        s.insert(at, std::string(1 + rng() % 8, static_cast<char>(rng())));
        break;
      default:
        if (!s.empty()) s.erase(at, rng() % 32);
    }
  }
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s ITERATIONS SEED_FILE...\n", argv[0]);
    return 2;
  }
  const long iterations = std::strtol(argv[1], nullptr, 10);
  std::vector<std::string> seeds;
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {  // seeds from ../shared/data may be absent: ctest reports exit code 77 as skipped
      std::fprintf(stderr, "SKIPPED: cannot read seed %s\n", argv[i]);
      return 77;
    }
    seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  lmkit::philox rng(lmkit::seed{12345});
  for (const auto& s : seeds) run(s);
  for (long i = 0; i < iterations; ++i) run(mutate(seeds[rng() % seeds.size()], rng));
  std::printf("%ld mutated inputs, no crash\n", iterations);
  return 0;
}
