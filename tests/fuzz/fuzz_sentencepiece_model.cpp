// Fuzz target: a SentencePiece .model of any bytes loads or is an lmkit::format_error; one that
// loads encodes text and decodes it back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lmkit/io/sentencepiece_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto tok = lmkit::io::parse_sentencepiece_model({reinterpret_cast<const char*>(data), size}, "fuzz.model");
    const auto ids = tok.encode("The 123 quick  brown\n\tfox's 한국어 text.", {.add_bos = tok.bos_id().has_value()});
    for (const auto id : ids)
      if (id >= tok.vocab_size()) std::abort();
    (void)tok.decode(ids);
  } catch (const lmkit::error&) {
  }
  return 0;
}
