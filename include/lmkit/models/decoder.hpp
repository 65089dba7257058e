// A pretrained decoder-only transformer (the Llama and GPT-2 families) run for inference: a prompt
// goes through as matrix products over all its tokens at once, each later token as matrix-vector
// products, both against a KV cache. The weights are views into the model file (decoder_weights);
// one decoder may serve several sessions, each with its own cache.
//
//   auto model = lmkit::models::load_decoder("stories110M.gguf");
//   lmkit::models::decoder_session session(model, /*context=*/512, pool);
//   auto logits = session.append(prompt_ids);      // logits after the last prompt token
//   logits = session.append(next_id);              // one more token
//
// The model is built of the nn/ layers that training uses, frozen over the file's weights: each
// layer an nn::transformer_block (x is the residual stream, [T, dim] for T new tokens):
//   h = norm(x);  q, k, v = h Wq, h Wk, h Wv (+ biases);  rotate q, k (llama);  append k, v to the cache
//   x += attention(q, cache) Wo (+ bias)
//   h = norm(x);  x += silu(h Wgate) * (h Wup) Wdown   (llama)   |   gelu(h Wup + b) Wdown + b   (gpt2)
// with rms_norm and swiglu_mlp for Llama, layer_norm and mlp for GPT-2.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/parallel.hpp"
#include "lmkit/core/weight_matrix.hpp"
#include "lmkit/gen/kv_cache.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/models/decoder_config.hpp"
#include "lmkit/models/decoder_weights.hpp"
#include "lmkit/nn/linear.hpp"
#include "lmkit/nn/mlp.hpp"
#include "lmkit/nn/normalization.hpp"
#include "lmkit/nn/rope_table.hpp"
#include "lmkit/nn/self_attention.hpp"
#include "lmkit/nn/transformer_block.hpp"

namespace lmkit::models {

/// A family's layers: its transformer blocks, final norm and output layer, all frozen.
template <class Norm, class FeedForward>
struct decoder_stack {
  using block = nn::transformer_block<Norm, nn::self_attention<>, FeedForward>;
  std::vector<block> blocks;
  Norm final_norm;
  nn::linear<> output;
};
using llama_stack = decoder_stack<nn::rms_norm<>, nn::swiglu_mlp<>>;
using gpt2_stack = decoder_stack<nn::layer_norm<>, nn::mlp<>>;

class decoder {
 public:
  decoder(decoder_config config, decoder_weights weights, std::string source)
      : state_(std::make_shared<const shared>(assemble(std::move(config), std::move(weights), std::move(source)))) {}

  const decoder_config& config() const { return state_->config; }
  const decoder_weights& weights() const { return state_->weights; }
  /// The file the model came from.
  const std::string& source() const { return state_->source; }
  /// The layers: a llama_stack or a gpt2_stack.
  const std::variant<llama_stack, gpt2_stack>& layers() const { return state_->layers; }

 private:
  // Shared, so that a decoder is cheap to copy and sessions may outlive the variable they came from.
  struct shared {
    decoder_config config;
    decoder_weights weights;
    std::string source;
    std::variant<llama_stack, gpt2_stack> layers;
  };

  static shared assemble(decoder_config config, decoder_weights weights, std::string source) {
    config.validate(source);
    require<format_error>(weights.layers.size() == config.layers, source, ": ", weights.layers.size(),
                          " layers of weights for a config of ", config.layers);
    auto layers = build_layers(config, weights);
    return shared{std::move(config), std::move(weights), std::move(source), std::move(layers)};
  }

