// Fuzz target: GPT-2's encoder.json and vocab.bpe (the input split at its first NUL byte) load or
// are an lmkit::format_error; a pair that loads encodes and decodes text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lmkit/io/gpt2_bpe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = std::min(input.find('\0'), input.size());
  try {
    const auto tok = lmkit::io::parse_gpt2_bpe(input.substr(0, split), input.substr(std::min(split + 1, input.size())),
                                               "encoder.json", "vocab.bpe");
    const std::string_view text = "The 123 quick  brown\r\n\tfox's text.";
    if (tok.decode(tok.encode_ordinary(text)) != text) std::abort();
  } catch (const lmkit::error&) {
  }
  return 0;
}
