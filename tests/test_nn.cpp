// Every layer's backward against central finite differences taken in double precision on an
// independent scalar version of the layer (nn_reference.hpp); the float forward against the same.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lmkit/models/gpt.hpp"
#include "lmkit/nn/dropout.hpp"
#include "lmkit/nn/repeat.hpp"
#include "lmkit/nn/residual.hpp"
#include "lmkit/nn/rope_table.hpp"
#include "lmkit/nn/sequential.hpp"
#include "gradient_check.hpp"
#include "nn_reference.hpp"

using namespace lmkit;
using ref::vec;

TEST_CASE("linear: backward matches finite differences, with and without bias", "[nn]") {
  for (nn::bias b : {nn::bias::no, nn::bias::yes}) {
    nn::linear<> layer(5, 7, b);
    check_layer(layer, {2, 3}, 5, [&](const vec& x, const std::vector<vec>& p) {
      return ref::linear(x, 6, 5, p[0], 7, b == nn::bias::yes ? &p[1] : nullptr);
    });
  }
}

TEST_CASE("linear: widths fixed in the type are checked against the values given", "[nn]") {
  nn::linear<4, 8> fixed;
  CHECK(fixed.in_features() == 4);
  CHECK_THROWS_AS((nn::linear<4, 8>(4, 9)), shape_error);
}

TEST_CASE("layer norm and RMS norm: backward matches finite differences", "[nn]") {
  SECTION("layer norm with bias") {
    nn::layer_norm<> layer(9, nn::bias::yes);
    check_layer(layer, {3, 5}, 9, [](const vec& x, const std::vector<vec>& p) {
      return ref::layer_norm(x, 15, 9, p[0], &p[1], 1e-5);
    });
  }
  SECTION("layer norm without bias, more rows than one task") {
    nn::layer_norm<> layer(6);
    check_layer(layer, {5, 20}, 6, [](const vec& x, const std::vector<vec>& p) {
      return ref::layer_norm(x, 100, 6, p[0], nullptr, 1e-5);
    });
  }
  SECTION("RMS norm") {
    nn::rms_norm<> layer(8);
    check_layer(layer, {2, 4}, 8, [](const vec& x, const std::vector<vec>& p) { return ref::rms_norm(x, 8, 8, p[0], 1e-5); });
  }
}

TEST_CASE("mlp (GELU) and SwiGLU: backward matches finite differences", "[nn]") {
  for (nn::activation act : {nn::activation::gelu_erf, nn::activation::gelu_tanh}) {
    nn::mlp<> layer(6, 10, act, nn::bias::yes);
    check_layer(layer, {2, 3}, 6, [&](const vec& x, const std::vector<vec>& p) {
      vec h = ref::linear(x, 6, 6, p[0], 10, &p[1]);
      for (double& v : h) v = act == nn::activation::gelu_erf ? ref::gelu_erf(v) : ref::gelu_tanh(v);
      return ref::linear(h, 6, 10, p[2], 6, &p[3]);
    });
  }
  nn::swiglu_mlp<> swiglu(6, 11);
  check_layer(swiglu, {2, 3}, 6, [](const vec& x, const std::vector<vec>& p) {
    const vec gate = ref::linear(x, 6, 6, p[0], 11), up = ref::linear(x, 6, 6, p[1], 11);
    vec h(gate.size());
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = ref::silu(gate[i]) * up[i];
    return ref::linear(h, 6, 11, p[2], 6);
  });
}

