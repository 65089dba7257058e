// The recurrent family: the LSTM and Elman layers' backward against finite differences of
// PyTorch's formulas written out in double (nn_reference.hpp), with and without a carried initial
// state; the carried state itself (two windows of T steps = one of 2T); PyTorch's parameter names;
// the whole LSTM language model against a double-precision computation; thread-count independence.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "lmkit/models/lstm_lm.hpp"
#include "lmkit/nn/lstm.hpp"
#include "lmkit/nn/rnn.hpp"
#include "gradient_check.hpp"
#include "nn_reference.hpp"

using namespace lmkit;
using ref::vec;

namespace {

/// The layer's carried state (per layer, h then c where there is one), filled with normal(0, 0.5).
template <class Layer>
std::vector<vec> random_state(Layer& layer, std::size_t batch, std::uint64_t s) {
  philox rng(seed{s});
  layer.reset_state(batch);
  std::vector<vec> state;
  layer.visit_state(
      [&](std::string_view, nn::matrix m) {
        for (float& v : m.span()) v = static_cast<float>(0.5 * rng.normal());
        state.push_back(to_double(m.span()));
      },
      "");
  return state;
}

/// Every other entry of `v` from `first` on: the h (first = 0) or c (first = 1) states of an LSTM.
std::vector<vec> every_other(const std::vector<vec>& v, std::size_t first) {
  std::vector<vec> out;
  for (std::size_t i = first; i < v.size(); i += 2) out.push_back(v[i]);
  return out;
}

/// Runs `layer` on x and returns the outputs.
template <class Layer>
std::vector<float> run(Layer& layer, nn::activation_arena& arena, nn::batch_shape shape, const std::vector<float>& x,
                       std::size_t in) {
  arena.plan([&](nn::activation_arena& a) { layer.reserve(a, shape); });
  const nn::const_matrix y = layer.forward(nn::as_matrix(std::span<const float>(x), shape.rows(), in), {});
  return {y.data(), y.data() + y.size()};
}

std::vector<float> random_floats(std::size_t n, std::uint64_t s) {
  philox rng(seed{s});
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

/// Dropout's multipliers (0 or 1 / (1 - p)) of the mask salted `salt`, n values, in ctx's pass.
vec dropout_multipliers(const nn::run_context& ctx, std::uint64_t salt, float p, std::size_t n) {
  std::vector<float> m(n);
  nn::dropout_mask(ctx, salt, 0, p, m);
  return to_double(m);
}

/// Rows b * T + t for t in [t0, t0 + len) of a [B * T, width] matrix, as a [B * len, width] one.
std::vector<float> time_slice(const std::vector<float>& m, std::size_t batch, std::size_t time, std::size_t width,
                              std::size_t t0, std::size_t len) {
  std::vector<float> out;
  for (std::size_t b = 0; b < batch; ++b)
    out.insert(out.end(), m.begin() + (b * time + t0) * width, m.begin() + (b * time + t0 + len) * width);
  return out;
}

}  // namespace

TEST_CASE("lstm: backward matches finite differences", "[nn][lstm]") {
  const std::size_t in = 3, hidden = 4, batch = 2, time = 5;
  SECTION("one layer, zero initial state") {
    nn::lstm<> layer(in, hidden);
    check_layer(layer, {batch, time}, in, [&](const vec& x, const std::vector<vec>& p) {
      return ref::lstm(x, batch, time, in, hidden, p, {vec(batch * hidden)}, {vec(batch * hidden)});
    });
  }
  SECTION("two layers, a carried (non-zero) initial state") {
    nn::lstm<> layer(in, hidden, 2);
    const std::vector<vec> state = random_state(layer, batch, 7);
    layer.carry_state(true);
    check_layer(layer, {batch, time}, in, [&](const vec& x, const std::vector<vec>& p) {
      return ref::lstm(x, batch, time, in, hidden, p, every_other(state, 0), every_other(state, 1));
    });
  }
  SECTION("three layers, static widths, one sequence") {
    nn::lstm<2, 3> layer(2, 3, 3);
    const std::vector<vec> state = random_state(layer, 1, 8);
    layer.carry_state(true);
    check_layer(layer, {1, 6}, 2, [&](const vec& x, const std::vector<vec>& p) {
      return ref::lstm(x, 1, 6, 2, 3, p, every_other(state, 0), every_other(state, 1));
    });
  }
}

TEST_CASE("lstm: dropout between layers; backward matches finite differences of the masked reference", "[nn][lstm]") {
  const std::size_t in = 3, hidden = 4, batch = 2, time = 5, layers = 3, n = batch * time * hidden;
  const float p = 0.4f;
  nn::lstm<> layer(in, hidden, layers, nn::bias::yes, p, /*dropout_salt=*/7);
  // check_layer trains in pass 0 of the zero noise seed: layer l's input has mask 7 + l.
  const nn::run_context ctx{};
  std::vector<vec> masks(layers);
  std::size_t dropped = 0;
  for (std::size_t l = 1; l < layers; ++l) {
    masks[l] = dropout_multipliers(ctx, 7 + l, p, n);
    for (double m : masks[l]) dropped += m == 0.0;
  }
  CHECK(dropped > 0);  // the reference with these masks differs from the one without
  CHECK(dropped < 2 * n);
  const std::vector<vec> zero(layers, vec(batch * hidden));
  check_layer(layer, {batch, time}, in, [&](const vec& x, const std::vector<vec>& q) {
    return ref::lstm(x, batch, time, in, hidden, q, zero, zero, masks);
  });

  // Not training: no dropout, the same outputs as the layer built without it.
  nn::lstm<> plain(in, hidden, layers);
  std::vector<nn::parameter*> mine, theirs;
  layer.visit_parameters([&](std::string_view, nn::parameter& q) { mine.push_back(&q); }, "");
  plain.visit_parameters([&](std::string_view, nn::parameter& q) { theirs.push_back(&q); }, "");
  for (std::size_t k = 0; k < mine.size(); ++k)
    std::copy(mine[k]->value().begin(), mine[k]->value().end(), theirs[k]->value().begin());
  const std::vector<float> x = random_floats(batch * time * in, 5);
  nn::activation_arena a1, a2;
  a1.plan([&](nn::activation_arena& a) { layer.reserve(a, {batch, time}); });
  a2.plan([&](nn::activation_arena& a) { plain.reserve(a, {batch, time}); });
  const nn::const_matrix xm = nn::as_matrix(std::span<const float>(x), batch * time, in);
  const nn::const_matrix y_eval = layer.forward(xm, {.training = false});
  const std::vector<float> y_eval_copy(y_eval.data(), y_eval.data() + y_eval.size());
  const nn::const_matrix y_plain = plain.forward(xm, {});
  CHECK(std::equal(y_eval_copy.begin(), y_eval_copy.end(), y_plain.data()));
  CHECK_THROWS_AS(nn::lstm<>(in, hidden, 2, nn::bias::yes, 1.0f), argument_error);
}

TEST_CASE("rnn (Elman, tanh): backward matches finite differences", "[nn][rnn]") {
  const std::size_t in = 3, hidden = 5, batch = 3, time = 4;
  SECTION("one layer, zero initial state") {
    nn::rnn<> layer(in, hidden);
    check_layer(layer, {batch, time}, in, [&](const vec& x, const std::vector<vec>& p) {
      return ref::rnn(x, batch, time, in, hidden, p, {vec(batch * hidden)});
    });
  }
  SECTION("two layers, a carried initial state") {
    nn::rnn<> layer(in, hidden, 2);
    const std::vector<vec> state = random_state(layer, batch, 9);
    layer.carry_state(true);
    check_layer(layer, {batch, time}, in, [&](const vec& x, const std::vector<vec>& p) {
      return ref::rnn(x, batch, time, in, hidden, p, state);
    });
  }
}

// Both are layers in the sense of layer.hpp: they compose with sequential, repeat and residual.
static_assert(nn::matrix_layer<nn::lstm<>> && nn::matrix_layer<nn::lstm<4, 8>> && nn::matrix_layer<nn::rnn<>>);

TEST_CASE("lstm and rnn: parameter names, shapes and order are PyTorch's", "[nn][lstm][rnn]") {
  struct named {
    std::string name;
    std::vector<std::size_t> shape;
    bool operator==(const named&) const = default;
  };
  auto list = [](auto& layer, std::string_view prefix) {
    std::vector<named> out;
    layer.visit_parameters([&](std::string_view n, nn::parameter& p) { out.push_back({std::string(n), p.shape()}); },
                           prefix);
    return out;
  };
  nn::lstm<> lstm(10, 8, 2);
  CHECK(list(lstm, "rnn") == std::vector<named>{{"rnn.weight_ih_l0", {32, 10}},
                                                 {"rnn.weight_hh_l0", {32, 8}},
                                                 {"rnn.bias_ih_l0", {32}},
                                                 {"rnn.bias_hh_l0", {32}},
                                                 {"rnn.weight_ih_l1", {32, 8}},
                                                 {"rnn.weight_hh_l1", {32, 8}},
                                                 {"rnn.bias_ih_l1", {32}},
                                                 {"rnn.bias_hh_l1", {32}}});
  nn::rnn<> rnn(10, 8);
  CHECK(list(rnn, "") == std::vector<named>{{"weight_ih_l0", {8, 10}},
                                            {"weight_hh_l0", {8, 8}},
                                            {"bias_ih_l0", {8}},
                                            {"bias_hh_l0", {8}}});
  nn::lstm<> no_bias(10, 8, 1, nn::bias::no);
  CHECK(list(no_bias, "") == std::vector<named>{{"weight_ih_l0", {32, 10}}, {"weight_hh_l0", {32, 8}}});
  // The state is not a parameter; it has its own names.
  lstm.reset_state(3);
  std::vector<std::string> state_names;
  lstm.visit_state(
      [&](std::string_view n, nn::matrix m) {
        state_names.emplace_back(n);
        CHECK((m.extent(0) == 3 && m.extent(1) == 8));
      },
      "rnn");
  CHECK(state_names == std::vector<std::string>{"rnn.state.h_l0", "rnn.state.c_l0", "rnn.state.h_l1", "rnn.state.c_l1"});
  CHECK_THROWS_AS(nn::lstm<>(0, 8), argument_error);
  CHECK_THROWS_AS((nn::lstm<4, 8>(4, 9)), shape_error);
}

TEST_CASE("carried state: two windows of T steps give what one window of 2T steps gives", "[nn][lstm][rnn]") {
  const std::size_t in = 6, hidden = 20, batch = 3, time = 7;
  auto check = [&](auto& whole, auto& halves) {
    philox rng(seed{21});
    whole.init_uniform(rng, 0.4f);
    // The same parameters in both.
    std::vector<nn::parameter*> src;
    whole.visit_parameters([&](std::string_view, nn::parameter& p) { src.push_back(&p); }, "");
    std::size_t k = 0;
    halves.visit_parameters(
        [&](std::string_view, nn::parameter& p) {
          std::copy(src[k]->value().begin(), src[k]->value().end(), p.value().begin());
          ++k;
        },
        "");
    const std::vector<float> x = random_floats(batch * 2 * time * in, 22);
    nn::activation_arena a1, a2;
    const std::vector<float> y = run(whole, a1, {batch, 2 * time}, x, in);

    halves.carry_state(true);
    halves.reset_state();
    const std::vector<float> first = run(halves, a2, {batch, time}, time_slice(x, batch, 2 * time, in, 0, time), in);
    const std::vector<float> second = run(halves, a2, {batch, time}, time_slice(x, batch, 2 * time, in, time, time), in);
    CHECK(first == time_slice(y, batch, 2 * time, hidden, 0, time));
    CHECK(second == time_slice(y, batch, 2 * time, hidden, time, time));
    // The carried state is the last step's output (h) of the top layer.
    std::vector<float> h_top;
    halves.visit_state(
        [&](std::string_view name, nn::matrix m) {
          if (name == "state.h_l1") h_top.assign(m.data(), m.data() + m.size());
        },
        "");
    CHECK(h_top == time_slice(y, batch, 2 * time, hidden, 2 * time - 1, 1));

    // reset_state: the next window starts from zero again, as the first one did.
    halves.reset_state();
    CHECK(run(halves, a2, {batch, time}, time_slice(x, batch, 2 * time, in, 0, time), in) == first);
    // Without carrying, every window starts from zero.
    halves.carry_state(false);
    CHECK(run(halves, a2, {batch, time}, time_slice(x, batch, 2 * time, in, 0, time), in) == first);
    CHECK(run(halves, a2, {batch, time}, time_slice(x, batch, 2 * time, in, 0, time), in) == first);
    // A batch of another size resets the state.
    halves.carry_state(true);
    const std::vector<float> x2 = random_floats(2 * time * in, 23);
    const std::vector<float> two = run(halves, a2, {2, time}, x2, in);
    halves.carry_state(false);
    CHECK(run(halves, a2, {2, time}, x2, in) == two);
  };
  SECTION("lstm") {
    nn::lstm<> whole(in, hidden, 2), halves(in, hidden, 2);
    check(whole, halves);
  }
  SECTION("rnn") {
    nn::rnn<> whole(in, hidden, 2), halves(in, hidden, 2);
    check(whole, halves);
  }
}

TEST_CASE("lstm: the input read from a table (token input) equals the table's rows fed in", "[nn][lstm]") {
  const std::size_t vocab = 7, in = 5, hidden = 6, batch = 3, time = 4, rows = batch * time;
  nn::lstm<> rows_in(in, hidden, 2), table_in(in, hidden, 2);
  philox rng(seed{31});
  rows_in.init_uniform(rng, 0.5f);
  std::vector<nn::parameter*> a, b;
  rows_in.visit_parameters([&](std::string_view, nn::parameter& p) { a.push_back(&p); p.zero_grad(); }, "");
  table_in.visit_parameters([&](std::string_view, nn::parameter& p) { b.push_back(&p); p.zero_grad(); }, "");
  for (std::size_t k = 0; k < a.size(); ++k) std::copy(a[k]->value().begin(), a[k]->value().end(), b[k]->value().begin());
  const std::vector<float> table = random_floats(vocab * in, 32), dy = random_floats(rows * hidden, 33);
  std::vector<token_id> ids(rows);
  for (token_id& id : ids) id = rng() % vocab;
  std::vector<float> x(rows * in);
  for (std::size_t r = 0; r < rows; ++r) std::copy_n(table.begin() + ids[r] * in, in, x.begin() + r * in);
  for (auto* layer : {&rows_in, &table_in}) layer->carry_state(true), random_state(*layer, batch, 34);

  nn::activation_arena arena_a, arena_b;
  const std::vector<float> y = run(rows_in, arena_a, {batch, time}, x, in);
  arena_b.plan([&](nn::activation_arena& arena) { table_in.reserve(arena, {batch, time}, vocab); });
  const nn::const_matrix table_m = nn::as_matrix(std::span<const float>(table), vocab, in);
  const nn::const_matrix y_table = table_in.forward(table_m, ids, {});
  for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(std::abs(y_table.data()[i] - y[i]) <= 1e-5f);

  const nn::const_matrix dy_m = nn::as_matrix(std::span<const float>(dy), rows, hidden);
  const nn::const_matrix dx = rows_in.backward(dy_m, {});
  std::vector<float> table_grad(vocab * in, 0.0f), want(vocab * in, 0.0f);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < in; ++i) want[ids[r] * in + i] += dx.data()[r * in + i];
  CHECK_THROWS_AS(table_in.backward(dy_m, {}), argument_error);  // the forward read a table
  table_in.backward(dy_m, nn::as_matrix(std::span<float>(table_grad), vocab, in), {});
  for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(std::abs(table_grad[i] - want[i]) <= 1e-5f * (1 + std::abs(want[i])));
  for (std::size_t k = 0; k < a.size(); ++k)
    for (std::size_t i = 0; i < a[k]->size(); ++i)
      REQUIRE(std::abs(b[k]->grad()[i] - a[k]->grad()[i]) <= 1e-5f * (1 + std::abs(a[k]->grad()[i])));

