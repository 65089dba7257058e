// Every kernel against its scalar reference (kernels/reference.hpp) on every Highway target this
// CPU runs, over awkward sizes and misaligned pointers; derivatives also against central finite
// differences in double; thread-count independence of the parallel kernels.
#include <algorithm>
#include <cstring>
#include <functional>
#include <span>

#include "lmkit/core/aligned_buffer.hpp"
#include "lmkit/kernels/reference.hpp"
#include "test_support.hpp"

using namespace lmkit;
namespace ref = lmkit::kernels::reference;
using test::close;
using test::on_every_target;
using test::random_floats;

namespace {

/// A copy of `values` starting `offset` floats past a 64-byte boundary: misaligned on purpose.
struct misaligned {
  misaligned(const std::vector<float>& values, std::size_t offset) : storage(values.size() + offset + 1), offset(offset) {
    std::copy(values.begin(), values.end(), storage.data() + offset);
  }
  float* data() { return storage.data() + offset; }
  std::span<float> span(std::size_t n) { return {data(), n}; }
  aligned_buffer<float> storage;
  std::size_t offset;
};

constexpr std::size_t offsets[] = {0, 1, 3};

}  // namespace

TEST_CASE("dispatch reaches every compiled and supported target", "[kernels]") {
  const auto ran = on_every_target([] {});
  std::string list;
  for (const auto& name : ran) list += name + " ";
  WARN("Highway targets tested on this CPU: " << list);
  // At least the scalar fallback and one SIMD target on any x86-64 machine.
  REQUIRE(ran.size() >= 2);
  REQUIRE(std::find(ran.begin(), ran.end(), "SCALAR") != ran.end());
}

TEST_CASE("element-wise kernels equal the reference", "[kernels]") {
  on_every_target([] {
    for (std::size_t n : test::awkward_sizes())
      for (std::size_t offset : offsets) {
        INFO("n = " << n << ", offset = " << offset);
        const auto a = random_floats(n, 1), b = random_floats(n, 2);
        misaligned ma(a, offset), mb(b, offset), out(std::vector<float>(n), offset);
        std::vector<float> expected(n);

        kernels::add(ma.span(n), mb.span(n), out.span(n));
        ref::add(a.data(), b.data(), expected.data(), n);
        REQUIRE(std::equal(expected.begin(), expected.end(), out.data()));  // one rounding each: exact

        kernels::mul(ma.span(n), mb.span(n), out.span(n));
        ref::mul(a.data(), b.data(), expected.data(), n);
        REQUIRE(std::equal(expected.begin(), expected.end(), out.data()));

        kernels::scale(ma.span(n), -2.5f, out.span(n));
        ref::scale(a.data(), -2.5f, expected.data(), n);
        REQUIRE(std::equal(expected.begin(), expected.end(), out.data()));

        misaligned y(b, offset);
        std::vector<float> y_expected = b;
        kernels::axpy(0.75f, ma.span(n), y.span(n));
        ref::axpy(0.75f, a.data(), y_expected.data(), n);
        for (std::size_t i = 0; i < n; ++i) REQUIRE(close(y.data()[i], y_expected[i], 1e-6, 1e-7));

        const double d = ref::dot(a.data(), b.data(), n);
        double magnitude = 0;
        for (std::size_t i = 0; i < n; ++i) magnitude += std::abs(double{a[i]} * b[i]);
        REQUIRE(std::abs(kernels::dot(ma.span(n), mb.span(n)) - d) <= 1e-6 * magnitude + 1e-30);
      }
  });
}

TEST_CASE("the Adam update equals the reference", "[kernels]") {
  const kernels::adam_coefficients c{.beta1 = 0.9f, .beta2 = 0.99f, .step_size = 1e-2f, .rsqrt_correction2 = 3.0f,
                                     .eps = 1e-8f, .shrink = 0.999f, .l2 = 0.01f};
  on_every_target([&] {
    for (std::size_t n : test::awkward_sizes()) {
      INFO("n = " << n);
      const auto w0 = random_floats(n, 1), g = random_floats(n, 2), m0 = random_floats(n, 3);
      auto v0 = random_floats(n, 4);
      for (float& x : v0) x = x * x;  // a second moment is not negative
      std::vector<float> w = w0, m = m0, v = v0, w_ref = w0, m_ref = m0, v_ref = v0;
      kernels::adam_update(w, g, m, v, c);
      ref::adam_update(w_ref.data(), g.data(), m_ref.data(), v_ref.data(), n, c);
      for (std::size_t i = 0; i < n; ++i) {
        REQUIRE(close(m[i], m_ref[i], 1e-6, 1e-7));
        REQUIRE(close(v[i], v_ref[i], 1e-6, 1e-7));
        REQUIRE(close(w[i], w_ref[i], 1e-6, 1e-6));
      }
    }
  });
}

TEST_CASE("element-wise kernels may work in place", "[kernels]") {
  auto x = random_floats(37, 3);
  const auto original = x;
  kernels::scale(x, 2.0f, x);
  for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(x[i] == 2.0f * original[i]);
  kernels::add(x, x, x);
  for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(x[i] == 4.0f * original[i]);
}

TEST_CASE("kernels reject spans of different sizes", "[kernels]") {
  std::vector<float> a(4), b(5), out(4);
  REQUIRE_THROWS_AS(kernels::add(a, b, out), shape_error);
  REQUIRE_THROWS_AS(kernels::softmax(a, b), shape_error);
  REQUIRE_THROWS_AS(kernels::layer_norm(a, b, {}, out), shape_error);
  REQUIRE_THROWS_AS(kernels::rope(out, 3, a, a, kernels::rope_style::half_rotation), argument_error);
}

