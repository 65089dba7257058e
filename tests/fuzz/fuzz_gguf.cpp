// Fuzz target: a GGUF file of any bytes parses or is an lmkit::format_error; one that parses gives
// tensor spans inside the input (every byte is read here) and a tokenizer or a format_error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lmkit/io/gguf.hpp"
#include "lmkit/io/gguf_tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const auto file = lmkit::io::gguf_file::parse_bytes(bytes, "fuzz.gguf");
    unsigned sum = 0;
    for (const auto& t : file.tensors()) {
      const auto span = file.tensor_bytes(t);
      if (span.data() < reinterpret_cast<const std::byte*>(data) ||
          span.data() + span.size() > reinterpret_cast<const std::byte*>(data) + size)
        std::abort();
      for (const auto b : span) sum += unsigned(b);
    }
    (void)sum;
    if (file.contains("tokenizer.ggml.model")) {
      const auto tokenizer = lmkit::io::tokenizer_from_gguf(file);
      std::visit([](const auto& tok) { (void)tok.decode(tok.encode("The 123 quick  fox's the<sep>then 한국어.")); }, tokenizer);
    }
  } catch (const lmkit::error&) {
  }
  return 0;
}