  /// The nn/ layers over the weights' views (which stay where they are: moving decoder_weights
  /// moves its owners, not the owned memory).
  static std::variant<llama_stack, gpt2_stack> build_layers(const decoder_config& c, const decoder_weights& w) {
    const bool llama = c.family == decoder_family::llama;
    nn::attention_options options{.heads = c.heads, .kv_heads = c.kv_heads, .head_dim = c.head_dim, .causal = true};
    if (llama) options.rope = nn::rope_options{.base = c.rope_base, .style = c.rope};
    auto attention = [&](const decoder_layer_weights& l) {
      return nn::self_attention<>(c.dim, options, nn::linear<>(l.wq, l.bq), nn::linear<>(l.wk, l.bk),
                                  nn::linear<>(l.wv, l.bv), nn::linear<>(l.wo, l.bo));
    };
    if (llama) {
      llama_stack s{{}, nn::rms_norm<>(w.final_norm, {}, c.norm_eps), nn::linear<>(w.output)};
      for (const decoder_layer_weights& l : w.layers)
        s.blocks.emplace_back(nn::rms_norm<>(l.attn_norm, {}, c.norm_eps), attention(l),
                              nn::rms_norm<>(l.ffn_norm, {}, c.norm_eps),
                              nn::swiglu_mlp<>(nn::linear<>(l.w_gate), nn::linear<>(l.w_up), nn::linear<>(l.w_down)));
      return s;
    }
    gpt2_stack s{{}, nn::layer_norm<>(w.final_norm, w.final_norm_bias, c.norm_eps), nn::linear<>(w.output)};
    for (const decoder_layer_weights& l : w.layers)
      s.blocks.emplace_back(nn::layer_norm<>(l.attn_norm, l.attn_norm_bias, c.norm_eps), attention(l),
                            nn::layer_norm<>(l.ffn_norm, l.ffn_norm_bias, c.norm_eps),
                            nn::mlp<>(nn::linear<>(l.w_up, l.b_up), nn::linear<>(l.w_down, l.b_down),
                                      c.gelu_erf ? nn::activation::gelu_erf : nn::activation::gelu_tanh));
    return s;
  }

  std::shared_ptr<const shared> state_;
};

using nn::attention_precision;

/// One sequence being run through a decoder: its KV cache and the buffers of a forward pass.
class decoder_session {
 public:
  /// `context` positions of cache (0: the model's whole context; more is refused). Prompts are
  /// processed in chunks of at most `max_chunk` tokens, which bounds the activation buffers.
  explicit decoder_session(decoder model, std::size_t context = 0, const thread_pool& pool = serial_pool(),
                           std::size_t max_chunk = 512, attention_precision precision = attention_precision::f32)
      : model_(std::move(model)), pool_(&pool), precision_(precision) {
    const decoder_config& c = model_.config();
    if (context == 0) context = c.context;
    require<argument_error>(context <= c.context, "decoder_session: a context of ", context,
                            " positions is longer than the model's ", c.context);
    cache_ = gen::kv_cache(c.layers, context, c.kv_width());
    chunk_ = std::max<std::size_t>(1, std::min(max_chunk, context));
    x_ = aligned_buffer<float>(chunk_ * c.dim);
    std::visit([&](const auto& stack) { scratch_ = aligned_buffer<float>(stack.blocks.front().infer_scratch(chunk_)); },
               model_.layers());
    logits_ = aligned_buffer<float>(c.vocab);
    // cos/sin of every position's angles, once: decoding then rotates with a table lookup.
    if (c.family == decoder_family::llama) rope_ = nn::rope_table(context, c.head_dim, c.rope_base);
  }

  const decoder& model() const { return model_; }
  /// Tokens run so far (the next token's position).
  std::size_t position() const { return cache_.size(); }
  std::size_t context() const { return cache_.context(); }
  const gen::kv_cache& cache() const { return cache_; }

  /// Runs `tokens` at the next positions; returns the logits after the last of them (valid until
  /// the next call).
  std::span<const float> append(std::span<const token_id> tokens) {
    require<argument_error>(!tokens.empty(), "decoder_session: no tokens to append");
    run(tokens, {});
    return {logits_.data(), model_.config().vocab};
  }
  std::span<const float> append(token_id token) { return append(std::span<const token_id>(&token, 1)); }

  /// Runs `tokens` and writes the logits after every one of them: [tokens.size() x vocab].
  void append(std::span<const token_id> tokens, std::span<float> all_logits) {
    kernels::detail::same_size(all_logits.size(), tokens.size() * model_.config().vocab, "decoder_session all_logits");
    run(tokens, all_logits);
  }