  ids[5] = vocab;
  CHECK_THROWS_AS(table_in.forward(table_m, ids, {}), argument_error);
  CHECK_THROWS_AS(rows_in.backward(dy_m, nn::as_matrix(std::span<float>(table_grad), vocab, in), {}), argument_error);
}

namespace {

constexpr models::lstm_lm_config tiny_config{.vocab = 7, .embedding = 5, .hidden = 6, .layers = 2};

/// Dropout's multipliers in the model: on the embeddings [B*T x E], on each LSTM layer's input
/// (index l >= 1, [B*T x H]), on the top layer's output [B*T x H].
struct lstm_lm_masks {
  vec embedding;
  std::vector<vec> between;
  vec output;
};

/// The whole model in double, parameters in visiting order (emb, 4 per LSTM layer, out weight and bias).
double reference_lstm_lm_loss(const std::vector<vec>& p, const std::vector<token_id>& ids,
                              const std::vector<token_id>& targets, std::size_t batch, std::size_t time,
                              const models::lstm_lm_config& c, const std::vector<vec>& h0, const std::vector<vec>& c0,
                              const lstm_lm_masks* masks = nullptr) {
  const std::size_t n = batch * time;
  vec x(n * c.embedding);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t i = 0; i < c.embedding; ++i) x[r * c.embedding + i] = p[0][ids[r] * c.embedding + i];
  if (masks)
    for (std::size_t i = 0; i < x.size(); ++i) x[i] *= masks->embedding[i];
  const std::vector<vec> lstm_params(p.begin() + 1, p.begin() + 1 + 4 * c.layers);
  vec h = ref::lstm(x, batch, time, c.embedding, c.hidden, lstm_params, h0, c0, masks ? masks->between : std::vector<vec>{});
  if (masks)
    for (std::size_t i = 0; i < h.size(); ++i) h[i] *= masks->output[i];
  const vec logits = ref::linear(h, n, c.hidden, p[1 + 4 * c.layers], c.vocab, &p[2 + 4 * c.layers]);
  return ref::cross_entropy(logits, n, c.vocab, std::vector<unsigned>(targets.begin(), targets.end()));
}

}  // namespace

