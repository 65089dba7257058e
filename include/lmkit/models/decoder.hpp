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
// The layer, read top to bottom (x is the residual stream, [T, dim] for T new tokens):
//   h = norm(x);  q, k, v = h Wq, h Wk, h Wv (+ biases);  rotate q, k (llama);  append k, v to the cache
//   x += attention(q, cache) Wo (+ bias)
//   h = norm(x);  x += silu(h Wgate) * (h Wup) Wdown   (llama)   |   gelu(h Wup + b) Wdown + b   (gpt2)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>
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

namespace lmkit::models {

class decoder {
 public:
  decoder(decoder_config config, decoder_weights weights, std::string source)
      : state_(std::make_shared<const shared>(shared{std::move(config), std::move(weights), std::move(source)})) {
    state_->config.validate(state_->source);
    require<format_error>(state_->weights.layers.size() == state_->config.layers, state_->source, ": ",
                          state_->weights.layers.size(), " layers of weights for a config of ", state_->config.layers);
  }

  const decoder_config& config() const { return state_->config; }
  const decoder_weights& weights() const { return state_->weights; }
  /// The file the model came from.
  const std::string& source() const { return state_->source; }

 private:
  // Shared, so that a decoder is cheap to copy and sessions may outlive the variable they came from.
  struct shared {
    decoder_config config;
    decoder_weights weights;
    std::string source;
  };
  std::shared_ptr<const shared> state_;
};

/// The arithmetic of attention.
enum class attention_precision {
  /// Keys, values, queries and weights in f32: logits as PyTorch computes them (the default).
  f32,
  /// As llama.cpp computes it by default: keys and values held in f16 (its KV cache type), the query
  /// rounded to f16 for the dot products, and the weighted sum of values kept in an f16 accumulator
  /// with an online softmax (its flash-attention CPU kernel). Reproduces llama.cpp's greedy tokens
  /// where f32 and f16 arithmetic choose differently between near ties (quantised models).
  llama_cpp_f16,
};

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
    h_ = aligned_buffer<float>(chunk_ * c.dim);
    q_ = aligned_buffer<float>(chunk_ * c.q_width());
    k_ = aligned_buffer<float>(chunk_ * c.kv_width());
    v_ = aligned_buffer<float>(chunk_ * c.kv_width());
    attention_ = aligned_buffer<float>(chunk_ * c.q_width());
    gate_ = aligned_buffer<float>(chunk_ * c.hidden);
    up_ = aligned_buffer<float>(chunk_ * c.hidden);
    logits_ = aligned_buffer<float>(c.vocab);
    if (c.family == decoder_family::llama) {
      // cos/sin of every position's angles, once: decoding then rotates with a table lookup.
      const std::size_t half = c.head_dim / 2;
      rope_cos_ = aligned_buffer<float>(context * half);
      rope_sin_ = aligned_buffer<float>(context * half);
      for (std::size_t p = 0; p < context; ++p)
        kernels::rope_angles(p, c.head_dim, c.rope_base, {rope_cos_.data() + p * half, half},
                             {rope_sin_.data() + p * half, half});
    }
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
        kernels::dequantize_row(w.position_embedding, pos0 + t, row(h_, t, dim));
        kernels::add(xt, row(h_, t, dim), xt);
      }
    }

    for (std::size_t l = 0; l < c.layers; ++l) {
      const decoder_layer_weights& lw = w.layers[l];
      normalize(x_, T, lw.attn_norm, lw.attn_norm_bias, h_);
      project(h_, T, dim, lw.wq, lw.bq, q_);
      project(h_, T, dim, lw.wk, lw.bk, k_);
      project(h_, T, dim, lw.wv, lw.bv, v_);
      for (std::size_t t = 0; t < T; ++t) {
        if (c.family == decoder_family::llama) {
          const std::size_t half = c.head_dim / 2;
          const std::span<const float> cos{rope_cos_.data() + (pos0 + t) * half, half};
          const std::span<const float> sin{rope_sin_.data() + (pos0 + t) * half, half};
          kernels::rope(row(q_, t, c.q_width()), c.head_dim, cos, sin, c.rope);
          kernels::rope(row(k_, t, c.kv_width()), c.head_dim, cos, sin, c.rope);
        }
        if (precision_ == attention_precision::llama_cpp_f16) {
          round_to_f16(row(q_, t, c.q_width()));
          round_to_f16(row(k_, t, c.kv_width()));
          round_to_f16(row(v_, t, c.kv_width()));
        }
        std::ranges::copy(row(k_, t, c.kv_width()), cache_.key(l, pos0 + t).begin());
        std::ranges::copy(row(v_, t, c.kv_width()), cache_.value(l, pos0 + t).begin());
      }
      attend(l, T, pos0);
      project(attention_, T, c.q_width(), lw.wo, lw.bo, h_);
      kernels::add({x_.data(), T * dim}, {h_.data(), T * dim}, {x_.data(), T * dim});

      normalize(x_, T, lw.ffn_norm, lw.ffn_norm_bias, h_);
      const std::span<float> up{up_.data(), T * c.hidden};
      project(h_, T, dim, lw.w_up, lw.b_up, up_);
      if (c.family == decoder_family::llama) {
        const std::span<float> gate{gate_.data(), T * c.hidden};
        project(h_, T, dim, lw.w_gate, {}, gate_);
        kernels::silu(gate, gate);
        kernels::mul(gate, up, up);
      } else {
        kernels::gelu_tanh(up, up);
      }
      project(up_, T, c.hidden, lw.w_down, lw.b_down, h_);
      kernels::add({x_.data(), T * dim}, {h_.data(), T * dim}, {x_.data(), T * dim});
    }
    cache_.advance(T);
    if (recording_) recorded_ = cache_.size();

    // Logits: for every token when asked, else only for the last token of the last chunk.
    if (!all_logits.empty()) {
      normalize(x_, T, w.final_norm, w.final_norm_bias, h_);
      kernels::matmul_weights(h_.data(), T, dim, w.output, all_logits.data(), c.vocab, *pool_);
      if (last_chunk) std::ranges::copy(all_logits.subspan((T - 1) * c.vocab, c.vocab), logits_.data());
    } else if (last_chunk) {
      const std::span<float> xl = row(x_, T - 1, dim), hl = row(h_, 0, dim);
      if (c.family == decoder_family::llama) kernels::rms_norm(xl, w.final_norm, hl, c.norm_eps);
      else kernels::layer_norm(xl, w.final_norm, w.final_norm_bias, hl, c.norm_eps);
      kernels::matmul_weights(h_.data(), 1, dim, w.output, logits_.data(), c.vocab, *pool_);
    }
  }

  /// out[t] = norm(in[t]) for t < T: RMS norm without a bias (llama), layer norm with one (gpt2).
  void normalize(const aligned_buffer<float>& in, std::size_t T, std::span<const float> weight,
                 std::span<const float> bias, aligned_buffer<float>& out) const {
    const std::size_t dim = model_.config().dim;
    const float eps = model_.config().norm_eps;
    for (std::size_t t = 0; t < T; ++t) {
      const std::span<const float> x{in.data() + t * dim, dim};
      const std::span<float> y{out.data() + t * dim, dim};
      if (model_.config().family == decoder_family::llama) kernels::rms_norm(x, weight, y, eps);
      else kernels::layer_norm(x, weight, bias, y, eps);
    }
  }

  /// out [T, w.rows] = in [T, cols] w^T (+ bias).
  void project(const aligned_buffer<float>& in, std::size_t T, std::size_t cols, const weight_matrix& w,
               std::span<const float> bias, aligned_buffer<float>& out) const {
    kernels::matmul_weights(in.data(), T, cols, w, out.data(), w.rows, *pool_);
    if (!bias.empty())
      for (std::size_t t = 0; t < T; ++t) kernels::add(row(out, t, w.rows), bias, row(out, t, w.rows));
  }

  /// attention_[t, head] = softmax(q[t, head] . K[0..p] / sqrt(head_dim)) V[0..p], p = pos0 + t,
  /// with the key/value head that the query head's group shares. One task per (token, head): the
  /// result does not depend on the number of threads.
  void attend(std::size_t layer, std::size_t T, std::size_t pos0) {
    const decoder_config& c = model_.config();
    const std::size_t hd = c.head_dim, group = c.heads / c.kv_heads, kvw = c.kv_width();
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const float* keys = cache_.keys(layer);
    const float* values = cache_.values(layer);
    const std::size_t tasks = T * c.heads;
    // About 64 key positions of work per task, at least.
    const std::size_t grain = std::max<std::size_t>(1, 64 * c.heads / (pos0 + T) / std::max<std::size_t>(1, T));
    pool_->for_each_chunk(tasks, grain, [&](std::size_t begin, std::size_t end) {
      thread_local std::vector<float> scores;
      for (std::size_t task = begin; task < end; ++task) {
        const std::size_t t = task / c.heads, head = task % c.heads, kv = head / group;
        const std::size_t n = pos0 + t + 1;
        if (scores.size() < n) scores.resize(n);
        const std::span<const float> q{q_.data() + t * c.q_width() + head * hd, hd};
        const std::span<float> out{attention_.data() + t * c.q_width() + head * hd, hd};
        if (precision_ == attention_precision::llama_cpp_f16) {
          attend_f16_online(q, keys + kv * hd, values + kv * hd, kvw, n, scale, out);
          continue;
        }
        kernels::attend_query(q, keys + kv * hd, values + kv * hd, kvw, n, scale, {scores.data(), n}, out);
        if (recording_ && t == T - 1)
          std::copy_n(scores.data(), n, attention_weights_.data() + (layer * c.heads + head) * context());
      }
    });
  }

  /// llama.cpp's CPU flash attention for one query: keys in order, a running maximum M and sum S of
  /// exp(s - M), and the weighted values accumulated in f16 (rounded after every update, as its f16
  /// accumulator is), divided by S at the end. Scalar: it is a compatibility mode, not the fast path.
  static void attend_f16_online(std::span<const float> q, const float* keys, const float* values, std::size_t stride,
                                std::size_t n, float scale, std::span<float> out) {
    std::ranges::fill(out, 0.0f);
    float max = -std::numeric_limits<float>::infinity(), sum = 0.0f;
    for (std::size_t j = 0; j < n; ++j) {
      const float s = kernels::dot(q, {keys + j * stride, q.size()}) * scale;
      float rescale = 1.0f, weight = 1.0f;
      if (s > max) {
        rescale = std::exp(max - s);
        max = s;
        for (float& o : out) o = to_f16_precision(o * rescale);
      } else {
        weight = std::exp(s - max);
      }
      const float* v = values + j * stride;
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = to_f16_precision(out[i] + v[i] * weight);
      sum = sum * rescale + weight;
    }
    for (float& o : out) o /= sum;
  }

  static float to_f16_precision(float x) { return f16::from_float(x).to_float(); }
  static void round_to_f16(std::span<float> x) {
    for (float& e : x) e = to_f16_precision(e);
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
  aligned_buffer<float> x_, h_, q_, k_, v_, attention_, gate_, up_, logits_, rope_cos_, rope_sin_;
};

}  // namespace lmkit::models