TEST_CASE("self-attention: backward matches finite differences", "[nn]") {
  struct variant {
    const char* name;
    nn::attention_options options;
  };
  const std::vector<variant> variants = {
      {"causal", {.heads = 2}},
      {"bidirectional", {.heads = 2, .causal = false}},
      {"grouped-query (4 query heads, 2 key/value heads)", {.heads = 4, .kv_heads = 2}},
      {"one key/value head, biases", {.heads = 4, .kv_heads = 1, .qkv_bias = nn::bias::yes, .out_bias = nn::bias::yes}},
      {"RoPE, half rotation", {.heads = 2, .rope = nn::rope_options{.base = 100.0}}},
      {"RoPE, adjacent pairs, grouped",
       {.heads = 4, .kv_heads = 2, .rope = nn::rope_options{.base = 50.0, .style = kernels::rope_style::adjacent_pairs}}},
      {"dropout on the attention weights, grouped", {.heads = 4, .kv_heads = 2, .dropout = 0.3f, .dropout_salt = 5}},
  };
  for (const variant& v : variants) {
    SECTION(v.name) {
      const std::size_t width = 8, batch = 2, time = 5;
      nn::self_attention<> layer(width, v.options);
      const std::size_t heads = v.options.heads, kv = layer.kv_heads(), d = width / heads;
      const bool has_bias = v.options.qkv_bias == nn::bias::yes;
      check_layer(layer, {batch, time}, width, [&](const vec& x, const std::vector<vec>& p) {
        const std::size_t qkv_width = (heads + 2 * kv) * d;
        const vec qkv = ref::linear(x, batch * time, width, p[0], qkv_width, has_bias ? &p[1] : nullptr);
        ref::attention_shape s{batch, time, heads, kv, d, v.options.causal};
        // Dropout's mask, drawn as the layer is documented to draw it: the harness runs with noise
        // seed 0 and pass 0; weight (b, h, i, j) keeps value number salt * 2^40 + its index.
        ref::vec mask;
        if (v.options.dropout > 0.0f) {
          const philox stream(seed{0}, 0);
          for (std::size_t at = 0; at < batch * heads * time * time; ++at) {
            const float u = static_cast<float>(stream.at((v.options.dropout_salt << 40) + at) >> 8) * 0x1p-24f;
            mask.push_back(u < v.options.dropout ? 0.0 : 1.0 / (1.0 - v.options.dropout));
          }
          s.weight_mask = &mask;
        }
        if (v.options.rope) {
          s.rope = true;
          s.rope_base = v.options.rope->base;
          s.rope_half = v.options.rope->style == kernels::rope_style::half_rotation;
        }
        const vec y = ref::attention(qkv, s);
        return ref::linear(y, batch * time, heads * d, p[has_bias ? 2 : 1], width, has_bias ? &p[3] : nullptr);
      });
    }
  }
}

TEST_CASE("self-attention: heads that do not divide the width are refused", "[nn]") {
  CHECK_THROWS_AS(nn::self_attention<>(10, {.heads = 3}), argument_error);
  CHECK_THROWS_AS(nn::self_attention<>(12, {.heads = 4, .kv_heads = 3}), argument_error);
}

TEST_CASE("positional embedding and the combinators: backward matches finite differences", "[nn]") {
  SECTION("positional embedding") {
    nn::positional_embedding<> layer(6, 4);
    check_layer(layer, {3, 5}, 4, [](const vec& x, const std::vector<vec>& p) {
      vec y = x;
      for (std::size_t r = 0; r < 15; ++r)
        for (std::size_t i = 0; i < 4; ++i) y[r * 4 + i] += p[0][(r % 5) * 4 + i];
      return y;
    });
  }
  SECTION("sequential<linear, layer_norm, residual<mlp>> and repeat") {
    using block = nn::residual<nn::mlp<>>;
    nn::sequential<nn::linear<>, nn::layer_norm<>, nn::repeat<2, block>> layer(
        nn::linear<>(5, 6), nn::layer_norm<>(6),
        nn::repeat<2, block>(2, [](std::size_t) { return block(nn::mlp<>(6, 12, nn::activation::gelu_tanh)); }));
    std::vector<std::string> names;
    layer.visit_parameters([&](std::string_view n, nn::parameter&) { names.emplace_back(n); }, "");
    CHECK(names == std::vector<std::string>{"0.weight", "1.weight", "2.0.c_fc.weight", "2.0.c_proj.weight",
                                            "2.1.c_fc.weight", "2.1.c_proj.weight"});
    check_layer(layer, {2, 2}, 5, [](const vec& x, const std::vector<vec>& p) {
      vec h = ref::layer_norm(ref::linear(x, 4, 5, p[0], 6), 4, 6, p[1], nullptr, 1e-5);
      for (int b = 0; b < 2; ++b) {
        vec u = ref::linear(h, 4, 6, p[2 + 2 * b], 12);
        for (double& v : u) v = ref::gelu_tanh(v);
        h = ref::add(h, ref::linear(u, 4, 12, p[3 + 2 * b], 6));
      }
      return h;
    });
  }
  SECTION("widths that do not chain are refused at construction") {
    CHECK_THROWS_AS((nn::sequential<nn::linear<>, nn::linear<>>(nn::linear<>(3, 4), nn::linear<>(5, 2))), shape_error);
  }
}

TEST_CASE("embedding: gradient rows sum over repeated ids; bad ids are refused", "[nn]") {
  nn::embedding<> emb(5, 3);
  philox rng(seed{3});
  emb.weight().init_normal(rng, 1.0f);
  nn::activation_arena arena;
  arena.plan([&](nn::activation_arena& a) { emb.reserve(a, {1, 4}); });
  const std::vector<token_id> ids = {2, 0, 2, 4};
  const nn::const_matrix y = emb.forward(ids, {});
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t i = 0; i < 3; ++i) CHECK(y(r, i) == emb.weight().value()[ids[r] * 3 + i]);
  std::vector<float> dy = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  emb.weight().zero_grad();
  emb.backward(nn::as_matrix(std::span<const float>(dy), 4, 3), {});
  const std::vector<float> want = {4, 5, 6, 0, 0, 0, 1 + 7, 2 + 8, 3 + 9, 0, 0, 0, 10, 11, 12};
  CHECK(std::vector<float>(emb.weight().grad().begin(), emb.weight().grad().end()) == want);
  const std::vector<token_id> bad = {0, 5, 1, 1};
  CHECK_THROWS_AS(emb.forward(bad, {}), argument_error);
}

