// Writes seed inputs for the n-gram fuzz targets: a small Kneser-Ney model (from a synthetic corpus)
// as ARPA text and in the binary format.  make_seeds OUTPUT_DIR
#include <filesystem>
#include <sstream>

#include "lmkit/core/rng.hpp"
#include "lmkit/io/arpa.hpp"
#include "lmkit/io/ngram_binary.hpp"
#include "lmkit/models/ngram/kneser_ney.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  // Zipf-like words so that every order sees counts 1 to 4 (the discounts need them).
  lmkit::philox rng(lmkit::seed{3});
  std::ostringstream corpus;
  for (int line = 0; line < 300; ++line) {
    const int words = 1 + static_cast<int>(rng() % 8);
    for (int w = 0; w < words; ++w) {
      const double u = rng.uniform_double();
      corpus << (w ? " " : "") << "w" << static_cast<int>(400 * u * u * u * u);
    }
    corpus << "\n";
  }
  std::istringstream lines(corpus.str());
  const auto model = lmkit::ngram::estimate_kneser_ney(lines, 3);
  lmkit::io::write_arpa(model, dir / "small.arpa");
  lmkit::io::write_ngram_binary(model, dir / "small.bin");
  return 0;
}
