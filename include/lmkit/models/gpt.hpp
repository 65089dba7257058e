// A GPT-style decoder (Radford et al. 2019): token and learned position embeddings, `layers`
// pre-norm transformer blocks, a final layer norm, and an output layer tied to the token embedding.
//
//   constexpr lmkit::models::gpt_config tiny{.vocab = 65, .context = 64, .layers = 4, .heads = 4, .dim = 128};
//   lmkit::models::gpt<tiny> model;                 // widths checked at compile time
//   lmkit::models::gpt<> model(config_from_file);   // the same templates, widths from a file
//
// Dropout (`.dropout = p`, none by default) is GPT-2's embd_pdrop, attn_pdrop and resid_pdrop (and
// nanoGPT's one `dropout`): on the sum of the embeddings, on the attention weights, and on each
// block's attention and MLP outputs before they join the residual stream, while training.
//
// Parameter names follow Hugging Face's GPT-2 ("transformer.h.0.attn.c_attn.weight"), with
// linear weights stored [out, in] as PyTorch's nn.Linear stores them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/float_text.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/core/weight_matrix.hpp"
#include "lmkit/gen/kv_cache.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/cross_entropy.hpp"
#include "lmkit/nn/dropout.hpp"
#include "lmkit/nn/embedding.hpp"
#include "lmkit/nn/mlp.hpp"
#include "lmkit/nn/normalization.hpp"
#include "lmkit/nn/repeat.hpp"
#include "lmkit/nn/self_attention.hpp"
#include "lmkit/nn/transformer_block.hpp"

namespace lmkit::models {

struct gpt_config {
  std::size_t vocab = 0;
  std::size_t context = 0;
  std::size_t layers = 0;
  std::size_t heads = 0;
  std::size_t dim = 0;
  std::size_t hidden = 0;  // 0: 4 * dim
  nn::bias bias = nn::bias::no;
  nn::activation activation = nn::activation::gelu_erf;
  float norm_eps = 1e-5f;
  float dropout = 0.0f;  // while training: embeddings, attention weights, residual branches

  constexpr std::size_t hidden_width() const { return hidden ? hidden : 4 * dim; }
  /// A config whose sizes are all given (as a template argument, the model's widths are static).
  constexpr bool complete() const { return vocab && context && layers && heads && dim; }
};

/// The config as metadata strings ("gpt.dim" = "128", ...), stored with checkpoints.
inline std::map<std::string, std::string> to_metadata(const gpt_config& c) {
  return {{"gpt.vocab", std::to_string(c.vocab)},
          {"gpt.context", std::to_string(c.context)},
          {"gpt.layers", std::to_string(c.layers)},
          {"gpt.heads", std::to_string(c.heads)},
          {"gpt.dim", std::to_string(c.dim)},
          {"gpt.hidden", std::to_string(c.hidden_width())},
          {"gpt.bias", c.bias == nn::bias::yes ? "1" : "0"},
          {"gpt.activation", c.activation == nn::activation::gelu_tanh ? "gelu_tanh" : "gelu_erf"},
          {"gpt.norm_eps", shortest_text(c.norm_eps)},
          {"gpt.dropout", shortest_text(c.dropout)}};
}

/// The config back from metadata; a missing or malformed key is a format_error naming it.
inline gpt_config gpt_config_from_metadata(const std::map<std::string, std::string, std::less<>>& m) {
  auto get = [&](const char* key) -> const std::string& {
    const auto it = m.find(key);
    require<format_error>(it != m.end(), "gpt config: metadata key ", key, " is missing");
    return it->second;
  };
  auto size = [&](const char* key) {
    const std::string& v = get(key);
    std::size_t n = 0;
    require<format_error>(!v.empty() && v.size() < 12 && v.find_first_not_of("0123456789") == std::string::npos,
                          "gpt config: ", key, " = '", v, "' is not a size");
    for (char c : v) n = n * 10 + static_cast<std::size_t>(c - '0');
    return n;
  };
  gpt_config c{.vocab = size("gpt.vocab"), .context = size("gpt.context"), .layers = size("gpt.layers"),
               .heads = size("gpt.heads"), .dim = size("gpt.dim"), .hidden = size("gpt.hidden")};
  c.bias = get("gpt.bias") == "1" ? nn::bias::yes : nn::bias::no;
  const std::string& act = get("gpt.activation");
  require<format_error>(act == "gelu_erf" || act == "gelu_tanh", "gpt config: unknown activation '", act, "'");
  c.activation = act == "gelu_tanh" ? nn::activation::gelu_tanh : nn::activation::gelu_erf;
  const std::string& eps = get("gpt.norm_eps");
  const std::optional<float> norm_eps = parse_float(eps);
  require<format_error>(norm_eps && *norm_eps > 0.0f && *norm_eps < 1.0f, "gpt config: gpt.norm_eps = '", eps,
                        "' is not a small positive number");
  c.norm_eps = *norm_eps;
  if (const auto it = m.find("gpt.dropout"); it != m.end()) {  // absent from older checkpoints: none
    const std::optional<float> p = nn::parse_dropout_probability(it->second);
    require<format_error>(p.has_value(), "gpt config: gpt.dropout = '", it->second, "' is not a probability in [0, 1)");
    c.dropout = *p;
  }
  return c;
}

namespace detail {
inline void check_gpt_config(const gpt_config& c) {
  require<argument_error>(c.complete(), "gpt: every size (vocab, context, layers, heads, dim) must be positive");
  require<argument_error>(c.dim % c.heads == 0, "gpt: dim ", c.dim, " is not a multiple of ", c.heads, " heads");
  require<argument_error>(c.dropout >= 0.0f && c.dropout < 1.0f, "gpt: dropout ", c.dropout, " is not in [0, 1)");
}
}  // namespace detail

template <gpt_config Config = gpt_config{}>
class gpt {
  static_assert(!Config.complete() || Config.dim % Config.heads == 0, "gpt: dim must be a multiple of heads");
  static constexpr std::size_t C = Config.complete() ? Config.dim : dynamic;
  static constexpr std::size_t V = Config.complete() ? Config.vocab : dynamic;
  static constexpr std::size_t T = Config.complete() ? Config.context : dynamic;
  static constexpr std::size_t L = Config.complete() ? Config.layers : dynamic;
  static constexpr std::size_t Hidden = Config.complete() ? Config.hidden_width() : dynamic;