TEST_CASE("lstm_lm: parameter names and shapes are the PyTorch peer's", "[nn][lstm_lm]") {
  models::lstm_lm<models::lstm_lm_config{.vocab = 65, .embedding = 64, .hidden = 256, .layers = 2}> model;
  std::vector<std::string> names;
  std::vector<std::vector<std::size_t>> shapes;
  std::size_t count = 0;
  model.visit_parameters([&](std::string_view n, nn::parameter& p) {
    names.emplace_back(n);
    shapes.push_back(p.shape());
    count += p.size();
  });
  CHECK(names == std::vector<std::string>{"emb.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0",
                                          "rnn.bias_hh_l0", "rnn.weight_ih_l1", "rnn.weight_hh_l1", "rnn.bias_ih_l1",
                                          "rnn.bias_hh_l1", "out.weight", "out.bias"});
  CHECK(shapes[0] == std::vector<std::size_t>{65, 64});
  CHECK(shapes[1] == std::vector<std::size_t>{1024, 64});
  CHECK(shapes[9] == std::vector<std::size_t>{65, 256});
  CHECK(count == 876929);  // the peer prints "params 0.877M"
}

TEST_CASE("lstm_lm: PyTorch's default initialisation and Zaremba's uniform one", "[nn][lstm_lm]") {
  models::lstm_lm<> model(tiny_config);
  model.init(seed{1});
  const float bound = 1.0f / std::sqrt(6.0f);
  model.visit_parameters([&](std::string_view name, nn::parameter& p) {
    INFO(name);
    if (name == "emb.weight") {
      double sum_sq = 0;
      for (float v : p.value()) sum_sq += double{v} * v;
      CHECK(std::abs(sum_sq / p.size() - 1.0) < 0.5);  // normal(0, 1), 35 values
    } else {
      for (float v : p.value()) REQUIRE(std::abs(v) <= bound);
    }
  });
  model.init_uniform(seed{2}, 0.1f);
  model.visit_parameters([&](std::string_view, nn::parameter& p) {
    for (float v : p.value()) REQUIRE(std::abs(v) <= 0.1f);
  });
  CHECK_THROWS_AS(models::lstm_lm<>(models::lstm_lm_config{.vocab = 7, .embedding = 5, .hidden = 0, .layers = 1}),
                  argument_error);
  const models::lstm_lm_config back = models::lstm_lm_config_from_metadata(
      [] {
        const auto m = models::to_metadata(tiny_config);
        return std::map<std::string, std::string, std::less<>>(m.begin(), m.end());
      }());
  CHECK((back.vocab == 7 && back.embedding == 5 && back.hidden == 6 && back.layers == 2));
}