TEST_CASE("softmax cross-entropy: loss and gradient match the reference", "[nn]") {
  const std::size_t rows = 6, vocab = 7;
  philox rng(seed{5});
  std::vector<float> logits(rows * vocab);
  for (float& v : logits) v = static_cast<float>(2.0 * rng.normal());
  const std::vector<token_id> targets = {0, 6, 3, 3, 1, 5};
  nn::softmax_cross_entropy ce;
  nn::activation_arena arena;
  arena.plan([&](nn::activation_arena& a) { ce.reserve(a, {2, 3}, vocab); });
  const float loss = ce.forward(nn::as_matrix(std::span<const float>(logits), rows, vocab), targets, {});
  const std::vector<unsigned> t(targets.begin(), targets.end());
  vec ld = to_double(logits);
  CHECK(std::abs(loss - ref::cross_entropy(ld, rows, vocab, t)) < 1e-5);
  const nn::const_matrix d = ce.backward({});
  for (std::size_t i = 0; i < ld.size(); ++i) {
    const double keep = ld[i], h = 1e-6;
    ld[i] = keep + h;
    const double up = ref::cross_entropy(ld, rows, vocab, t);
    ld[i] = keep - h;
    const double down = ref::cross_entropy(ld, rows, vocab, t);
    ld[i] = keep;
    require_close(d.data()[i], (up - down) / (2 * h), "dlogits[" + std::to_string(i) + "]");
  }
  const std::vector<token_id> out_of_range = {0, 7, 0, 0, 0, 0};
  CHECK_THROWS_AS(ce.forward(nn::as_matrix(std::span<const float>(logits), rows, vocab), out_of_range, {}), argument_error);
}

TEST_CASE("softmax cross-entropy in place: the same loss and gradient, written over the logits", "[nn]") {
  const std::size_t rows = 6, vocab = 9;
  philox rng(seed{8});
  std::vector<float> logits(rows * vocab);
  for (float& v : logits) v = static_cast<float>(3.0 * rng.normal());
  const std::vector<token_id> targets = {8, 0, 4, 4, 2, 7};
  nn::softmax_cross_entropy apart, in_place;
  nn::activation_arena arena;
  arena.plan([&](nn::activation_arena& a) {
    apart.reserve(a, {3, 2}, vocab);
    in_place.reserve_in_place(a, {3, 2}, vocab);
  });
  const float loss = apart.forward(nn::as_matrix(std::span<const float>(logits), rows, vocab), targets, {});
  const nn::const_matrix want = apart.backward({}, 0.5f);
  std::vector<float> buffer = logits;
  const nn::matrix over = nn::as_matrix(std::span<float>(buffer), rows, vocab);
  CHECK(in_place.forward_in_place(over, targets, {}) == loss);
  const nn::const_matrix got = in_place.backward({}, 0.5f);
  CHECK(got.data() == buffer.data());  // no buffer of its own
  for (std::size_t i = 0; i < rows * vocab; ++i) REQUIRE(got.data()[i] == want.data()[i]);
  // Each forward goes with its own reserve.
  CHECK_THROWS_AS(in_place.forward(nn::as_matrix(std::span<const float>(logits), rows, vocab), targets, {}), argument_error);
  CHECK_THROWS_AS(apart.forward_in_place(over, targets, {}), argument_error);
}

TEST_CASE("dropout: drops about p of the activations, scales the rest, and masks the gradient alike", "[nn]") {
  nn::dropout<> drop(100, 0.25f, /*salt=*/3);
  nn::activation_arena arena;
  arena.plan([&](nn::activation_arena& a) { drop.reserve(a, {10, 10}); });
  std::vector<float> x(100 * 100, 1.0f);
  const auto matrix = nn::as_matrix(std::span<const float>(x), 100, 100);
  const nn::run_context ctx{.training = true, .noise = seed{9}, .pass = 4};
  const std::vector<float> y = [&] {
    const nn::const_matrix out = drop.forward(matrix, ctx);
    return std::vector<float>(out.data(), out.data() + out.size());
  }();
  std::size_t zeros = 0;
  for (float v : y) {
    REQUIRE((v == 0.0f || std::abs(v - 1.0f / 0.75f) < 1e-6f));
    zeros += v == 0.0f;
  }
  CHECK(std::abs(static_cast<double>(zeros) / 10000.0 - 0.25) < 0.02);  // 4.6 standard deviations
  const nn::const_matrix dx = drop.backward(matrix, ctx);
  for (std::size_t i = 0; i < 10000; ++i) REQUIRE(dx.data()[i] == y[i]);
  // The mask is a function of (noise seed, pass, salt): the same again, another for any other.
  auto mask_of = [&](nn::dropout<>& layer, nn::run_context c) {
    const nn::const_matrix out = layer.forward(matrix, c);
    return std::vector<float>(out.data(), out.data() + out.size());
  };
  CHECK(mask_of(drop, ctx) == y);
  const thread_pool two(2);
  CHECK(mask_of(drop, {.pool = &two, .training = true, .noise = seed{9}, .pass = 4}) == y);
  CHECK(mask_of(drop, {.training = true, .noise = seed{9}, .pass = 5}) != y);
  CHECK(mask_of(drop, {.training = true, .noise = seed{10}, .pass = 4}) != y);
  nn::dropout<> other(100, 0.25f, /*salt=*/4);
  arena.plan([&](nn::activation_arena& a) {
    drop.reserve(a, {10, 10});
    other.reserve(a, {10, 10});
  });
  CHECK(mask_of(other, ctx) != mask_of(drop, ctx));
  // Not training: the identity, no copy.
  CHECK(drop.forward(matrix, {.training = false}).data() == x.data());
}