 public:
  using block = nn::transformer_block<nn::layer_norm<C>, nn::self_attention<C>, nn::mlp<C, Hidden>>;

  gpt() requires(Config.complete()) : gpt(Config) {}
  explicit gpt(const gpt_config& config)
      : config_((detail::check_gpt_config(config), config)),
        wte_(config.vocab, config.dim),
        wpe_(config.context, config.dim),
        drop_(config.dim, config.dropout, 0),
        h_(config.layers, [&](std::size_t l) { return make_block(config, l); }),
        ln_f_(config.dim, config.bias, config.norm_eps) {}

  const gpt_config& config() const { return config_; }

  /// GPT-2's initialisation: normal(0, 0.02) for matrices, scaled by 1/sqrt(2 layers) for the
  /// projections that feed the residual stream; zero biases; unit norm gains.
  void init(seed s) {
    philox rng(s);
    const float residual_std = 0.02f / std::sqrt(2.0f * static_cast<float>(config_.layers));
    visit_parameters([&](std::string_view name, nn::parameter& p) {
      if (p.shape().size() == 1) {
        p.fill(name.ends_with(".bias") ? 0.0f : 1.0f);
      } else {
        p.init_normal(rng, name.ends_with("c_proj.weight") ? residual_std : 0.02f);
      }
    });
  }

  /// Sets up the buffers for batches of this shape (only when the shape changes).
  void reserve(nn::batch_shape shape) {
    require<argument_error>(shape.batch >= 1, "gpt: a batch needs at least one sequence");
    require<argument_error>(shape.time >= 1 && shape.time <= config_.context, "gpt: ", shape.time,
                            " positions do not fit the context of ", config_.context);
    if (shape == shape_) return;
    shape_ = shape;
    arena_.plan([&](nn::activation_arena& a) {
      wte_.reserve(a, shape);
      wpe_.reserve(a, shape);
      drop_.reserve(a, shape);
      h_.reserve(a, shape);
      ln_f_.reserve(a, shape);
      logits_ = a.take(shape.rows() * config_.vocab);
      dx_ = a.take(shape.rows() * config_.dim);
      loss_.reserve_in_place(a, shape, config_.vocab);  // the probabilities replace the logits
    });
  }

  /// Logits [batch * time, vocab] for `ids` (rows b * time + t).
  nn::const_matrix logits(std::span<const token_id> ids, nn::batch_shape shape, const nn::run_context& ctx) {
    return run_logits(ids, shape, ctx);
  }

  /// Mean cross-entropy of `targets` (the next token of each position).
  float forward(std::span<const token_id> ids, std::span<const token_id> targets, nn::batch_shape shape,
                const nn::run_context& ctx) {
    return loss_.forward_in_place(run_logits(ids, shape, ctx), targets, ctx);
  }

  /// Adds the gradient of (dloss * the last forward's loss) to every parameter's gradient.
  void backward(const nn::run_context& ctx, float dloss = 1.0f) {
    const nn::const_matrix dlogits = loss_.backward(ctx, dloss);
    // The tied output layer: dx = dlogits wte;  dwte += dlogits^T x.
    const std::size_t rows = shape_.rows(), vocab = config_.vocab, dim = config_.dim;
    kernels::gemm({rows, dim, vocab, {dlogits.data(), dtype::f32, vocab, false}, {wte_.weight().value().data(), dtype::f32, dim, false},
                   dx_.data(), dim, false, ctx.products},
                  *ctx.pool);
    kernels::gemm({vocab, dim, rows, {dlogits.data(), dtype::f32, vocab, true}, {final_.data(), dtype::f32, dim, false},
                   wte_.weight().grad().data(), dim, true, ctx.products},
                  *ctx.pool);
    const nn::const_matrix dx = nn::as_matrix(std::span<const float>(dx_), rows, dim);
    const nn::const_matrix dh = h_.backward(ln_f_.backward(dx, ctx), ctx);
    wte_.backward(wpe_.backward(drop_.backward(dh, ctx), ctx), ctx);
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit) {
    wte_.visit_parameters(visit, "transformer.wte");
    wpe_.visit_parameters(visit, "transformer.wpe");
    h_.visit_parameters(visit, "transformer.h");
    ln_f_.visit_parameters(visit, "transformer.ln_f");
  }

