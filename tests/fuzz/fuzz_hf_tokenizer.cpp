// Fuzz target: a tokenizer.json of any bytes loads or is an lmkit::format_error (never a JSON
// library exception or a crash); one that loads encodes and decodes text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lmkit/io/hf_tokenizer.hpp"

// Added tokens (seed files' and common ones) amid white space that lstrip and rstrip take.
constexpr std::string_view added_tokens_text = "<s> [INST]  quick\u3000<<SYS>> brown [/INST]\n<|im_start|> <|im<|endoftext|>";

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto any = lmkit::io::parse_hf_tokenizer({reinterpret_cast<const char*>(data), size}, "fuzz.json");
    if (const auto* tok = std::get_if<lmkit::text::bpe_tokenizer>(&any)) {
      const std::string_view text = "The 123 quick  brown\r\n\tfox's text.";
      if (tok->decode(tok->encode_ordinary(text)) != text) std::abort();
      (void)tok->encode(added_tokens_text, lmkit::text::allowed_special::all());
    } else {
      const auto& spm = std::get<lmkit::text::sentencepiece_tokenizer>(any);
      for (const auto id : spm.encode("The 123 quick  brown\n\tfox's 한국어."))
        if (id >= spm.vocab_size()) std::abort();
      for (const auto id : spm.encode(added_tokens_text, {.match_added_tokens = true}))
        if (id >= spm.vocab_size()) std::abort();
    }
  } catch (const lmkit::error&) {
  }
  return 0;
}