namespace {

constexpr models::gpt_config tiny_config{.vocab = 7, .context = 6, .layers = 2, .heads = 2, .dim = 8};

/// The whole GPT in double, written out as in llm.c's forward pass, parameters in visiting order.
double reference_gpt_loss(const std::vector<vec>& p, const std::vector<token_id>& ids, const std::vector<token_id>& targets,
                          std::size_t batch, std::size_t time, const models::gpt_config& c) {
  const std::size_t n = batch * time, C = c.dim;
  vec x(n * C);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t i = 0; i < C; ++i) x[r * C + i] = p[0][ids[r] * C + i] + p[1][(r % time) * C + i];
  // Parameters in visiting order; with biases each weight is followed by its bias (GPT-2).
  const bool bias = c.bias == nn::bias::yes;
  std::size_t k = 2;
  auto next = [&]() -> const vec& { return p[k++]; };
  auto next_bias = [&]() -> const vec* { return bias ? &p[k++] : nullptr; };
  for (std::size_t l = 0; l < c.layers; ++l) {
    const vec& ln1 = next();
    const vec* ln1_b = next_bias();
    const vec& c_attn = next();
    const vec* c_attn_b = next_bias();
    const vec& attn_proj = next();
    const vec* attn_proj_b = next_bias();
    const vec& ln2 = next();
    const vec* ln2_b = next_bias();
    const vec& c_fc = next();
    const vec* c_fc_b = next_bias();
    const vec& mlp_proj = next();
    const vec* mlp_proj_b = next_bias();
    const vec qkv = ref::linear(ref::layer_norm(x, n, C, ln1, ln1_b, 1e-5), n, C, c_attn, 3 * C, c_attn_b);
    const vec y = ref::attention(qkv, {batch, time, c.heads, c.heads, C / c.heads, true});
    x = ref::add(x, ref::linear(y, n, C, attn_proj, C, attn_proj_b));
    vec h = ref::linear(ref::layer_norm(x, n, C, ln2, ln2_b, 1e-5), n, C, c_fc, 4 * C, c_fc_b);
    for (double& v : h) v = c.activation == nn::activation::gelu_tanh ? ref::gelu_tanh(v) : ref::gelu_erf(v);
    x = ref::add(x, ref::linear(h, n, 4 * C, mlp_proj, C, mlp_proj_b));
  }
  const vec& ln_f = next();
  x = ref::layer_norm(x, n, C, ln_f, next_bias(), 1e-5);
  const vec logits = ref::linear(x, n, C, p[0], c.vocab);  // tied to the token embedding
  return ref::cross_entropy(logits, n, c.vocab, std::vector<unsigned>(targets.begin(), targets.end()));
}

}  // namespace

namespace {

/// The float model's loss and every parameter's gradient against the double reference.
template <class Model>
void check_whole_gpt(Model& model, const models::gpt_config& config) {
  // Larger weights than GPT-2's 0.02 so that every path carries a gradient worth checking.
  philox rng(seed{12});
  model.visit_parameters([&](std::string_view, nn::parameter& p) { p.init_normal(rng, 0.4f); });
  const nn::batch_shape shape{2, 5};
  const token_batch b = random_batch(shape.rows(), config.vocab, 13);
  check_model_gradient(model, b, shape, [&](const std::vector<vec>& p) {
    return reference_gpt_loss(p, b.ids, b.targets, shape.batch, shape.time, config);
  });
}

}  // namespace

TEST_CASE("gpt: the whole model's loss and gradient match an independent double-precision computation", "[nn][gpt]") {
  models::gpt<tiny_config> model;  // widths fixed at compile time
  std::vector<std::string> names;
  model.visit_parameters([&](std::string_view name, nn::parameter&) { names.emplace_back(name); });
  CHECK(names.front() == "transformer.wte.weight");
  CHECK(names[4] == "transformer.h.0.attn.c_proj.weight");
  CHECK(names.back() == "transformer.ln_f.weight");
  check_whole_gpt(model, tiny_config);
}

