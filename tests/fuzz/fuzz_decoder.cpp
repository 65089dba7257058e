// Fuzz target: model files of any bytes, read as a GGUF model and as a llama2.c checkpoint, load or
// are an lmkit::error (a damaged header, a tensor outside the file, a shape the config does not
// imply, an unknown type, absurd counts); a model that loads and is small runs two tokens, so a
// shape the loader let through that the forward pass cannot handle shows up under the sanitizers.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "lmkit/models/load_decoder.hpp"

namespace {

void run_two_tokens(const lmkit::models::decoder& model) {
  const auto& c = model.config();
  // Garbage weights are fine; garbage sizes would make this slow, not wrong: skip big models.
  if (c.dim * c.layers * (c.hidden + c.dim) > (1u << 24) || c.vocab * c.dim > (1u << 24)) return;
  lmkit::models::decoder_session session(model, std::min<std::size_t>(c.context, 4));
  const lmkit::token_id tokens[] = {1 % static_cast<lmkit::token_id>(c.vocab), 0};
  const auto logits = session.append(tokens);
  if (logits.size() != c.vocab) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    auto file = std::make_shared<const lmkit::io::gguf_file>(lmkit::io::gguf_file::parse_bytes(bytes, "fuzz.gguf"));
    const std::string arch = file->contains("general.architecture") ? file->get_string("general.architecture") : "";
    run_two_tokens(arch == "gpt2" ? lmkit::models::gpt2::from_gguf(file) : lmkit::models::llama::from_gguf(file));
  } catch (const lmkit::error&) {
  }
  try {
    auto file = std::make_shared<const lmkit::io::llama2c_checkpoint>(
        lmkit::io::llama2c_checkpoint::parse_bytes(std::as_bytes(std::span(data, size)), "fuzz.bin"));
    run_two_tokens(lmkit::models::llama::from_llama2c(file));
  } catch (const lmkit::error&) {
  }
  return 0;
}