TEST_CASE("conversions to and from bf16 and f16 agree with the scalar types on all 65536 patterns", "[kernels][dtype]") {
  std::vector<bf16> all_bf16(65536);
  std::vector<f16> all_f16(65536);
  for (std::uint32_t p = 0; p < 65536; ++p) {
    all_bf16[p] = bf16::from_bits(static_cast<std::uint16_t>(p));
    all_f16[p] = f16::from_bits(static_cast<std::uint16_t>(p));
  }
  // Widening every pattern, then narrowing: the widened values plus midpoints between neighbours
  // and the floats just beside those midpoints (the scalar types are checked exhaustively in test_core).
  std::vector<float> probes;
  for (std::uint32_t p = 0; p < 65536; ++p) {
    const float v = all_f16[p].to_float(), w = all_bf16[p].to_float();
    probes.insert(probes.end(), {v, w, std::nextafter(v, 0.0f), std::nextafter(w, INFINITY)});
  }
  const auto noise = random_floats(100000, 9, -70000.0f, 70000.0f);
  probes.insert(probes.end(), noise.begin(), noise.end());
  philox rng(seed{5});
  for (int i = 0; i < 100000; ++i) probes.push_back(std::bit_cast<float>(rng()));  // any bit pattern, NaNs included

  on_every_target([&] {
    std::vector<float> widened(65536);
    kernels::convert(std::span<const bf16>(all_bf16), widened);
    for (std::uint32_t p = 0; p < 65536; ++p)
      REQUIRE(std::bit_cast<std::uint32_t>(widened[p]) == std::bit_cast<std::uint32_t>(all_bf16[p].to_float()));
    kernels::convert(std::span<const f16>(all_f16), widened);
    for (std::uint32_t p = 0; p < 65536; ++p) {
      INFO("f16 pattern " << p);
      REQUIRE(std::bit_cast<std::uint32_t>(widened[p]) == std::bit_cast<std::uint32_t>(all_f16[p].to_float()));
    }

    std::vector<bf16> narrow_bf16(probes.size());
    std::vector<f16> narrow_f16(probes.size());
    kernels::convert(std::span<const float>(probes), std::span<bf16>(narrow_bf16));
    kernels::convert(std::span<const float>(probes), std::span<f16>(narrow_f16));
    for (std::size_t i = 0; i < probes.size(); ++i) {
      INFO("value " << probes[i] << " bits " << std::bit_cast<std::uint32_t>(probes[i]));
      REQUIRE(narrow_bf16[i] == bf16::from_float(probes[i]));
      REQUIRE(narrow_f16[i] == f16::from_float(probes[i]));
    }
  });
}

TEST_CASE("softmax and log-softmax equal the reference and stay finite for large inputs", "[kernels]") {
  on_every_target([] {
    for (float spread : {1.0f, 30.0f, 1e4f})
      for (std::size_t n : test::awkward_sizes())
        for (std::size_t offset : offsets) {
          INFO("n = " << n << ", spread = " << spread << ", offset = " << offset);
          auto x = random_floats(n, 4, -spread, spread);
          if (n > 3) x[n / 2] = -INFINITY;  // a masked position
          misaligned mx(x, offset), out(std::vector<float>(n), offset);
          std::vector<float> expected(n);

          kernels::softmax(mx.span(n), out.span(n));
          ref::softmax(x.data(), expected.data(), n);
          const float max = n ? *std::max_element(x.begin(), x.end()) : 0.0f;
          for (std::size_t i = 0; i < n; ++i) {
            INFO("i " << i << " x " << x[i] << " got " << out.data()[i] << " want " << expected[i]);
            // x - max is rounded to float before exp: exp's condition number |x - max| scales that roundoff.
            if (std::isinf(x[i])) REQUIRE(out.data()[i] == 0.0f);
            else REQUIRE(close(out.data()[i], expected[i], 2e-6 + std::abs(x[i] - max) * 0x1p-23, 1e-37));
          }

          kernels::log_softmax(mx.span(n), out.span(n));
          ref::log_softmax(x.data(), expected.data(), n);
          for (std::size_t i = 0; i < n; ++i) REQUIRE(close(out.data()[i], expected[i], 1e-6, 1e-5));

          // In place (out is x): the same bits as into another buffer.
          misaligned log_in_place(x, offset), in_place(x, offset);
          kernels::log_softmax(log_in_place.span(n), log_in_place.span(n));
          for (std::size_t i = 0; i < n; ++i) REQUIRE(log_in_place.data()[i] == out.data()[i]);
          kernels::softmax(mx.span(n), out.span(n));
          kernels::softmax(in_place.span(n), in_place.span(n));
          for (std::size_t i = 0; i < n; ++i) REQUIRE(in_place.data()[i] == out.data()[i]);
        }
  });
}

TEST_CASE("attention of one query equals the reference", "[kernels]") {
  on_every_target([] {
    for (std::size_t head_dim : {1, 5, 16, 64, 67})
      for (std::size_t n : {1, 2, 7, 100}) {
        INFO("head_dim " << head_dim << ", positions " << n);
        const std::size_t stride = 3 * head_dim + 1;  // one head among several, rows not aligned
        const auto q = random_floats(head_dim, 31, -2.0f, 2.0f);
        const auto keys = random_floats(n * stride, 32, -2.0f, 2.0f);
        const auto values = random_floats(n * stride, 33, -1.0f, 1.0f);
        std::vector<float> scores(n), out(head_dim), expected(head_dim);
        const float scale = 1.0f / std::sqrt(float(head_dim));
        kernels::attend_query(q, keys.data() + 1, values.data() + 1, stride, n, scale, scores, out);
        ref::attend_query(q.data(), keys.data() + 1, values.data() + 1, stride, n, head_dim, scale, expected.data());
        for (std::size_t i = 0; i < head_dim; ++i) REQUIRE(close(out[i], expected[i], 1e-5, 1e-6));
        double total = 0.0;
        for (float w : scores) total += w;
        REQUIRE(std::abs(total - 1.0) < 1e-5);  // the weights are left in scores
      }
  });
  std::vector<float> q(4), out(4), scores(1);
  CHECK_THROWS_AS(kernels::attend_query(q, q.data(), q.data(), 4, 2, 1.0f, scores, out), lmkit::shape_error);
}

TEST_CASE("softmax backward equals the Jacobian product", "[kernels]") {
  on_every_target([] {
    for (std::size_t n : {1, 2, 7, 16, 33, 100}) {
      INFO("n = " << n);
      const auto x = random_floats(n, 5, -3, 3), dy = random_floats(n, 6), dx0 = random_floats(n, 7);
      std::vector<float> y(n), log_y(n);
      ref::softmax(x.data(), y.data(), n);
      ref::log_softmax(x.data(), log_y.data(), n);

      auto dx = dx0, expected = dx0;  // both add onto the same initial gradient
      kernels::softmax_backward(y, dy, dx);
      ref::softmax_backward(y.data(), dy.data(), expected.data(), n);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(close(dx[i], expected[i], 1e-5, 1e-6));

      dx = dx0, expected = dx0;
      kernels::log_softmax_backward(log_y, dy, dx);
      ref::log_softmax_backward(log_y.data(), dy.data(), expected.data(), n);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(close(dx[i], expected[i], 1e-5, 1e-6));
    }
  });
}

namespace {

/// Central finite difference of L(x) = sum_i dy_i f(x)_i in double, for each x_j.
std::vector<double> finite_difference(const std::function<std::vector<double>(const std::vector<double>&)>& f,
                                      const std::vector<float>& x, const std::vector<float>& dy, double h = 1e-5) {
  std::vector<double> xd(x.begin(), x.end()), grad(x.size());
  for (std::size_t j = 0; j < x.size(); ++j) {
    auto plus = xd, minus = xd;
    plus[j] += h;
    minus[j] -= h;
    const auto fp = f(plus), fm = f(minus);
    double l = 0;
    for (std::size_t i = 0; i < fp.size(); ++i) l += dy[i] * (fp[i] - fm[i]);
    grad[j] = l / (2 * h);
  }
  return grad;
}

std::vector<double> layer_norm_double(const std::vector<double>& x, const std::vector<float>& w,
                                      const std::vector<float>& b, double eps) {
  const double n = static_cast<double>(x.size());
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= n;
  for (double v : x) var += (v - mean) * (v - mean);
  var /= n;
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
  return y;
}

std::vector<double> rms_norm_double(const std::vector<double>& x, const std::vector<float>& w, double eps) {
  double ms = 0;
  for (double v : x) ms += v * v;
  ms /= static_cast<double>(x.size());
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] / std::sqrt(ms + eps) * w[i];
  return y;
}

}  // namespace