TEST_CASE("gpt: GPT-2's variant (biases everywhere, GELU-tanh) matches the reference too", "[nn][gpt]") {
  const models::gpt_config gpt2_like{.vocab = 7, .context = 6, .layers = 2, .heads = 2, .dim = 8,
                                     .bias = nn::bias::yes, .activation = nn::activation::gelu_tanh};
  models::gpt<> model(gpt2_like);  // widths from a run-time value
  std::vector<std::string> names;
  model.visit_parameters([&](std::string_view name, nn::parameter&) { names.emplace_back(name); });
  CHECK(names[3] == "transformer.h.0.ln_1.bias");
  CHECK(names[5] == "transformer.h.0.attn.c_attn.bias");
  CHECK(names.back() == "transformer.ln_f.bias");
  check_whole_gpt(model, gpt2_like);
}

TEST_CASE("gpt: the same sizes as run-time values give the same model and numbers", "[nn][gpt]") {
  models::gpt<tiny_config> fixed;
  models::gpt<> dynamic(tiny_config);
  fixed.init(seed{1});
  dynamic.init(seed{1});
  const token_batch b = random_batch(12, tiny_config.vocab, 2);
  CHECK(fixed.forward(b.ids, b.targets, {2, 6}, {}) == dynamic.forward(b.ids, b.targets, {2, 6}, {}));
  CHECK_THROWS_AS(models::gpt<>(models::gpt_config{.vocab = 7, .context = 6, .layers = 2, .heads = 3, .dim = 8}),
                  argument_error);
  CHECK_THROWS_AS(dynamic.forward(b.ids, b.targets, {1, 12}, {}), argument_error);  // longer than the context
}

TEST_CASE("gpt: loss and gradients are bit-identical on 1 and 2 threads", "[nn][gpt]") {
  const float dropout = GENERATE(0.0f, 0.1f);
  const auto products = GENERATE(kernels::product_precision::f32, kernels::product_precision::bf16);
  const models::gpt_config c{.vocab = 50, .context = 32, .layers = 2, .heads = 4, .dim = 64, .dropout = dropout};
  const token_batch b = random_batch(4 * 32, c.vocab, 3);
  std::vector<std::vector<float>> grads[2];
  float losses[2];
  const thread_pool two(2);
  for (int run = 0; run < 2; ++run) {
    models::gpt<> model(c);
    model.init(seed{4});
    const nn::run_context ctx{run == 0 ? &serial_pool() : &two, true, seed{8}, 3, products};
    model.visit_parameters([](std::string_view, nn::parameter& p) { p.zero_grad(); });
    losses[run] = model.forward(b.ids, b.targets, {4, 32}, ctx);
    model.backward(ctx);
    model.visit_parameters(
        [&](std::string_view, nn::parameter& p) { grads[run].emplace_back(p.grad().begin(), p.grad().end()); });
  }
  CHECK(losses[0] == losses[1]);
  REQUIRE(grads[0].size() == grads[1].size());
  for (std::size_t k = 0; k < grads[0].size(); ++k) REQUIRE(grads[0][k] == grads[1][k]);
}

TEST_CASE("gpt: bf16 products give the f32 model's loss and gradients to bf16's precision", "[nn][gpt]") {
  const models::gpt_config c{.vocab = 50, .context = 32, .layers = 2, .heads = 4, .dim = 64};
  const token_batch b = random_batch(4 * 32, c.vocab, 3);
  std::vector<std::vector<float>> grads[2];
  float losses[2];
  for (int run = 0; run < 2; ++run) {
    models::gpt<> model(c);
    model.init(seed{4});
    nn::run_context ctx;
    ctx.products = run == 0 ? kernels::product_precision::f32 : kernels::product_precision::bf16;
    model.visit_parameters([](std::string_view, nn::parameter& p) { p.zero_grad(); });
    losses[run] = model.forward(b.ids, b.targets, {4, 32}, ctx);
    model.backward(ctx);
    model.visit_parameters(
        [&](std::string_view, nn::parameter& p) { grads[run].emplace_back(p.grad().begin(), p.grad().end()); });
  }
  // The products did change (bf16 was used), each by up to bf16's unit roundoff (2^-9) relative;
  // the loss at initialisation, near log(vocab) with small logits, hardly moves (measured 9e-6
  // relative), the gradients by up to 0.6% (norm of the difference over the norm).
  CHECK(losses[0] != losses[1]);
  CHECK(std::abs(losses[1] - losses[0]) <= 1e-4 * std::abs(losses[0]));
  REQUIRE(grads[0].size() == grads[1].size());
  for (std::size_t k = 0; k < grads[0].size(); ++k) {
    double diff = 0.0, norm = 0.0;
    for (std::size_t i = 0; i < grads[0][k].size(); ++i) {
      diff += std::pow(double{grads[1][k][i]} - grads[0][k][i], 2);
      norm += std::pow(double{grads[0][k][i]}, 2);
    }
    INFO("parameter " << k);
    CHECK(std::sqrt(diff) <= 0.01 * std::sqrt(norm));
  }
}