TEST_CASE("lstm_lm: the whole model's loss and gradient match an independent double-precision computation",
          "[nn][lstm_lm]") {
  // 8 positions > 7 entries: the first input product is taken per vocabulary entry; 3 positions:
  // per position. Both paths against the same reference.
  for (const nn::batch_shape shape : {nn::batch_shape{2, 4}, nn::batch_shape{1, 3}}) {
    INFO("batch " << shape.batch << " x " << shape.time);
    models::lstm_lm<tiny_config> model;  // widths fixed at compile time
    model.init(seed{11});
    const token_batch warmup = random_batch(shape.rows(), tiny_config.vocab, 12), b = random_batch(shape.rows(), tiny_config.vocab, 13);
    // A first window leaves a state; the checked window continues from it.
    model.carry_state(true);
    model.forward(warmup.ids, warmup.targets, shape, {});
    std::vector<vec> state;
    model.visit_state([&](std::string_view, nn::matrix m) { state.push_back(to_double(m.span())); });
    REQUIRE(state.size() == 4);

    const std::vector<vec> h0 = every_other(state, 0), c0 = every_other(state, 1);
    check_model_gradient(model, b, shape, [&](const std::vector<vec>& p) {
      return reference_lstm_lm_loss(p, b.ids, b.targets, shape.batch, shape.time, tiny_config, h0, c0);
    });
  }
}

