// An LSTM language model (Zaremba et al. 2014; Karpathy's char-rnn): token embedding, a stack of
// LSTM layers, a linear output layer with bias, softmax cross-entropy over the next token. The
// same model as the PyTorch peer (peers/pytorch/train_lstm_shakespeare.py):
//
//   class LM(nn.Module): emb = nn.Embedding(V, E); rnn = nn.LSTM(E, H, L, batch_first=True); out = nn.Linear(H, V)
//
// with the same parameter names ("emb.weight", "rnn.weight_ih_l0", ..., "out.weight", "out.bias"),
// so that weights move between the two.
//
// Dropout (`.dropout = p`, none by default) is Zaremba et al.'s, as in PyTorch's word language model
// example (drop(emb), nn.LSTM(dropout=p), drop(output)): while training, on the embeddings, between
// the LSTM layers and on the top layer's output; never on the recurrent connections. Masks salted
// 0 (embeddings), 1 (output) and 2^20 + l (the input of LSTM layer l >= 1).
//
//   constexpr lmkit::models::lstm_lm_config shakespeare{.vocab = 65, .embedding = 64, .hidden = 256, .layers = 2};
//   lmkit::models::lstm_lm<shakespeare> model;    // widths checked at compile time
//   lmkit::models::lstm_lm<> model(config);       // the same templates, widths from a file
//   model.carry_state(true);                      // truncated BPTT over consecutive windows
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lmkit/core/error.hpp"
#include "lmkit/core/float_text.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/nn/cross_entropy.hpp"
#include "lmkit/nn/dropout.hpp"
#include "lmkit/nn/embedding.hpp"
#include "lmkit/nn/linear.hpp"
#include "lmkit/nn/lstm.hpp"

namespace lmkit::models {

struct lstm_lm_config {
  std::size_t vocab = 0;
  std::size_t embedding = 0;  // E: the embedding width, the first LSTM layer's input
  std::size_t hidden = 0;     // H: every LSTM layer's width
  std::size_t layers = 0;
  float dropout = 0.0f;       // while training: embeddings, between layers, the top layer's output

  /// A config whose sizes are all given (as a template argument, the model's widths are static).
  constexpr bool complete() const { return vocab && embedding && hidden && layers; }
};

/// The config as metadata strings ("lstm_lm.hidden" = "256", ...), stored with checkpoints.
inline std::map<std::string, std::string> to_metadata(const lstm_lm_config& c) {
  return {{"lstm_lm.vocab", std::to_string(c.vocab)},
          {"lstm_lm.embedding", std::to_string(c.embedding)},
          {"lstm_lm.hidden", std::to_string(c.hidden)},
          {"lstm_lm.layers", std::to_string(c.layers)},
          {"lstm_lm.dropout", shortest_text(c.dropout)}};
}

/// The config back from metadata; a missing or malformed key is a format_error naming it.
inline lstm_lm_config lstm_lm_config_from_metadata(const std::map<std::string, std::string, std::less<>>& m) {
  auto size = [&](const char* key) {
    const auto it = m.find(key);
    require<format_error>(it != m.end(), "lstm_lm config: metadata key ", key, " is missing");
    const std::string& v = it->second;
    require<format_error>(!v.empty() && v.size() < 12 && v.find_first_not_of("0123456789") == std::string::npos,
                          "lstm_lm config: ", key, " = '", v, "' is not a size");
    std::size_t n = 0;
    for (char c : v) n = n * 10 + static_cast<std::size_t>(c - '0');
    return n;
  };
  lstm_lm_config c{.vocab = size("lstm_lm.vocab"), .embedding = size("lstm_lm.embedding"),
                   .hidden = size("lstm_lm.hidden"), .layers = size("lstm_lm.layers")};
  if (const auto it = m.find("lstm_lm.dropout"); it != m.end()) {  // absent from older checkpoints: none
    const std::optional<float> p = nn::parse_dropout_probability(it->second);
    require<format_error>(p.has_value(), "lstm_lm config: lstm_lm.dropout = '", it->second,
                          "' is not a probability in [0, 1)");
    c.dropout = *p;
  }
  return c;
}

template <lstm_lm_config Config = lstm_lm_config{}>
class lstm_lm {
  static constexpr std::size_t V = Config.complete() ? Config.vocab : dynamic;
  static constexpr std::size_t E = Config.complete() ? Config.embedding : dynamic;
  static constexpr std::size_t H = Config.complete() ? Config.hidden : dynamic;

 public:
  lstm_lm() requires(Config.complete()) : lstm_lm(Config) {}
  explicit lstm_lm(const lstm_lm_config& config)
      : config_((require<argument_error>(config.complete(),
                                         "lstm_lm: every size (vocab, embedding, hidden, layers) must be positive"),
                 config)),
        emb_(config.vocab, config.embedding),
        drop_embedding_(config.embedding, config.dropout, 0),
        rnn_(config.embedding, config.hidden, config.layers, nn::bias::yes, config.dropout, std::uint64_t{1} << 20),
        drop_output_(config.hidden, config.dropout, 1),
        out_(config.hidden, config.vocab, nn::bias::yes) {}

