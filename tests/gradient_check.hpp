// The layer gradient harness shared by the nn tests: a layer's float forward against an independent
// double-precision reference (nn_reference.hpp), and its backward against central finite
// differences of that reference.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/parallel.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/nn/layer.hpp"
#include "nn_reference.hpp"

/// Random token ids and next-token targets for a model test.
struct token_batch {
  std::vector<lmkit::token_id> ids, targets;
};
inline token_batch random_batch(std::size_t rows, std::size_t vocab, std::uint64_t seed_value) {
  lmkit::philox rng(lmkit::seed{seed_value});
  token_batch b;
  for (std::size_t i = 0; i < rows; ++i) {
    b.ids.push_back(static_cast<lmkit::token_id>(rng() % vocab));
    b.targets.push_back(static_cast<lmkit::token_id>(rng() % vocab));
  }
  return b;
}

/// y = ref(x, params): the layer's output in double, from the input and the parameter values.
using reference_forward = std::function<ref::vec(const ref::vec& x, const std::vector<ref::vec>& params)>;

inline ref::vec to_double(std::span<const float> s) { return ref::vec(s.begin(), s.end()); }

/// |float gradient - double finite difference| within float rounding of the computation.
inline void require_close(double got, double want, const std::string& what) {
  INFO(what << ": got " << got << ", finite difference " << want);
  REQUIRE(std::abs(got - want) <= 2e-4 + 2e-3 * std::abs(want));
}

/// A whole model's loss and every parameter's gradient on batch `b` against `reference_loss(p)`, the
/// loss in double from the parameter values p (in visiting order), by central differences.
template <class Model>
void check_model_gradient(Model& model, const token_batch& b, lmkit::nn::batch_shape shape,
                          const std::function<double(const std::vector<ref::vec>&)>& reference_loss) {
  std::vector<lmkit::nn::parameter*> params;
  std::vector<std::string> names;
  model.visit_parameters([&](std::string_view name, lmkit::nn::parameter& p) {
    params.push_back(&p);
    names.emplace_back(name);
    p.zero_grad();
  });
  const float loss = model.forward(b.ids, b.targets, shape, {});
  model.backward({});
  std::vector<ref::vec> p;
  for (lmkit::nn::parameter* q : params) p.emplace_back(q->value().begin(), q->value().end());
  CHECK(std::abs(loss - reference_loss(p)) < 1e-5);
  for (std::size_t k = 0; k < p.size(); ++k)
    for (std::size_t i = 0; i < p[k].size(); ++i) {
      const double keep = p[k][i], h = 1e-6;
      p[k][i] = keep + h;
      const double up = reference_loss(p);
      p[k][i] = keep - h;
      const double down = reference_loss(p);
      p[k][i] = keep;
      require_close(params[k]->grad()[i], (up - down) / (2 * h), names[k] + "[" + std::to_string(i) + "]");
    }
}

/// Loss = <w, y> for a fixed random w; checks dL/dx and dL/dparams from the layer's backward
/// against central differences of the reference in double.
template <class Layer>
void check_layer(Layer& layer, lmkit::nn::batch_shape shape, std::size_t in_width, const reference_forward& reference,
                 std::uint64_t seed_value = 1, const lmkit::thread_pool& pool = lmkit::serial_pool()) {
  using namespace lmkit;
  using ref::vec;
  philox rng(seed{seed_value});
  std::vector<nn::parameter*> params;
  std::vector<std::string> names;
  layer.visit_parameters(
      [&](std::string_view name, nn::parameter& p) {
        p.init_normal(rng, 0.5f);
        params.push_back(&p);
        names.emplace_back(name);
      },
      "layer");
  nn::activation_arena arena;
  arena.plan([&](nn::activation_arena& a) { layer.reserve(a, shape); });
  std::vector<float> x(shape.rows() * in_width);
  for (float& v : x) v = static_cast<float>(rng.normal());
  const nn::run_context ctx{&pool, true};
  const nn::const_matrix y = layer.forward(nn::as_matrix(std::span<const float>(x), shape.rows(), in_width), ctx);
  std::vector<float> w(y.size());
  for (float& v : w) v = static_cast<float>(rng.normal());
  const vec y_float = to_double(y.span());
  for (nn::parameter* p : params) p->zero_grad();
  const nn::const_matrix dx = layer.backward(nn::as_matrix(std::span<const float>(w), y.extent(0), y.extent(1)), ctx);

  std::vector<vec> p_double;
  for (nn::parameter* p : params) p_double.push_back(to_double(p->value()));
  vec x_double = to_double(x);
  const vec y_ref = reference(x_double, p_double);
  REQUIRE(y_ref.size() == y_float.size());
  for (std::size_t i = 0; i < y_ref.size(); ++i) {
    INFO("output " << i);
    REQUIRE(std::abs(y_float[i] - y_ref[i]) <= 1e-4 * (1.0 + std::abs(y_ref[i])));
  }
  auto loss = [&] {
    const vec yy = reference(x_double, p_double);
    double s = 0;
    for (std::size_t i = 0; i < yy.size(); ++i) s += w[i] * yy[i];
    return s;
  };
  auto central_difference = [&](double& v) {
    const double h = 1e-6, keep = v;
    v = keep + h;
    const double up = loss();
    v = keep - h;
    const double down = loss();
    v = keep;
    return (up - down) / (2 * h);
  };
  const vec dx_float = to_double(dx.span());
  for (std::size_t i = 0; i < x_double.size(); ++i)
    require_close(dx_float[i], central_difference(x_double[i]), "dx[" + std::to_string(i) + "]");
  for (std::size_t k = 0; k < params.size(); ++k)
    for (std::size_t i = 0; i < p_double[k].size(); ++i)
      require_close(params[k]->grad()[i], central_difference(p_double[k][i]), names[k] + "[" + std::to_string(i) + "]");
}