TEST_CASE("lstm_lm: with dropout, loss and gradient match the double-precision computation with the same masks",
          "[nn][lstm_lm]") {
  models::lstm_lm_config c = tiny_config;
  c.dropout = 0.3f;
  c.layers = 3;
  const nn::batch_shape shape{2, 4};  // 8 positions > 7 entries: without dropout it would read the table
  models::lstm_lm<> model(c);
  model.init(seed{11});
  const token_batch b = random_batch(shape.rows(), c.vocab, 13);
  // check_model_gradient trains in pass 0 of the zero noise seed; the model's salts: embeddings 0,
  // output 1, layer l's input 2^20 + l.
  const nn::run_context ctx{};
  lstm_lm_masks masks{dropout_multipliers(ctx, 0, c.dropout, shape.rows() * c.embedding), std::vector<vec>(c.layers),
                      dropout_multipliers(ctx, 1, c.dropout, shape.rows() * c.hidden)};
  for (std::size_t l = 1; l < c.layers; ++l)
    masks.between[l] = dropout_multipliers(ctx, (std::uint64_t{1} << 20) + l, c.dropout, shape.rows() * c.hidden);
  const std::vector<vec> zero(c.layers, vec(shape.batch * c.hidden));
  check_model_gradient(model, b, shape, [&](const std::vector<vec>& p) {
    return reference_lstm_lm_loss(p, b.ids, b.targets, shape.batch, shape.time, c, zero, zero, &masks);
  });

  // Evaluation drops nothing: the loss of the same weights without dropout (both read rows, 3 < 7).
  models::lstm_lm<> plain(tiny_config);
  models::lstm_lm<> dropping([] {
    models::lstm_lm_config d = tiny_config;
    d.dropout = 0.5f;
    return d;
  }());
  plain.init(seed{3});
  dropping.init(seed{3});
  const token_batch e = random_batch(3, c.vocab, 14);
  const float eval_loss = dropping.forward(e.ids, e.targets, {1, 3}, {.training = false});
  CHECK(eval_loss == plain.forward(e.ids, e.targets, {1, 3}, {}));
  CHECK(eval_loss != dropping.forward(e.ids, e.targets, {1, 3}, {}));

  // The probability travels with a checkpoint's metadata; a bad one is named.
  auto metadata = [](const models::lstm_lm_config& config) {
    const auto m = models::to_metadata(config);
    return std::map<std::string, std::string, std::less<>>(m.begin(), m.end());
  };
  CHECK(models::lstm_lm_config_from_metadata(metadata(c)).dropout == c.dropout);
  models::lstm_lm_config fine = c;
  fine.dropout = 0.123456789f;  // to the bit: six decimals would resume with another probability
  CHECK(models::lstm_lm_config_from_metadata(metadata(fine)).dropout == fine.dropout);
  auto bad = metadata(c);
  bad["lstm_lm.dropout"] = "1.5";
  CHECK_THROWS_WITH(models::lstm_lm_config_from_metadata(bad), Catch::Contains("lstm_lm.dropout"));
  bad["lstm_lm.dropout"] = "0.2x";
  CHECK_THROWS_WITH(models::lstm_lm_config_from_metadata(bad), Catch::Contains("lstm_lm.dropout"));
  bad.erase("lstm_lm.dropout");
  CHECK(models::lstm_lm_config_from_metadata(bad).dropout == 0.0f);
}

