// Fuzz target: the ARPA reader must turn any bytes into a model or an lmkit::format_error.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "lmkit/io/arpa.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto model = lmkit::io::read_arpa(in, "fuzz");
    // A model that loaded must also score text without failing.
    (void)model.score_sentence("a b c d e f");
  } catch (const lmkit::error&) {
  }
  return 0;
}