TEST_CASE("layer norm and RMS norm equal the reference, forward and backward", "[kernels]") {
  const float eps = 1e-5f;
  on_every_target([&] {
    for (std::size_t n : test::awkward_sizes()) {
      if (n == 0) continue;
      for (std::size_t offset : offsets) {
        INFO("n = " << n << ", offset = " << offset);
        auto x = random_floats(n, 10, -2, 2);
        for (auto& v : x) v += 100.0f;  // a large mean: the one-pass variance formula would fail here
        const auto w = random_floats(n, 11, 0.5f, 1.5f), b = random_floats(n, 12), dy = random_floats(n, 13);
        misaligned mx(x, offset), out(std::vector<float>(n), offset);
        std::vector<float> expected(n);
        float mean = 0, rstd = 0;

        const auto stats = kernels::layer_norm(mx.span(n), w, b, out.span(n), eps);
        ref::layer_norm(x.data(), w.data(), b.data(), expected.data(), n, eps, &mean, &rstd);
        REQUIRE(close(stats.mean, mean, 1e-6));
        REQUIRE(close(stats.rstd, rstd, 1e-4));
        for (std::size_t i = 0; i < n; ++i) REQUIRE(close(out.data()[i], expected[i], 1e-4, 1e-4));

        std::vector<float> dx(n, 0.5f), dw(n, 0.25f), db(n, -1.0f);
        auto dx_ref = dx, dw_ref = dw, db_ref = db;
        kernels::layer_norm_backward(mx.span(n), w, stats, dy, dx, dw, db);
        ref::layer_norm_backward(x.data(), w.data(), mean, rstd, dy.data(), dx_ref.data(), dw_ref.data(), db_ref.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
          REQUIRE(close(dx[i], dx_ref[i], 1e-3, 1e-3));
          REQUIRE(close(dw[i], dw_ref[i], 1e-4, 1e-4));
          REQUIRE(db[i] == db_ref[i]);
        }

        const auto rms = kernels::rms_norm(mx.span(n), w, out.span(n), eps);
        ref::rms_norm(x.data(), w.data(), expected.data(), n, eps, &rstd);
        REQUIRE(close(rms.rstd, rstd, 1e-5));
        for (std::size_t i = 0; i < n; ++i) REQUIRE(close(out.data()[i], expected[i], 1e-5, 1e-6));
        dx.assign(n, 0.5f), dw.assign(n, 0.25f);
        dx_ref = dx, dw_ref = dw;
        kernels::rms_norm_backward(mx.span(n), w, rms, dy, dx, dw);
        ref::rms_norm_backward(x.data(), w.data(), rstd, dy.data(), dx_ref.data(), dw_ref.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
          REQUIRE(close(dx[i], dx_ref[i], 1e-4, 1e-6));
          REQUIRE(close(dw[i], dw_ref[i], 1e-5, 1e-6));
        }
      }
    }
  });
}

TEST_CASE("norm backward matches central finite differences in double", "[kernels][gradient]") {
  const double eps = 1e-5;
  for (std::size_t n : {1, 2, 5, 16, 37}) {
    INFO("n = " << n);
    const auto x = random_floats(n, 20, -2, 2), w = random_floats(n, 21, 0.5, 1.5), b = random_floats(n, 22),
               dy = random_floats(n, 23);
    std::vector<float> out(n), dx(n), dw(n), db(n);
    const auto stats = kernels::layer_norm(x, w, b, out, static_cast<float>(eps));
    kernels::layer_norm_backward(x, w, stats, dy, dx, dw, db);
    const auto fd = finite_difference([&](const std::vector<double>& v) { return layer_norm_double(v, w, b, eps); }, x, dy);
    for (std::size_t j = 0; j < n; ++j) REQUIRE(close(dx[j], fd[j], 1e-3, 1e-4));
    // d/dw_i and d/db_i of sum dy y are dy_i xhat_i and dy_i.
    const auto xhat = layer_norm_double(std::vector<double>(x.begin(), x.end()), std::vector<float>(n, 1.0f),
                                        std::vector<float>(n, 0.0f), eps);
    for (std::size_t j = 0; j < n; ++j) {
      REQUIRE(close(dw[j], dy[j] * xhat[j], 1e-4, 1e-5));
      REQUIRE(db[j] == dy[j]);
    }

    std::fill(dx.begin(), dx.end(), 0.0f);
    std::fill(dw.begin(), dw.end(), 0.0f);
    const auto rms = kernels::rms_norm(x, w, out, static_cast<float>(eps));
    kernels::rms_norm_backward(x, w, rms, dy, dx, dw);
    const auto fd_rms = finite_difference([&](const std::vector<double>& v) { return rms_norm_double(v, w, eps); }, x, dy);
    for (std::size_t j = 0; j < n; ++j) REQUIRE(close(dx[j], fd_rms[j], 1e-3, 1e-4));
  }
}

TEST_CASE("activations equal the reference and their backward the derivative", "[kernels][gradient]") {
  struct activation {
    const char* name;
    void (*forward)(std::span<const float>, std::span<float>);
    void (*backward)(std::span<const float>, std::span<const float>, std::span<float>, bool);
    double (*value)(double);
    double (*derivative)(double);
  };
  const activation activations[] = {
      {"gelu_tanh", kernels::gelu_tanh, kernels::gelu_tanh_backward, ref::gelu_tanh, ref::gelu_tanh_derivative},
      {"gelu_erf", kernels::gelu_erf, kernels::gelu_erf_backward, ref::gelu_erf, ref::gelu_erf_derivative},
      {"silu", kernels::silu, kernels::silu_backward, ref::silu, ref::silu_derivative},
  };
  on_every_target([&] {
    for (const auto& act : activations)
      for (std::size_t n : test::awkward_sizes())
        for (std::size_t offset : offsets) {
          INFO(act.name << ", n = " << n << ", offset = " << offset);
          auto x = random_floats(n, 30, -8, 8);
          if (n > 4) x[0] = 0.0f, x[1] = -120.0f, x[2] = 120.0f, x[3] = 1e-20f;  // zero, saturation, tiny
          const auto dy = random_floats(n, 31);
          misaligned mx(x, offset), out(std::vector<float>(n), offset), dx(std::vector<float>(n, 0.5f), offset);
          misaligned written(std::vector<float>(n, 0.5f), offset);
          act.forward(mx.span(n), out.span(n));
          act.backward(mx.span(n), dy, dx.span(n), true);
          act.backward(mx.span(n), dy, written.span(n), false);
          for (std::size_t i = 0; i < n; ++i) {
            INFO("x = " << x[i]);
            REQUIRE(close(out.data()[i], act.value(x[i]), 1e-5, 2e-7 * std::max(1.0f, std::abs(x[i]))));
            const double g = dy[i] * act.derivative(x[i]);
            REQUIRE(close(dx.data()[i], 0.5 + g, 1e-5, 1e-6));  // added to what dx held
            REQUIRE(close(written.data()[i], g, 1e-5, 1e-6));   // or written over it
          }
        }
  });
  // The reference derivatives themselves against finite differences of the reference values.
  for (const auto& act : activations)
    for (double x = -6; x <= 6; x += 0.37) {
      const double h = 1e-6, fd = (act.value(x + h) - act.value(x - h)) / (2 * h);
      INFO(act.name << " at " << x);
      REQUIRE(close(act.derivative(x), fd, 1e-6, 1e-8));
    }
}