TEST_CASE("lstm_lm: static and run-time widths give the same numbers; eval mode the same math", "[nn][lstm_lm]") {
  models::lstm_lm<tiny_config> fixed;
  models::lstm_lm<> dynamic(tiny_config);
  fixed.init(seed{1});
  dynamic.init(seed{1});
  const token_batch b = random_batch(12, tiny_config.vocab, 2);
  const float loss = fixed.forward(b.ids, b.targets, {3, 4}, {});
  CHECK(loss == dynamic.forward(b.ids, b.targets, {3, 4}, {}));
  CHECK(loss == dynamic.forward(b.ids, b.targets, {3, 4}, {.training = false}));
  const token_batch bad = {{0, 1, 7, 0}, {0, 0, 0, 0}};
  CHECK_THROWS_AS(dynamic.forward(bad.ids, bad.targets, {1, 4}, {}), argument_error);
}

TEST_CASE("lstm_lm: loss and gradients are bit-identical on 1 and 2 threads", "[nn][lstm_lm]") {
  // Hidden 160: the per-step products (n = 640) split into two column blocks and the cell math
  // into two chunks of rows, so both threads have work.
  const float dropout = GENERATE(0.0f, 0.25f);
  const auto products = GENERATE(kernels::product_precision::f32, kernels::product_precision::bf16);
  INFO("dropout " << dropout << ", products " << kernels::name_of(products));
  const models::lstm_lm_config c{.vocab = 50, .embedding = 32, .hidden = 160, .layers = 2, .dropout = dropout};
  const nn::batch_shape shape{24, 12};
  const token_batch b1 = random_batch(shape.rows(), c.vocab, 3), b2 = random_batch(shape.rows(), c.vocab, 4);
  std::vector<std::vector<float>> grads[2];
  float losses[2][2];
  const thread_pool two(2);
  for (int run = 0; run < 2; ++run) {
    models::lstm_lm<> model(c);
    model.init(seed{4});
    model.carry_state(true);
    const nn::run_context ctx{.pool = run == 0 ? &serial_pool() : &two, .training = true, .products = products};
    model.visit_parameters([](std::string_view, nn::parameter& p) { p.zero_grad(); });
    losses[run][0] = model.forward(b1.ids, b1.targets, shape, ctx);
    model.backward(ctx);
    losses[run][1] = model.forward(b2.ids, b2.targets, shape, ctx);  // from the carried state
    model.backward(ctx);
    model.visit_parameters(
        [&](std::string_view, nn::parameter& p) { grads[run].emplace_back(p.grad().begin(), p.grad().end()); });
  }
  CHECK(losses[0][0] == losses[1][0]);
  CHECK(losses[0][1] == losses[1][1]);
  REQUIRE(grads[0].size() == grads[1].size());
  for (std::size_t k = 0; k < grads[0].size(); ++k) REQUIRE(grads[0][k] == grads[1][k]);
}

