// Fuzz target: a tiktoken rank file of any bytes loads or is an lmkit::format_error; one that
// loads and covers every byte makes a tokenizer that round-trips text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lmkit/io/tiktoken.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view content(reinterpret_cast<const char*>(data), size);
  try {
    auto table = lmkit::io::parse_tiktoken_ranks(content, "fuzz");
    const lmkit::text::bpe_tokenizer tok(std::move(table), lmkit::text::split_pattern::cl100k_base);
    const std::string_view text = "The 123 quick  brown\r\n\tfox's 한국어 text.";
    if (tok.decode(tok.encode_ordinary(text)) != text) std::abort();
  } catch (const lmkit::error&) {
  }
  return 0;
}