TEST_CASE("gpt: dropout acts while training only; evaluation is the dropout-free model's", "[nn][gpt]") {
  const models::gpt_config plain{.vocab = 50, .context = 16, .layers = 2, .heads = 2, .dim = 32};
  models::gpt_config with = plain;
  with.dropout = 0.2f;
  models::gpt<> a(plain), b(with);
  a.init(seed{6});
  b.init(seed{6});
  const token_batch t = random_batch(2 * 16, plain.vocab, 7);
  const nn::run_context eval{.training = false}, train{.training = true, .noise = seed{1}};
  const float reference = a.forward(t.ids, t.targets, {2, 16}, eval);
  CHECK(b.forward(t.ids, t.targets, {2, 16}, eval) == reference);
  CHECK(a.forward(t.ids, t.targets, {2, 16}, train) == reference);
  const float dropped = b.forward(t.ids, t.targets, {2, 16}, train);
  CHECK(dropped != reference);
  CHECK(b.forward(t.ids, t.targets, {2, 16}, train) == dropped);  // the same pass: the same masks
  const float another = b.forward(t.ids, t.targets, {2, 16}, {.training = true, .noise = seed{1}, .pass = 1});
  CHECK(another != dropped);
  auto metadata = [](const models::gpt_config& c) {
    const auto m = models::to_metadata(c);
    return std::map<std::string, std::string, std::less<>>(m.begin(), m.end());
  };
  CHECK(models::gpt_config_from_metadata(metadata(with)).dropout == 0.2f);
  // Floats come back to the bit, however many digits they need (six decimals would lose both).
  models::gpt_config fine = with;
  fine.dropout = 0.123456789f;
  fine.norm_eps = 1e-7f;
  CHECK(models::gpt_config_from_metadata(metadata(fine)).dropout == fine.dropout);
  CHECK(models::gpt_config_from_metadata(metadata(fine)).norm_eps == fine.norm_eps);
  auto bad_eps = metadata(with);
  bad_eps["gpt.norm_eps"] = "1e-5x";
  CHECK_THROWS_WITH(models::gpt_config_from_metadata(bad_eps), Catch::Contains("gpt.norm_eps = '1e-5x'"));
  // Bad probabilities are refused where they are given; an older checkpoint without the key has none.
  auto bad = metadata(with);
  bad["gpt.dropout"] = "1.5";
  CHECK_THROWS_WITH(models::gpt_config_from_metadata(bad), Catch::Contains("gpt.dropout"));
  bad["gpt.dropout"] = "0.2x";  // a number with something after it is not one
  CHECK_THROWS_WITH(models::gpt_config_from_metadata(bad), Catch::Contains("gpt.dropout"));
  bad.erase("gpt.dropout");
  CHECK(models::gpt_config_from_metadata(bad).dropout == 0.0f);
  models::gpt_config one = plain;
  one.dropout = 1.0f;
  CHECK_THROWS_AS(models::gpt<>(one), argument_error);
  CHECK_THROWS_AS(nn::self_attention<>(8, {.heads = 2, .dropout = -0.1f}), argument_error);
  CHECK_THROWS_AS(nn::dropout<>(8, 1.0f), argument_error);
}

TEST_CASE("gpt: infer refuses a KV cache of another shape, wrong logit slots, bad tokens and a full cache",
          "[nn][gpt][inference]") {
  models::gpt<> model({.vocab = 7, .context = 6, .layers = 2, .heads = 2, .dim = 8});
  model.init(seed{1});
  std::vector<float> scratch, last(7), three(3 * 7);
  const std::vector<token_id> two = {1, 2};
  gen::kv_cache cache(2, 6, 8), other_layers(1, 6, 8), short_cache(2, 2, 8);
  CHECK_THROWS_AS(model.infer(two, other_layers, last, scratch, serial_pool()), argument_error);
  CHECK_THROWS_AS(model.infer(two, cache, three, scratch, serial_pool()), argument_error);
  CHECK_THROWS_AS(model.infer(std::vector<token_id>{9}, cache, last, scratch, serial_pool()), argument_error);
  CHECK(cache.size() == 0);  // nothing ran
  model.infer(two, short_cache, last, scratch, serial_pool());
  CHECK_THROWS_WITH(model.infer(two, short_cache, last, scratch, serial_pool()), Catch::Contains("context is full"));
  CHECK_THROWS_AS(nn::rms_norm<>(std::span<const float>{}, {}, 1e-5f), argument_error);  // a frozen norm needs its gain
}

