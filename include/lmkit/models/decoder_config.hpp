// The shape of a pretrained decoder-only transformer, read from whichever file described it
// (GGUF metadata, a Hugging Face config.json, a llama2.c header). Two families share one forward
// pass and differ only in the choices recorded here:
//
//   llama: RMS norm, rotary positions, SwiGLU feed-forward, grouped-query attention, no biases;
//   gpt2:  layer norm with bias, learned positions, GELU (tanh form; or erf) feed-forward, biases everywhere.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "lmkit/core/error.hpp"
#include "lmkit/kernels/kernels.hpp"

namespace lmkit::models {

enum class decoder_family { llama, gpt2 };

constexpr std::string_view name_of(decoder_family f) { return f == decoder_family::llama ? "llama" : "gpt2"; }

struct decoder_config {
  decoder_family family = decoder_family::llama;
  std::size_t vocab = 0;
  std::size_t dim = 0;       // model width
  std::size_t layers = 0;
  std::size_t heads = 0;     // query heads
  std::size_t kv_heads = 0;  // key/value heads (grouped-query attention when fewer than heads)
  std::size_t head_dim = 0;  // usually dim / heads
  std::size_t hidden = 0;    // feed-forward width
  std::size_t context = 0;   // the longest sequence the model was made for
  float norm_eps = 1e-5f;
  // llama only:
  double rope_base = 10000.0;
  std::size_t rope_dims = 0;  // leading dimensions of each head that rotate (0: all of head_dim)
  kernels::rope_style rope = kernels::rope_style::adjacent_pairs;
  // gpt2 only: GELU's exact erf form (Hugging Face's activation_function "gelu", nanoGPT's nn.GELU)
  // instead of its tanh form ("gelu_new", GPT-2's own).
  bool gelu_erf = false;

  std::size_t q_width() const { return heads * head_dim; }
  std::size_t kv_width() const { return kv_heads * head_dim; }

  /// Refuses a shape that cannot be run; `source` names the file in the message.
  void validate(std::string_view source) const {
    auto fail = [&](auto... parts) { throw format_error(lmkit::detail::concat(source, ": ", parts...)); };
    if (!vocab || !dim || !layers || !heads || !kv_heads || !head_dim || !hidden || !context)
      fail("a model size is zero (vocab ", vocab, ", dim ", dim, ", layers ", layers, ", heads ", heads,
           ", kv_heads ", kv_heads, ", head_dim ", head_dim, ", hidden ", hidden, ", context ", context, ")");
    // Generous limits: a larger value is a damaged file, and would ask for absurd buffers.
    constexpr std::size_t limit = std::size_t{1} << 24;
    if (vocab > limit || dim > limit || layers > 4096 || heads > 4096 || hidden > limit || context > limit ||
        head_dim > 4096)
      fail("absurd model size (vocab ", vocab, ", dim ", dim, ", layers ", layers, ", heads ", heads, ", hidden ",
           hidden, ", context ", context, ")");
    if (heads % kv_heads != 0) fail(heads, " query heads are not a multiple of ", kv_heads, " key/value heads");
    if (family == decoder_family::llama && (head_dim % 2 != 0 || rope_dims % 2 != 0 || rope_dims > head_dim))
      fail("rotary dimensions ", rope_dims, " do not fit heads of ", head_dim);
    if (!(norm_eps > 0.0f) || !(rope_base > 0.0)) fail("norm epsilon and rope base must be positive");
  }
};

}  // namespace lmkit::models