  /// Keeps, from now on, the attention weights of the last token of every append: for each layer
  /// and head, its softmax weights over the positions it attended to (itself included). Off by
  /// default (a copy per head and layer); f32 attention only (llama_cpp_f16 never forms them).
  void record_attention(bool on) {
    require<argument_error>(!on || precision_ == attention_precision::f32,
                            "decoder_session: attention weights are recorded with f32 attention only");
    const decoder_config& c = model_.config();
    if (on && attention_weights_.size() == 0) attention_weights_ = aligned_buffer<float>(c.layers * c.heads * context());
    recording_ = on;
  }
  /// The last appended token's attention weights in `layer`, `head`: over positions 0 .. position() - 1.
  std::span<const float> attention_weights(std::size_t layer, std::size_t head) const {
    const decoder_config& c = model_.config();
    require<argument_error>(recording_ && recorded_ > 0, "decoder_session: no attention weights recorded (call "
                            "record_attention(true) before append)");
    require<argument_error>(layer < c.layers && head < c.heads, "decoder_session: layer ", layer, " head ", head,
                            " is outside ", c.layers, " layers x ", c.heads, " heads");
    return {attention_weights_.data() + (layer * c.heads + head) * context(), recorded_};
  }

  /// Forgets every position from `n` on: the next token goes to position n.
  void truncate(std::size_t n) { cache_.truncate(n); }
  void reset() { cache_.clear(); }

 private:
  void run(std::span<const token_id> tokens, std::span<float> all_logits) {
    const decoder_config& c = model_.config();
    cache_.check_room(tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] >= c.vocab)
        throw argument_error(lmkit::detail::concat("decoder_session: token ", tokens[i], " at index ", i,
                                            " is outside the vocabulary of ", c.vocab));
    for (std::size_t begin = 0; begin < tokens.size(); begin += chunk_) {
      const std::size_t count = std::min(chunk_, tokens.size() - begin);
      const bool last = begin + count == tokens.size();
      forward(tokens.subspan(begin, count),
              all_logits.empty() ? std::span<float>{} : all_logits.subspan(begin * c.vocab, count * c.vocab), last);
    }
  }

  /// The forward pass of T = tokens.size() tokens at positions position() .. + T.
  void forward(std::span<const token_id> tokens, std::span<float> all_logits, bool last_chunk) {
    const decoder_config& c = model_.config();
    const decoder_weights& w = model_.weights();
    const std::size_t T = tokens.size(), pos0 = cache_.size(), dim = c.dim;

    // x = token embedding (+ position embedding)
    for (std::size_t t = 0; t < T; ++t) {
      const std::span<float> xt = row(x_, t, dim);
      kernels::dequantize_row(w.token_embedding, tokens[t], xt);
      if (w.position_embedding.data) {
        const std::span<float> position = row(scratch_, 0, dim);
        kernels::dequantize_row(w.position_embedding, pos0 + t, position);
        kernels::add(xt, position, xt);
      }
    }

    std::visit([&](const auto& stack) {
      for (std::size_t l = 0; l < c.layers; ++l) {
        const nn::attention_inference how{
            .precision = precision_,
            .rope = c.family == decoder_family::llama ? &rope_ : nullptr,
            .record = recording_ ? attention_weights_.data() + l * c.heads * context() : nullptr,
            .record_stride = context()};
        stack.blocks[l].infer(x_.data(), T, {cache_.key(l, 0).data(), cache_.value(l, 0).data(), pos0}, how,
                              {scratch_.data(), scratch_.size()}, *pool_);
      }
      cache_.advance(T);
      if (recording_) recorded_ = cache_.size();

      // Logits: for every token when asked, else only for the last token of the last chunk.
      float* h = scratch_.data();
      if (!all_logits.empty()) {
        stack.final_norm.infer(x_.data(), T, h);
        stack.output.infer(h, T, all_logits.data(), *pool_);
        if (last_chunk) std::ranges::copy(all_logits.subspan((T - 1) * c.vocab, c.vocab), logits_.data());
      } else if (last_chunk) {
        stack.final_norm.infer(x_.data() + (T - 1) * dim, 1, h);
        stack.output.infer(h, 1, logits_.data(), *pool_);
      }
    }, model_.layers());
  }

  static std::span<float> row(aligned_buffer<float>& b, std::size_t t, std::size_t width) {
    return {b.data() + t * width, width};
  }

  decoder model_;
  const thread_pool* pool_;
  attention_precision precision_;
  bool recording_ = false;
  std::size_t recorded_ = 0;  // positions the recorded weights cover
  aligned_buffer<float> attention_weights_;  // [layers, heads, context] when recording
  gen::kv_cache cache_;
  std::size_t chunk_ = 1;
  nn::rope_table rope_;  // llama: the angles of every position of the context
  aligned_buffer<float> x_, scratch_, logits_;
};

}  // namespace lmkit::models