// ---- The same layers at inference: `infer` over a KV cache, and frozen layers over file weights ----

namespace {

/// Random values for every parameter: norm gains near 1, the rest normal(0, 0.3).
template <class Layer>
void randomize(Layer& layer, std::uint64_t s) {
  philox rng(seed{s});
  layer.visit_parameters(
      [&](std::string_view name, nn::parameter& p) {
        p.init_normal(rng, 0.3f);
        if (p.shape().size() == 1 && name.ends_with("weight"))
          for (float& v : p.value()) v += 1.0f;
      },
      "");
}

/// The block's training forward over one sequence of `time` positions (not training: no dropout).
template <class Block>
std::vector<float> forward_rows(Block& block, const std::vector<float>& x, std::size_t time) {
  nn::activation_arena arena;
  arena.plan([&](nn::activation_arena& a) { block.reserve(a, {1, time}); });
  const nn::const_matrix y =
      block.forward(nn::as_matrix(std::span<const float>(x), time, block.in_features()), {.training = false});
  return {y.data(), y.data() + y.size()};
}

/// The block's `infer` over the same positions in chunks of `chunk` new tokens against a KV cache.
template <class Block>
std::vector<float> infer_rows(const Block& block, const std::vector<float>& x, std::size_t time, std::size_t kv_width,
                              std::size_t chunk, const nn::attention_inference& how) {
  const std::size_t width = block.in_features();
  std::vector<float> keys(time * kv_width), values(time * kv_width), out = x, scratch(block.infer_scratch(chunk));
  for (std::size_t begin = 0; begin < time; begin += chunk) {
    const std::size_t n = std::min(chunk, time - begin);
    block.infer(out.data() + begin * width, n, {keys.data(), values.data(), begin}, how, scratch, serial_pool());
  }
  return out;
}

void require_rows_close(const std::vector<float>& a, const std::vector<float>& b, float tolerance) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(std::abs(a[i] - b[i]) <= tolerance * (1.0f + std::abs(b[i])));
}

std::vector<float> random_rows(std::size_t n, std::uint64_t s) {
  philox rng(seed{s});
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(rng.normal());
  return x;
}

}  // namespace

TEST_CASE("transformer block: infer over a KV cache gives the training forward's rows, token by token and in chunks",
          "[nn][inference]") {
  const std::size_t width = 16, time = 9;
  SECTION("GPT-2's block: layer norm with bias, fused c_attn with bias, GELU-tanh MLP") {
    nn::transformer_block<nn::layer_norm<>, nn::self_attention<>, nn::mlp<>> block(
        nn::layer_norm<>(width, nn::bias::yes),
        nn::self_attention<>(width, {.heads = 4, .qkv_bias = nn::bias::yes, .out_bias = nn::bias::yes}),
        nn::layer_norm<>(width, nn::bias::yes), nn::mlp<>(width, 40, nn::activation::gelu_tanh, nn::bias::yes));
    randomize(block, 3);
    const std::vector<float> x = random_rows(time * width, 4), want = forward_rows(block, x, time);
    for (std::size_t chunk : {std::size_t{1}, std::size_t{4}, time})
      require_rows_close(infer_rows(block, x, time, width, chunk, {}), want, 2e-5f);
  }
  for (kernels::rope_style style : {kernels::rope_style::half_rotation, kernels::rope_style::adjacent_pairs}) {
    SECTION(std::string("Llama's block: RMS norm, grouped-query rotary attention, SwiGLU; rotation ") +
            (style == kernels::rope_style::half_rotation ? "by halves" : "of adjacent pairs")) {
      const nn::rope_options rope{.base = 500.0, .style = style};
      nn::transformer_block<nn::rms_norm<>, nn::self_attention<>, nn::swiglu_mlp<>> block(
          nn::rms_norm<>(width), nn::self_attention<>(width, {.heads = 4, .kv_heads = 2, .rope = rope}),
          nn::rms_norm<>(width), nn::swiglu_mlp<>(width, 24));
      randomize(block, 5);
      const nn::rope_table table(time, width / 4, rope.base);
      const std::vector<float> x = random_rows(time * width, 6), want = forward_rows(block, x, time);
      for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, time})
        require_rows_close(infer_rows(block, x, time, 2 * (width / 4), chunk, {.rope = &table}), want, 2e-5f);
      // The rotary table must be the layer's.
      const nn::rope_table other(time, width / 4, 10000.0);
      CHECK_THROWS_AS(infer_rows(block, x, time, 8, 1, {.rope = &other}), argument_error);
      CHECK_THROWS_AS(infer_rows(block, x, time, 8, 1, {}), argument_error);
    }
  }
}