TEST_CASE("recurrent cells (LSTM, Elman) equal the reference; the backward the chain rule", "[kernels][gradient]") {
  on_every_target([] {
    for (std::size_t n : test::awkward_sizes())
      for (std::size_t offset : offsets) {
        INFO("n = " << n << ", offset = " << offset);
        auto pre = random_floats(4 * n, 50, -4, 4);
        if (n > 2) pre[0] = 40.0f, pre[n + 1] = -40.0f, pre[2 * n + 2] = 30.0f;  // saturated gates
        const auto bias = random_floats(4 * n, 51), c_prev = random_floats(n, 52, -2, 2), dy = random_floats(n, 53),
                   dh = random_floats(n, 54), dc_in = random_floats(n, 55);
        misaligned gates(pre, offset), c(std::vector<float>(n), offset), h(std::vector<float>(n), offset);
        std::vector<float> want_gates = pre, want_c(n), want_h(n);
        kernels::lstm_cell(gates.span(4 * n), bias, c_prev, c.span(n), h.span(n));
        ref::lstm_cell(want_gates.data(), bias.data(), c_prev.data(), want_c.data(), want_h.data(), n);
        for (std::size_t j = 0; j < 4 * n; ++j) REQUIRE(close(gates.data()[j], want_gates[j], 1e-5, 1e-6));
        for (std::size_t j = 0; j < n; ++j) {
          REQUIRE(close(c.data()[j], want_c[j], 1e-5, 1e-6));
          REQUIRE(close(h.data()[j], want_h[j], 1e-5, 1e-6));
        }
        misaligned dc(dc_in, offset);
        std::vector<float> want_dc = dc_in;
        // Into a separate buffer, then in place: the same values.
        misaligned dpre(std::vector<float>(4 * n), offset), dc2 = dc;
        kernels::lstm_cell_backward(gates.span(4 * n), dpre.span(4 * n), c_prev, std::span<const float>(want_c), dy, dh,
                                    dc2.span(n));
        kernels::lstm_cell_backward(gates.span(4 * n), gates.span(4 * n), c_prev, std::span<const float>(want_c), dy, dh,
                                    dc.span(n));
        ref::lstm_cell_backward(want_gates.data(), want_gates.data(), c_prev.data(), want_c.data(), dy.data(), dh.data(),
                                want_dc.data(), n);
        for (std::size_t j = 0; j < 4 * n; ++j) {
          REQUIRE(close(gates.data()[j], want_gates[j], 1e-5, 1e-6));
          REQUIRE(dpre.data()[j] == gates.data()[j]);
        }
        for (std::size_t j = 0; j < n; ++j) {
          REQUIRE(close(dc.data()[j], want_dc[j], 1e-5, 1e-6));
          REQUIRE(dc2.data()[j] == dc.data()[j]);
        }

        misaligned elman(std::vector<float>(pre.begin(), pre.begin() + n), offset), eh(std::vector<float>(n), offset);
        std::vector<float> want_elman(pre.begin(), pre.begin() + n), want_eh(n);
        kernels::elman_cell(elman.span(n), std::span<const float>(bias).first(n), eh.span(n));
        ref::elman_cell(want_elman.data(), bias.data(), want_eh.data(), n);
        for (std::size_t j = 0; j < n; ++j) {
          REQUIRE(close(elman.data()[j], want_elman[j], 1e-5, 1e-6));
          REQUIRE(eh.data()[j] == elman.data()[j]);
        }
        kernels::elman_cell_backward(elman.span(n), elman.span(n), dy, dh);
        ref::elman_cell_backward(want_elman.data(), want_elman.data(), dy.data(), dh.data(), n);
        for (std::size_t j = 0; j < n; ++j) REQUIRE(close(elman.data()[j], want_elman[j], 1e-5, 1e-6));
      }
  });
  // The reference backward against finite differences of the step in double: inputs (pre, c_prev),
  // outputs (h, c), weighted by (dy, dc): dL/dpre and dL/dc_prev.
  for (std::size_t n : {1, 3, 7}) {
    INFO("n = " << n);
    const auto pre = random_floats(4 * n, 60, -2, 2), c_prev = random_floats(n, 61, -2, 2), dy = random_floats(n, 62),
               dc_in = random_floats(n, 63);
    auto step = [n](const std::vector<double>& v) {  // v = (pre, c_prev) -> (h, c)
      std::vector<double> out(2 * n);
      for (std::size_t j = 0; j < n; ++j) {
        const double i = ref::sigmoid(v[j]), f = ref::sigmoid(v[n + j]), g = std::tanh(v[2 * n + j]),
                     o = ref::sigmoid(v[3 * n + j]);
        out[n + j] = f * v[4 * n + j] + i * g;
        out[j] = o * std::tanh(out[n + j]);
      }
      return out;
    };
    std::vector<float> x = pre, weights = dy;
    x.insert(x.end(), c_prev.begin(), c_prev.end());
    weights.insert(weights.end(), dc_in.begin(), dc_in.end());
    const auto fd = finite_difference(step, x, weights);
    std::vector<float> gates = pre, c(n), h(n), dc = dc_in;
    ref::lstm_cell(gates.data(), std::vector<float>(4 * n).data(), c_prev.data(), c.data(), h.data(), n);
    ref::lstm_cell_backward(gates.data(), gates.data(), c_prev.data(), c.data(), dy.data(), std::vector<float>(n).data(),
                            dc.data(), n);
    for (std::size_t j = 0; j < 4 * n; ++j) REQUIRE(close(gates[j], fd[j], 1e-4, 1e-5));
    for (std::size_t j = 0; j < n; ++j) REQUIRE(close(dc[j], fd[4 * n + j], 1e-4, 1e-5));
  }
}

