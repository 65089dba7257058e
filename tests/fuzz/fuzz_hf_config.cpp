// Fuzz target: a Hugging Face config.json of any bytes is a decoder_config or an lmkit::error (not
// JSON, a key of the wrong type, a zero or absurd size, heads that do not split the width); one
// that parses is valid, and a GPT-2 config that the trainable GPT accepts builds a small model
// that runs a forward and backward pass, so a size the parser let through that the layers cannot
// handle shows up under the sanitizers.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "lmkit/io/hf_config.hpp"
#include "lmkit/models/gpt.hpp"
#include "lmkit/models/gpt_hugging_face.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  lmkit::io::hf_model_config hf;
  try {
    hf = lmkit::io::parse_hf_config(text, "fuzz/config.json");
  } catch (const lmkit::error&) {
    return 0;
  }
  const lmkit::models::decoder_config& c = hf.config;
  c.validate("parsed config");  // what the parser returns must pass the decoder's own check
  if (c.family == lmkit::models::decoder_family::gpt2 && c.dim != c.heads * c.head_dim) std::abort();
  lmkit::models::gpt_config g;
  try {
    g = lmkit::models::gpt_config_from_hugging_face(hf, "fuzz/config.json");
  } catch (const lmkit::error&) {
    return 0;
  }
  // Garbage sizes would make this slow, not wrong: only small models run.
  if (g.dim * g.layers * (g.hidden_width() + g.dim) > (1u << 16) || g.vocab * g.dim > (1u << 16) || g.context > 64) return 0;
  lmkit::models::gpt<> model(g);
  model.init(lmkit::seed{1});
  const std::size_t tokens = std::min<std::size_t>(g.context, 3);
  std::vector<lmkit::token_id> ids(tokens), targets(tokens);
  for (std::size_t i = 0; i < tokens; ++i) {
    ids[i] = static_cast<lmkit::token_id>(i % g.vocab);
    targets[i] = static_cast<lmkit::token_id>((i + 1) % g.vocab);
  }
  const lmkit::nn::run_context ctx{.training = true};
  const float loss = model.forward(ids, targets, {1, tokens}, ctx);
  if (!(loss >= 0.0f)) std::abort();
  model.backward(ctx);
  return 0;
}