  const lstm_lm_config& config() const { return config_; }
  nn::lstm<E, H>& rnn() { return rnn_; }

  /// PyTorch's defaults: nn.Embedding normal(0, 1); nn.LSTM every weight and bias
  /// uniform(+-1/sqrt(H)); nn.Linear weight and bias uniform(+-1/sqrt(H)) (its input width is H).
  void init(seed s) {
    philox rng(s);
    const float bound = 1.0f / std::sqrt(static_cast<float>(config_.hidden));
    emb_.weight().init_normal(rng, 1.0f);
    rnn_.init_uniform(rng, bound);
    out_.weight().init_uniform(rng, bound);
    out_.bias_parameter().init_uniform(rng, bound);
  }

  /// Every parameter uniform(+-bound): Zaremba et al.'s setting (0.1 for their small model).
  void init_uniform(seed s, float bound) {
    philox rng(s);
    visit_parameters([&](std::string_view, nn::parameter& p) { p.init_uniform(rng, bound); });
  }

  /// Sets up the buffers for batches of this shape (only when the shape changes). A new batch size
  /// resets the carried state.
  void reserve(nn::batch_shape shape) {
    require<argument_error>(shape.batch >= 1 && shape.time >= 1, "lstm_lm: a batch needs at least one sequence of one step");
    if (shape == shape_) return;
    shape_ = shape;
    // With fewer vocabulary entries than positions (characters), the first layer's input product
    // is taken once per entry (table W_ih^T); with more (words), once per position, as usual. Not
    // with dropout: a dropped embedding is no longer a row of the table.
    read_table_ = config_.vocab < shape.rows() && config_.dropout == 0.0f;
    arena_.plan([&](nn::activation_arena& a) {
      if (read_table_) {
        rnn_.reserve(a, shape, config_.vocab);
      } else {
        emb_.reserve(a, shape);
        drop_embedding_.reserve(a, shape);
        rnn_.reserve(a, shape);
      }
      drop_output_.reserve(a, shape);
      out_.reserve(a, shape);
      loss_.reserve(a, shape, config_.vocab);
    });
  }

  /// Logits [batch * time, vocab] for `ids` (rows b * time + t). For a small vocabulary the
  /// embedding lookup is folded into the first LSTM layer's input product (see reserve).
  nn::const_matrix logits(std::span<const token_id> ids, nn::batch_shape shape, const nn::run_context& ctx) {
    reserve(shape);
    const nn::const_matrix h = read_table_ ? rnn_.forward(emb_.weight().value_matrix(), ids, ctx)
                                           : rnn_.forward(drop_embedding_.forward(emb_.forward(ids, ctx), ctx), ctx);
    return out_.forward(drop_output_.forward(h, ctx), ctx);
  }

  /// Mean cross-entropy of `targets` (the next token of each position).
  float forward(std::span<const token_id> ids, std::span<const token_id> targets, nn::batch_shape shape,
                const nn::run_context& ctx) {
    return loss_.forward(logits(ids, shape, ctx), targets, ctx);
  }

  /// Adds the gradient of (dloss * the last forward's loss) to every parameter's gradient. The
  /// gradient stops at the window's start (the carried state is a constant).
  void backward(const nn::run_context& ctx, float dloss = 1.0f) {
    const nn::const_matrix dh = drop_output_.backward(out_.backward(loss_.backward(ctx, dloss), ctx), ctx);
    if (read_table_) rnn_.backward(dh, emb_.weight().grad_matrix(), ctx);
    else emb_.backward(drop_embedding_.backward(rnn_.backward(dh, ctx), ctx), ctx);
  }

  template <class Visitor>
  void visit_parameters(Visitor&& visit) {
    emb_.visit_parameters(visit, "emb");
    rnn_.visit_parameters(visit, "rnn");
    out_.visit_parameters(visit, "out");
  }

  /// With `true`, each forward continues the sequences of the one before from its final (h, c)
  /// (the PyTorch peer's h = tuple(t.detach() for t in h)); with `false` (the default), from zero.
  void carry_state(bool carry) { rnn_.carry_state(carry); }
  bool carries_state() const { return rnn_.carries_state(); }
  void reset_state() { rnn_.reset_state(); }
  /// The carried state as "rnn.state.h_l0", "rnn.state.c_l0", ... [batch x hidden] (for checkpoints).
  template <class Visitor>
  void visit_state(Visitor&& visit) {
    rnn_.visit_state(visit, "rnn");
  }

  std::span<const float> row_losses() const { return loss_.row_losses(); }

 private:
  lstm_lm_config config_;
  nn::embedding<V, E> emb_;
  nn::dropout<E> drop_embedding_;
  nn::lstm<E, H> rnn_;
  nn::dropout<H> drop_output_;
  nn::linear<H, V> out_;
  nn::softmax_cross_entropy loss_;
  nn::activation_arena arena_;
  bool read_table_ = false;
  nn::batch_shape shape_{0, 0};
};

}  // namespace lmkit::models