TEST_CASE("RoPE equals the reference in both conventions and inverts", "[kernels]") {
  using kernels::rope_style;
  on_every_target([] {
    for (std::size_t head_dim : {2, 4, 6, 8, 16, 18, 34, 64, 128})
      for (std::size_t heads : {1, 3})
        for (std::size_t position : {0, 1, 17, 4095})
          for (rope_style style : {rope_style::adjacent_pairs, rope_style::half_rotation}) {
            INFO("head_dim " << head_dim << " heads " << heads << " position " << position << " style "
                             << static_cast<int>(style));
            std::vector<float> cos(head_dim / 2), sin(head_dim / 2);
            kernels::rope_angles(position, head_dim, 10000.0, cos, sin);
            const auto x = random_floats(head_dim * heads, 40);
            auto y = x, expected = x;
            kernels::rope(y, head_dim, cos, sin, style);
            (style == rope_style::half_rotation ? ref::rope_half : ref::rope_adjacent)(expected.data(), head_dim, heads,
                                                                                       cos.data(), sin.data(), false);
            for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(close(y[i], expected[i], 1e-6, 1e-6));
            kernels::rope_backward(y, head_dim, cos, sin, style);
            for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(close(y[i], x[i], 1e-5, 1e-6));
          }
  });
}

TEST_CASE("the two RoPE conventions differ exactly by a permutation of the dimensions", "[kernels]") {
  // Hugging Face checkpoints permute q/k rows so that half rotation computes what adjacent pairs
  // compute on the original order: pair i is (2i, 2i+1) in one, (i, i + d/2) in the other.
  const std::size_t d = 64;
  std::vector<float> cos(d / 2), sin(d / 2);
  kernels::rope_angles(123, d, 500000.0, cos, sin);
  const auto x = random_floats(d, 41);
  std::vector<float> permuted(d);
  for (std::size_t i = 0; i < d / 2; ++i) permuted[i] = x[2 * i], permuted[i + d / 2] = x[2 * i + 1];
  auto adjacent = x;
  kernels::rope(adjacent, d, cos, sin, kernels::rope_style::adjacent_pairs);
  kernels::rope(permuted, d, cos, sin, kernels::rope_style::half_rotation);
  for (std::size_t i = 0; i < d / 2; ++i) {
    REQUIRE(close(permuted[i], adjacent[2 * i], 1e-6, 1e-7));
    REQUIRE(close(permuted[i + d / 2], adjacent[2 * i + 1], 1e-6, 1e-7));
  }
}

namespace {

/// Storage for op(M) [rows x cols] in type T, stored transposed or not, with padding in its rows
/// and an offset from alignment; values exactly representable in T.
template <class T>
struct operand_storage {
  operand_storage(std::size_t rows, std::size_t cols, bool transposed, std::uint64_t stream, std::size_t offset) {
    const std::size_t stored_rows = transposed ? cols : rows, stored_cols = transposed ? rows : cols;
    stride = stored_cols + 3;
    values.resize(stored_rows * stride + offset + 1);
    const auto random = random_floats(values.size(), stream);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = from_float<T>(random[i]);
    operand = {values.data() + offset, dtype_of<T>, stride, transposed};
  }
  std::vector<T> values;
  std::size_t stride = 0;
  kernels::matrix_operand operand;
};

using gemm_route = void (*)(const kernels::gemm_problem&, const thread_pool&);

template <class TA, class TB>
void check_gemm(std::size_t m, std::size_t n, std::size_t k, bool ta, bool tb, bool accumulate, const thread_pool& pool,
                kernels::product_precision products = kernels::product_precision::f32,
                gemm_route route = kernels::gemm) {
  INFO("m " << m << " n " << n << " k " << k << " transposed " << ta << tb << " accumulate " << accumulate << " types "
            << name_of(dtype_of<TA>) << " " << name_of(dtype_of<TB>) << " bf16 products "
            << (products == kernels::product_precision::bf16));
  operand_storage<TA> a(m, k, ta, 50 + m, 1);
  operand_storage<TB> b(k, n, tb, 60 + n, 2);
  const std::size_t ldc = n + 5;
  std::vector<float> c = random_floats(m * ldc + 1, 70);
  auto expected = c;
  kernels::gemm_problem problem{m, n, k, a.operand, b.operand, c.data() + 1, ldc, accumulate, products};
  route(problem, pool);
  problem.c = expected.data() + 1;
  std::vector<double> magnitude;
  ref::gemm(problem, &magnitude);
  // Error bound of a float dot product of length k: about k units of roundoff times sum |a b|.
  const double unit = 0x1p-24;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const double bound = 2.0 * (k + 2) * unit * magnitude[i * n + j] + 1e-30;
      REQUIRE(std::abs(c[1 + i * ldc + j] - expected[1 + i * ldc + j]) <= bound);
    }
  // Padding between rows of C is never written.
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = n; j < ldc && i * ldc + j + 1 < c.size(); ++j) REQUIRE(c[1 + i * ldc + j] == expected[1 + i * ldc + j]);
}

}  // namespace

TEST_CASE("gemm equals the triple loop for every layout and type", "[kernels][gemm]") {
  const thread_pool two(2);
  on_every_target([&] {
    struct shape {
      std::size_t m, n, k;
    };
    // Empty, single, odd, vector-length edges, beyond the depth block (256) and several tiles;
    // {200, 70, 270}: more rows than one row block (192), where B is packed once for all blocks.
    const shape shapes[] = {{0, 5, 3},  {4, 0, 3},  {3, 4, 0},   {1, 1, 1},   {1, 37, 19},  {29, 1, 40},
                            {2, 3, 5},  {7, 17, 9}, {13, 33, 1}, {6, 16, 8},  {12, 32, 64}, {37, 45, 300},
                            {5, 70, 3}, {130, 67, 260}, {200, 70, 270}};
    for (const auto& s : shapes)
      for (bool ta : {false, true})
        for (bool tb : {false, true})
          for (bool accumulate : {false, true}) check_gemm<float, float>(s.m, s.n, s.k, ta, tb, accumulate, two);
    for (const auto& s : {shape{1, 33, 70}, shape{40, 1, 33}, shape{37, 45, 300}})
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          check_gemm<float, bf16>(s.m, s.n, s.k, ta, tb, false, two);
          check_gemm<bf16, bf16>(s.m, s.n, s.k, ta, tb, true, two);
          check_gemm<float, f16>(s.m, s.n, s.k, ta, tb, false, two);
          check_gemm<f16, float>(s.m, s.n, s.k, ta, tb, false, two);
        }
  });
}

