// Fuzz target: loading a binary n-gram model must turn any bytes into a model or an
// lmkit::format_error, never read outside the file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "lmkit/io/ngram_binary.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto path = std::filesystem::temp_directory_path() / ("lmkit-fuzz-ngram-" + std::to_string(::getpid()) + ".bin");
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    const auto model = lmkit::io::load_ngram_binary(path);
    (void)model.score_sentence("a b c d e f");
  } catch (const lmkit::error&) {
  }
  return 0;
}