TEST_CASE("lstm_lm: bf16 products give the f32 loss and gradient to within bf16's rounding", "[nn][lstm_lm]") {
  // Both input paths of the first layer (per table row: 48 positions > 20 entries; per position: 6),
  // a second layer fed by the first, the carried state. bf16 keeps 8 significant bits (a relative
  // rounding of 2^-9 per operand), so each gradient may move by a few tenths of a percent of its
  // size (measured: 0.2-0.5%), not more; a product that read the wrong rows or columns moves it by
  // its whole size.
  const models::lstm_lm_config c{.vocab = 20, .embedding = 24, .hidden = 40, .layers = 2};
  for (const nn::batch_shape shape : {nn::batch_shape{4, 12}, nn::batch_shape{2, 3}}) {
    INFO("batch " << shape.batch << " x " << shape.time);
    const token_batch warmup = random_batch(shape.rows(), c.vocab, 41), b = random_batch(shape.rows(), c.vocab, 42);
    float losses[2];
    std::vector<std::vector<float>> grads[2];
    for (int run = 0; run < 2; ++run) {
      models::lstm_lm<> model(c);
      model.init(seed{43});
      model.carry_state(true);
      const nn::run_context ctx{.training = true,
                                .products = run == 0 ? kernels::product_precision::f32 : kernels::product_precision::bf16};
      model.forward(warmup.ids, warmup.targets, shape, ctx);
      model.visit_parameters([](std::string_view, nn::parameter& p) { p.zero_grad(); });
      losses[run] = model.forward(b.ids, b.targets, shape, ctx);
      model.backward(ctx);
      model.visit_parameters(
          [&](std::string_view, nn::parameter& p) { grads[run].emplace_back(p.grad().begin(), p.grad().end()); });
    }
    CHECK(losses[1] != losses[0]);  // the bf16 products were taken
    CHECK(std::abs(losses[1] - losses[0]) <= 1e-3 * std::abs(losses[0]));
    REQUIRE(grads[0].size() == grads[1].size());
    for (std::size_t k = 0; k < grads[0].size(); ++k) {
      INFO("parameter " << k);
      double difference = 0, size = 0;
      for (std::size_t i = 0; i < grads[0][k].size(); ++i) {
        difference += std::pow(double{grads[1][k][i]} - grads[0][k][i], 2);
        size += std::pow(double{grads[0][k][i]}, 2);
      }
      CHECK(std::sqrt(difference) <= 1e-2 * std::sqrt(size));  // 2e-3 to 5e-3 measured
    }
  }
}