namespace {
/// gemm_prepacked of A by `packed` (op(B) of b) against the triple loop, over bf16-rounded operands
/// when packed for bf16 products; C's padding between rows is never written.
void check_prepacked(std::size_t m, std::size_t n, std::size_t k, const operand_storage<float>& a,
                     const operand_storage<float>& b, const kernels::prepacked_matrix& packed, bool accumulate,
                     const thread_pool& pool, std::uint64_t c_seed) {
  const std::size_t ldc = n + 5;
  std::vector<float> c = random_floats(m * ldc + 1, c_seed), expected = c;
  kernels::gemm_prepacked(m, static_cast<const float*>(a.operand.data), a.stride, packed, c.data() + 1, ldc, accumulate,
                          pool);
  std::vector<double> magnitude;
  ref::gemm({m, n, k, a.operand, b.operand, expected.data() + 1, ldc, accumulate, packed.products()}, &magnitude);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < ldc && i * ldc + j + 1 < c.size(); ++j) {
      const double bound = j < n ? 2.0 * (k + 2) * 0x1p-24 * magnitude[i * n + j] + 1e-30 : 0.0;
      REQUIRE(std::abs(c[1 + i * ldc + j] - expected[1 + i * ldc + j]) <= bound);
    }
}
}  // namespace

TEST_CASE("gemm_prepacked equals the triple loop; one packing serves every target", "[kernels][gemm]") {
  const thread_pool two(2);
  struct shape {
    std::size_t m, n, k;
  };
  // Empty, single, rows not a multiple of the row tile, columns not a multiple of a panel (16) or
  // of a tile (32), depth beyond the slice (256), the LSTM's step shapes.
  const shape shapes[] = {{0, 5, 3},  {4, 0, 3},   {3, 4, 0},    {1, 1, 1},     {1, 37, 19},   {9, 1, 40},
                          {2, 3, 5},  {7, 17, 9},  {13, 33, 1},  {8, 16, 8},    {32, 48, 300}, {37, 45, 513},
                          {3, 70, 3}, {32, 1024, 64}, {32, 256, 1024}};
  for (const auto& s : shapes)
    for (bool transposed : {false, true}) {
      operand_storage<float> a(s.m, s.k, false, 80 + s.m, 1);
      operand_storage<float> b(s.k, s.n, transposed, 90 + s.n, 2);
      kernels::prepacked_matrix packed;  // packed once, outside the per-target loop
      packed.pack(b.operand, s.k, s.n);
      on_every_target([&] {
        for (bool accumulate : {false, true}) {
          INFO("m " << s.m << " n " << s.n << " k " << s.k << " transposed " << transposed << " accumulate " << accumulate);
          check_prepacked(s.m, s.n, s.k, a, b, packed, accumulate, two, 95);
        }
      });
    }
  // The same bits on 1 and 2 threads.
  operand_storage<float> a(32, 1024, false, 96, 0);
  operand_storage<float> b(1024, 640, true, 97, 0);
  kernels::prepacked_matrix packed;
  packed.pack(b.operand, 1024, 640);
  std::vector<float> c1(32 * 640), c2(32 * 640, 1.0f);
  kernels::gemm_prepacked(32, static_cast<const float*>(a.operand.data), a.stride, packed, c1.data(), 640, false);
  kernels::gemm_prepacked(32, static_cast<const float*>(a.operand.data), a.stride, packed, c2.data(), 640, false, two);
  REQUIRE(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0);
  CHECK_THROWS_AS(packed.pack({b.operand.data, dtype::bf16, b.stride, true}, 1024, 640), argument_error);
}

TEST_CASE("gemm_prepacked with bf16 products equals the triple loop over bf16-rounded operands", "[kernels][gemm]") {
  const thread_pool one(1), two(2);
  const bool native = kernels::amx_bf16_usable() || kernels::bf16_dot_usable();
  struct shape {
    std::size_t m, n, k;
  };
  // The bf16 blocks' edges (32 x 32, 16-column tiles, 32-deep steps), more columns than one task's
  // group, and the LSTM's step shapes.
  const shape shapes[] = {{0, 5, 3},    {4, 0, 3},     {3, 4, 0},      {1, 1, 1},       {2, 3, 5},
                          {17, 15, 31}, {33, 31, 33},  {47, 17, 100},  {64, 96, 160},   {40, 600, 70},
                          {3, 70, 300}, {32, 1024, 64}, {32, 256, 1024}};
  // The bf16 kernels' packed form where this CPU has them, and the rounded f32 panels in any case.
  for (bool bf16_kernels : {true, false}) {
    INFO("bf16 kernels " << bf16_kernels << " (this CPU has them: " << native << ")");
    const auto pack = [&](kernels::prepacked_matrix& packed, const kernels::matrix_operand& b, std::size_t k, std::size_t n) {
      if (bf16_kernels) packed.pack(b, k, n, kernels::product_precision::bf16);
      else packed.pack_portable(b, k, n, kernels::product_precision::bf16);
    };
    for (const auto& s : shapes)
      for (bool transposed : {false, true})
        for (bool accumulate : {false, true}) {
          INFO("m " << s.m << " n " << s.n << " k " << s.k << " transposed " << transposed << " accumulate " << accumulate);
          operand_storage<float> a(s.m, s.k, false, 110 + s.m, 1);
          operand_storage<float> b(s.k, s.n, transposed, 120 + s.n, 2);
          kernels::prepacked_matrix packed;
          pack(packed, b.operand, s.k, s.n);
          REQUIRE((packed.bf16_data() != nullptr) == (bf16_kernels && native && s.n > 0));
          check_prepacked(s.m, s.n, s.k, a, b, packed, accumulate, two, 130);
        }
    // The same bits on 1 and 2 threads; operands rounded (to nearest), not truncated, on either side.
    operand_storage<float> a(32, 1024, false, 131, 0);
    operand_storage<float> b(1024, 640, true, 132, 0);
    kernels::prepacked_matrix packed;
    pack(packed, b.operand, 1024, 640);
    std::vector<float> c1(32 * 640), c2(32 * 640, 1.0f);
    kernels::gemm_prepacked(32, static_cast<const float*>(a.operand.data), a.stride, packed, c1.data(), 640, false, one);
    kernels::gemm_prepacked(32, static_cast<const float*>(a.operand.data), a.stride, packed, c2.data(), 640, false, two);
    REQUIRE(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0);
    const float up[1] = {1.0f + 0x1p-8f + 0x1p-12f}, unit[1] = {1.0f};  // rounds up to 1 + 2^-7 in bf16
    for (bool rounded_b : {false, true}) {
      pack(packed, {rounded_b ? up : unit, dtype::f32, 1, false}, 1, 1);
      float z = 0.0f;
      kernels::gemm_prepacked(1, rounded_b ? unit : up, 1, packed, &z, 1, false, one);
      REQUIRE(z == 1.0f + 0x1p-7f);
    }
  }
}