TEST_CASE("frozen layers: views of weights held elsewhere, in f32 or f16, run infer only", "[nn][inference]") {
  const std::size_t width = 16, time = 6, heads = 4, kv_heads = 2, head_dim = 4, hidden = 24;
  const nn::rope_options rope{.base = 10000.0};
  nn::transformer_block<nn::rms_norm<>, nn::self_attention<>, nn::swiglu_mlp<>> trained(
      nn::rms_norm<>(width), nn::self_attention<>(width, {.heads = heads, .kv_heads = kv_heads, .rope = rope}),
      nn::rms_norm<>(width), nn::swiglu_mlp<>(width, hidden));
  randomize(trained, 7);
  const nn::rope_table table(time, head_dim, rope.base);
  const std::vector<float> x = random_rows(time * width, 8);

  for (weight_type type : {weight_type::f32, weight_type::f16}) {
    SECTION(std::string("weights as ") + std::string(name_of(type)) + ", q / k / v as separate matrices") {
      // The file's copy of each matrix, and the trained layer's weights rounded to what the file holds.
      std::vector<std::vector<std::uint16_t>> halves;
      auto frozen = [&](nn::linear<>& l) {
        const std::span<float> w = l.weight().value();
        if (type == weight_type::f32) return nn::linear<>(l.weights());
        auto& h = halves.emplace_back(w.size());
        for (std::size_t i = 0; i < w.size(); ++i) {
          h[i] = std::bit_cast<std::uint16_t>(f16::from_float(w[i]));
          w[i] = to_float(std::bit_cast<f16>(h[i]));
        }
        return nn::linear<>(weight_matrix{weight_type::f16, h.data(), l.out_features(), l.in_features()});
      };
      auto& attn = trained.attn();
      const std::span<float> fused = attn.qkv_projection().weight().value();
      if (type == weight_type::f16)
        for (float& v : fused) v = f16::from_float(v).to_float();
      // q, k, v: row slices of the fused matrix (in f16: copies of those rows).
      std::vector<nn::linear<>> qkv;
      for (auto [first, count] : {std::pair{std::size_t{0}, heads * head_dim}, std::pair{heads * head_dim, kv_heads * head_dim},
                                  std::pair{(heads + kv_heads) * head_dim, kv_heads * head_dim}}) {
        if (type == weight_type::f32) {
          qkv.emplace_back(weight_matrix{weight_type::f32, fused.data() + first * width, count, width});
        } else {
          auto& h = halves.emplace_back(count * width);
          for (std::size_t i = 0; i < h.size(); ++i) h[i] = std::bit_cast<std::uint16_t>(f16::from_float(fused[first * width + i]));
          qkv.emplace_back(weight_matrix{weight_type::f16, h.data(), count, width});
        }
      }
      nn::transformer_block<nn::rms_norm<>, nn::self_attention<>, nn::swiglu_mlp<>> view(
          nn::rms_norm<>(trained.ln_1().weight().value(), {}, 1e-5f),
          nn::self_attention<>(width, {.heads = heads, .kv_heads = kv_heads, .rope = rope}, std::move(qkv[0]),
                               std::move(qkv[1]), std::move(qkv[2]), frozen(attn.output_projection())),
          nn::rms_norm<>(trained.ln_2().weight().value(), {}, 1e-5f),
          nn::swiglu_mlp<>(frozen(trained.mlp().gate_proj()), frozen(trained.mlp().up_proj()),
                           frozen(trained.mlp().down_proj())));
      // The trained block (its weights now as the file holds them) and the view agree.
      const std::vector<float> want = forward_rows(trained, x, time);
      for (std::size_t chunk : {std::size_t{1}, time})
        require_rows_close(infer_rows(view, x, time, kv_heads * head_dim, chunk, {.rope = &table}), want, 1e-4f);

      std::size_t visited = 0;
      view.visit_parameters([&](std::string_view, nn::parameter&) { ++visited; }, "");
      CHECK(visited == 0);  // nothing to train
      nn::activation_arena arena;
      arena.plan([&](nn::activation_arena& a) { view.reserve(a, {1, time}); });
      CHECK_THROWS_AS(view.forward(nn::as_matrix(std::span<const float>(x), time, width), {}), argument_error);
    }
  }
  SECTION("shapes that do not fit are refused") {
    std::vector<float> w(16 * 16);
    const weight_matrix square{weight_type::f32, w.data(), 16, 16}, narrow{weight_type::f32, w.data(), 8, 16};
    CHECK_THROWS_AS(nn::self_attention<>(16, {.heads = 4}, nn::linear<>(square), nn::linear<>(narrow), nn::linear<>(square),
                                         nn::linear<>(square)),
                    shape_error);
    CHECK_THROWS_AS(nn::swiglu_mlp<>(nn::linear<>(narrow), nn::linear<>(square), nn::linear<>(square)), shape_error);
    CHECK_THROWS_AS(nn::linear<>(square, std::span<const float>(w.data(), 8)), shape_error);
  }
}