  std::span<const float> row_losses() const { return loss_.row_losses(); }

  /// Inference with a KV cache, through the same blocks' `infer`: runs `ids` at positions
  /// cache.size() .. (the cache made as `gen::kv_cache(layers, context, dim)`) and writes the logits
  /// after each of them to `logits` ([ids.size() x vocab]), or after the last one only when
  /// `logits` holds one row. `scratch` is resized as needed and may be kept between calls.
  void infer(std::span<const token_id> ids, gen::kv_cache& cache, std::span<float> logits, std::vector<float>& scratch,
             const thread_pool& pool) const {
    const std::size_t n = ids.size(), dim = config_.dim, vocab = config_.vocab, pos0 = cache.size();
    require<argument_error>(n > 0, "gpt: no tokens to run");
    require<argument_error>(cache.layers() == config_.layers && cache.width() == dim && cache.context() <= config_.context,
                            "gpt: the KV cache is not of this model's shape (", config_.layers, " layers x ", dim, ")");
    require<argument_error>(logits.size() == vocab || logits.size() == n * vocab, "gpt: ", logits.size(),
                            " logit slots for ", n, " tokens x ", vocab);
    cache.check_room(n);
    for (std::size_t i = 0; i < n; ++i)
      require<argument_error>(ids[i] < vocab, "gpt: token ", ids[i], " at index ", i, " is outside the vocabulary of ", vocab);
    const std::size_t block_scratch = h_[0].infer_scratch(n);
    scratch.resize(n * dim + std::max(block_scratch, n * dim));
    float* x = scratch.data();
    const std::span<float> rest(scratch.data() + n * dim, scratch.size() - n * dim);
    const std::span<const float> wte = wte_.weight().value(), wpe = wpe_.weight().value();
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t i = 0; i < dim; ++i) x[t * dim + i] = wte[ids[t] * dim + i] + wpe[(pos0 + t) * dim + i];
    for (std::size_t l = 0; l < config_.layers; ++l)
      h_[l].infer(x, n, {cache.key(l, 0).data(), cache.value(l, 0).data(), pos0}, {}, rest, pool);
    cache.advance(n);
    const std::size_t rows = logits.size() / vocab, first = n - rows;
    ln_f_.infer(x + first * dim, rows, rest.data());
    kernels::matmul_weights(rest.data(), rows, dim, weight_matrix{weight_type::f32, wte.data(), vocab, dim},  // tied
                            logits.data(), vocab, pool);
  }

 private:
  /// The logits in their buffer, where the loss's forward may write over them.
  nn::matrix run_logits(std::span<const token_id> ids, nn::batch_shape shape, const nn::run_context& ctx) {
    reserve(shape);
    nn::const_matrix x = drop_.forward(wpe_.forward(wte_.forward(ids, ctx), ctx), ctx);
    x = ln_f_.forward(h_.forward(x, ctx), ctx);
    final_ = x;
    const nn::matrix out = nn::as_matrix(logits_, shape.rows(), config_.vocab);
    kernels::matmul_nt(x, wte_.weight().value_matrix(), out, *ctx.pool, false, ctx.products);  // tied output layer
    return out;
  }

  /// Block `layer`. Its dropout masks are salted apart: 2 (layer + 1) and 2 (layer + 1) + 1 on the
  /// residual branches, 2^20 + layer on the attention weights (0 is the embeddings').
  static block make_block(const gpt_config& c, std::size_t layer) {
    return block(nn::layer_norm<C>(c.dim, c.bias, c.norm_eps),
                 nn::self_attention<C>(c.dim, {.heads = c.heads,
                                               .qkv_bias = c.bias,
                                               .out_bias = c.bias,
                                               .dropout = c.dropout,
                                               .dropout_salt = (std::uint64_t{1} << 20) + layer}),
                 nn::layer_norm<C>(c.dim, c.bias, c.norm_eps),
                 nn::mlp<C, Hidden>(c.dim, c.hidden_width(), c.activation, c.bias), c.dropout, layer + 1);
  }

  gpt_config config_;
  nn::embedding<V, C> wte_;
  nn::positional_embedding<T, C> wpe_;
  nn::dropout<C> drop_;
  nn::repeat<L, block> h_;
  nn::layer_norm<C> ln_f_;
  nn::softmax_cross_entropy loss_;
  nn::activation_arena arena_;
  nn::batch_shape shape_{0, 0};
  nn::const_matrix final_;
  std::span<float> logits_, dx_;
};

}  // namespace lmkit::models