TEST_CASE("gemm_tn equals the triple loop", "[kernels][gemm]") {
  const thread_pool two(2);
  struct shape {
    std::size_t m, n, k;
  };
  // Empty, single, partial tiles in both directions (12 / 6 / 4 rows, 32 / 16 / 8 columns), more
  // tile rows than one task, the LSTM's gradient shapes.
  const shape shapes[] = {{0, 5, 3},  {4, 0, 3},     {3, 4, 0},      {1, 1, 1},     {1, 37, 19},   {29, 1, 40},
                          {7, 17, 9}, {13, 33, 1},   {12, 32, 64},   {37, 45, 300}, {130, 67, 20}, {5, 70, 3},
                          {1024, 64, 256}, {1024, 256, 32}};
  on_every_target([&] {
    for (const auto& s : shapes)
      for (bool accumulate : {false, true}) {
        INFO("m " << s.m << " n " << s.n << " k " << s.k << " accumulate " << accumulate);
        operand_storage<float> a(s.m, s.k, true, 110 + s.m, 1);  // stored k x m
        operand_storage<float> b(s.k, s.n, false, 120 + s.n, 2);
        const std::size_t ldc = s.n + 5;
        std::vector<float> c = random_floats(s.m * ldc + 1, 130), expected = c;
        kernels::gemm_tn(s.m, s.n, s.k, static_cast<const float*>(a.operand.data), a.stride,
                         static_cast<const float*>(b.operand.data), b.stride, c.data() + 1, ldc, accumulate, two);
        std::vector<double> magnitude;
        ref::gemm({s.m, s.n, s.k, a.operand, b.operand, expected.data() + 1, ldc, accumulate}, &magnitude);
        for (std::size_t i = 0; i < s.m; ++i)
          for (std::size_t j = 0; j < ldc && i * ldc + j + 1 < c.size(); ++j) {
            const double bound = j < s.n ? 2.0 * (s.k + 2) * 0x1p-24 * magnitude[i * s.n + j] + 1e-30 : 0.0;
            REQUIRE(std::abs(c[1 + i * ldc + j] - expected[1 + i * ldc + j]) <= bound);  // padding untouched
          }
      }
  });
  operand_storage<float> a(500, 300, true, 140, 0);  // op(A) [500 x 300], stored 300 x 500
  operand_storage<float> b(300, 70, false, 141, 0);
  std::vector<float> c1(500 * 70), c2(500 * 70, 1.0f);
  const float* pa = static_cast<const float*>(a.operand.data);
  const float* pb = static_cast<const float*>(b.operand.data);
  kernels::gemm_tn(500, 70, 300, pa, a.stride, pb, b.stride, c1.data(), 70, false);
  kernels::gemm_tn(500, 70, 300, pa, a.stride, pb, b.stride, c2.data(), 70, false, two);
  REQUIRE(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0);
}

TEST_CASE("matmul, matmul_nt and matvec check shapes and compute the product", "[kernels][gemm]") {
  tensor<float, dims<2>> a(3, 4), b(4, 5), c(3, 5), wrong(4, 4), bt(5, 4);
  const auto av = random_floats(12, 80), bv = random_floats(20, 81);
  std::copy(av.begin(), av.end(), a.data());
  std::copy(bv.begin(), bv.end(), b.data());
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 5; ++j) bt(j, i) = b(i, j);
  REQUIRE_THROWS_AS(kernels::matmul(a.view(), wrong.view(), c.view()), shape_error);
  REQUIRE_THROWS_AS(kernels::matmul_nt(a.view(), b.view(), c.view()), shape_error);
  // The raw problem is checked too: a row stride shorter than a row, a missing operand.
  kernels::gemm_problem bad{3, 5, 4, {a.data(), dtype::f32, 3, false}, {b.data(), dtype::f32, 5, false}, c.data(), 5, false};
  REQUIRE_THROWS_AS(kernels::gemm(bad), shape_error);
  bad.a.stride = 4, bad.ldc = 4;
  REQUIRE_THROWS_AS(kernels::gemm(bad), shape_error);
  bad.ldc = 5, bad.b.data = nullptr;
  REQUIRE_THROWS_AS(kernels::gemm(bad), argument_error);

  kernels::matmul(std::as_const(a).view(), std::as_const(b).view(), c.view());
  tensor<float, dims<2>> c2(3, 5);
  kernels::matmul_nt(std::as_const(a).view(), std::as_const(bt).view(), c2.view());
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 5; ++j) {
      double s = 0;
      for (std::size_t p = 0; p < 4; ++p) s += double{a(i, p)} * b(p, j);
      REQUIRE(close(c(i, j), s, 1e-6, 1e-6));
      REQUIRE(close(c2(i, j), s, 1e-6, 1e-6));
    }

  // Static extents work the same; matvec is y = W x for W stored [out, in].
  tensor<float, extents<5, 4>> w;
  std::copy(bt.data(), bt.data() + 20, w.data());
  std::vector<float> x(av.begin(), av.begin() + 4), y(5);
  kernels::matvec(std::as_const(w).view(), x, y);
  for (std::size_t j = 0; j < 5; ++j) REQUIRE(close(y[j], kernels::dot(std::span<const float>(w.data() + 4 * j, 4), x), 1e-6, 1e-7));
  std::vector<float> short_y(4);
  REQUIRE_THROWS_AS(kernels::matvec(std::as_const(w).view(), x, short_y), shape_error);
}

TEST_CASE("matmul backward gives the gradients of both operands", "[kernels][gemm][gradient]") {
  const std::size_t m = 7, k = 11, n = 5;
  tensor<float, dims<2>> a(m, k), b(k, n), bt(n, k), dc(m, n);
  const auto av = random_floats(m * k, 90), bv = random_floats(k * n, 91), dcv = random_floats(m * n, 92);
  std::copy(av.begin(), av.end(), a.data());
  std::copy(bv.begin(), bv.end(), b.data());
  std::copy(dcv.begin(), dcv.end(), dc.data());
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < n; ++j) bt(j, i) = b(i, j);
  // L = sum dc * (a b): dL/da_ip = sum_j dc_ij b_pj, dL/db_pj = sum_i a_ip dc_ij; gradients start at 1.
  tensor<float, dims<2>> da(m, k), db(k, n), da_nt(m, k), dbt(n, k);
  for (auto* t : {&da, &db, &da_nt, &dbt}) std::fill(t->data(), t->data() + t->size(), 1.0f);
  kernels::matmul_backward(std::as_const(a).view(), std::as_const(b).view(), std::as_const(dc).view(), da.view(), db.view());
  kernels::matmul_nt_backward(std::as_const(a).view(), std::as_const(bt).view(), std::as_const(dc).view(), da_nt.view(),
                              dbt.view());
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t p = 0; p < k; ++p) {
      double g = 1;
      for (std::size_t j = 0; j < n; ++j) g += double{dc(i, j)} * b(p, j);
      REQUIRE(close(da(i, p), g, 1e-5, 1e-6));
      REQUIRE(close(da_nt(i, p), g, 1e-5, 1e-6));
    }
  for (std::size_t p = 0; p < k; ++p)
    for (std::size_t j = 0; j < n; ++j) {
      double g = 1;
      for (std::size_t i = 0; i < m; ++i) g += double{a(i, p)} * dc(i, j);
      REQUIRE(close(db(p, j), g, 1e-5, 1e-6));
      REQUIRE(close(dbt(j, p), g, 1e-5, 1e-6));
    }
}

namespace {
// Shapes for bf16 products: the edges of the 32 x 32 blocks, of the 16-column tiles and of the
// 32-deep steps, transposed operands wider than one 16 x 16 register transpose, and more than one
// band of rows (128), group of columns (256) and depth step (256).
const struct {
  std::size_t m, n, k;
} bf16_shapes[] = {{0, 5, 3},     {4, 0, 3},     {3, 4, 0},      {1, 1, 1},      {2, 3, 5},
                   {17, 15, 31},  {32, 32, 32},  {33, 31, 33},   {16, 48, 64},   {47, 17, 100},
                   {64, 96, 160}, {100, 70, 300}, {130, 270, 40}, {140, 20, 520}};

void check_bf16_products(gemm_route route) {
  const thread_pool two(2);
  for (const auto& s : bf16_shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (bool accumulate : {false, true})
          check_gemm<float, float>(s.m, s.n, s.k, ta, tb, accumulate, two, kernels::product_precision::bf16, route);
}
}  // namespace

TEST_CASE("bf16 products without AMX equal the triple loop over bf16-rounded operands", "[kernels][gemm]") {
  check_bf16_products(kernels::detail::gemm_bf16_portable);
  // bf16 and f16 operands take the same route.
  const thread_pool two(2);
  check_gemm<bf16, float>(37, 45, 70, false, true, true, two, kernels::product_precision::bf16);
  check_gemm<float, f16>(37, 45, 70, true, false, false, two, kernels::product_precision::bf16);
}

namespace {
/// A bf16 kernel (tiles or dot products) against the triple loop, over k in slices, and across
/// thread counts.
void check_bf16_kernel(gemm_route kernel) {
  check_bf16_products(kernel);
  // A k long enough to go in several slices (a pack of its whole k over the budget: 128 rows of a
  // band, or 256 columns of a group), with B shared (m >= n) and A shared, each operand stored both
  // ways. The entries are small integers, so every sum is exact: the product must equal the
  // integer triple loop to the bit.
  const thread_pool two(2);
  const std::size_t long_k = 2 * (kernels::amx_detail::pack_bytes / 2 / 128) + 300;
  auto small_int = [](std::size_t x, std::size_t y) {
    return static_cast<int>(((x * 2654435761u + y * 40503u) >> 13) % 5) - 2;
  };
  for (const auto& [m, n] : {std::pair<std::size_t, std::size_t>{40, 20}, {20, 40}})
    for (bool transposed : {false, true}) {
      INFO("m " << m << " n " << n << " k " << long_k << " transposed " << transposed);
      std::vector<float> a(m * long_k), b(long_k * n), c(m * n, 5.0f);
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t p = 0; p < long_k; ++p) a[transposed ? p * m + i : i * long_k + p] = small_int(i, p);
      for (std::size_t p = 0; p < long_k; ++p)
        for (std::size_t j = 0; j < n; ++j) b[transposed ? j * long_k + p : p * n + j] = small_int(p, j + 1000);
      kernel({m, n, long_k, {a.data(), dtype::f32, transposed ? m : long_k, transposed},
              {b.data(), dtype::f32, transposed ? long_k : n, transposed}, c.data(), n, true,
              kernels::product_precision::bf16},
             two);
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          long want = 5;
          for (std::size_t p = 0; p < long_k; ++p) want += long{small_int(i, p)} * small_int(p, j + 1000);
          REQUIRE(c[i * n + j] == static_cast<float>(want));
        }
    }
  // Results do not depend on the thread count, and are rounded from f32 operands, not truncated.
  const thread_pool one(1);
  operand_storage<float> a(300, 200, true, 100, 0);
  operand_storage<float> b(200, 150, false, 101, 0);
  std::vector<float> c1(300 * 150), c2(300 * 150, 1.0f);
  kernel({300, 150, 200, a.operand, b.operand, c1.data(), 150, false, kernels::product_precision::bf16}, one);
  kernel({300, 150, 200, a.operand, b.operand, c2.data(), 150, false, kernels::product_precision::bf16}, two);
  REQUIRE(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0);
  const float x[1] = {1.0f + 0x1p-8f + 0x1p-12f}, y[1] = {1.0f};  // rounds up to 1 + 2^-7 in bf16
  float z = 0.0f;
  kernel({1, 1, 1, {x, dtype::f32, 1, false}, {y, dtype::f32, 1, false}, &z, 1, false, kernels::product_precision::bf16},
         one);
  REQUIRE(z == 1.0f + 0x1p-7f);
}
}  // namespace

TEST_CASE("bf16 products on AMX tiles equal the triple loop over bf16-rounded operands", "[kernels][gemm][amx]") {
  if (!kernels::amx_bf16_usable()) test::skip_test("this CPU or OS offers no AMX-BF16 tiles");
  check_bf16_kernel(kernels::gemm_bf16_amx);
}

TEST_CASE("bf16 products by AVX512-BF16 dot products equal the triple loop over bf16-rounded operands",
          "[kernels][gemm][bf16_dot]") {
  if (!kernels::bf16_dot_usable()) test::skip_test("this CPU offers no AVX512-BF16");
  check_bf16_kernel(kernels::gemm_bf16_dot);
}

TEST_CASE("products give identical bits with 1 and 2 threads", "[kernels][gemm][threads]") {
  const thread_pool one(1), two(2);
  struct shape {
    std::size_t m, n, k;
    bool ta, tb;
  };
  for (const auto& s : {shape{300, 520, 600, false, false}, shape{257, 300, 513, true, true}, shape{1, 3000, 700, false, true},
                        shape{1, 3000, 700, false, false}, shape{2000, 1, 300, false, false}, shape{2000, 1, 300, true, false}}) {
    INFO("m " << s.m << " n " << s.n << " k " << s.k);
    operand_storage<float> a(s.m, s.k, s.ta, 100, 0);
    operand_storage<float> b(s.k, s.n, s.tb, 101, 0);
    std::vector<float> c1(s.m * s.n), c2(s.m * s.n, 1.0f);
    kernels::gemm({s.m, s.n, s.k, a.operand, b.operand, c1.data(), s.n, false}, one);
    kernels::gemm({s.m, s.n, s.k, a.operand, b.operand, c2.data(), s.n, false}, two);
    REQUIRE(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0);
  }
}
