// Double-precision scalar versions of the nn/ layers, written from the papers' formulas, for the
// gradient tests: finite differences run on these (in double), and the float layers' forward and
// backward are compared with them. Shapes are written as in llm.c: (rows, features), rows = B*T.
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>
#include <vector>

namespace ref {

using vec = std::vector<double>;

/// y (n, out) = x (n, in) W^T (W stored (out, in)) + b
inline vec linear(const vec& x, std::size_t n, std::size_t in, const vec& w, std::size_t out, const vec* b = nullptr) {
  vec y(n * out);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double s = b ? (*b)[o] : 0.0;
      for (std::size_t i = 0; i < in; ++i) s += x[r * in + i] * w[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

inline vec layer_norm(const vec& x, std::size_t n, std::size_t c, const vec& g, const vec* b, double eps) {
  vec y(n * c);
  for (std::size_t r = 0; r < n; ++r) {
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < c; ++i) mean += x[r * c + i];
    mean /= c;
    for (std::size_t i = 0; i < c; ++i) var += (x[r * c + i] - mean) * (x[r * c + i] - mean);
    var /= c;
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (std::size_t i = 0; i < c; ++i) y[r * c + i] = (x[r * c + i] - mean) * rstd * g[i] + (b ? (*b)[i] : 0.0);
  }
  return y;
}

inline vec rms_norm(const vec& x, std::size_t n, std::size_t c, const vec& g, double eps) {
  vec y(n * c);
  for (std::size_t r = 0; r < n; ++r) {
    double ms = 0;
    for (std::size_t i = 0; i < c; ++i) ms += x[r * c + i] * x[r * c + i];
    const double rstd = 1.0 / std::sqrt(ms / c + eps);
    for (std::size_t i = 0; i < c; ++i) y[r * c + i] = x[r * c + i] * rstd * g[i];
  }
  return y;
}

inline double gelu_erf(double x) { return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2)); }
inline double gelu_tanh(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}
inline double silu(double x) { return x / (1.0 + std::exp(-x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// Rotates one head vector (d values) by position pos; half: pairs (i, i + d/2), else (2i, 2i+1).
inline void rope(double* v, std::size_t d, std::size_t pos, double base, bool half) {
  for (std::size_t i = 0; i < d / 2; ++i) {
    const double angle = pos * std::pow(base, -2.0 * i / d);
    const std::size_t a = half ? i : 2 * i, b = half ? i + d / 2 : 2 * i + 1;
    const double x0 = v[a], x1 = v[b];
    v[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
    v[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
  }
}

struct attention_shape {
  std::size_t batch, time, heads, kv_heads, head_dim;
  bool causal = true;
  bool rope = false, rope_half = true;
  double rope_base = 10000.0;
};

/// qkv (B*T, (H + 2G) D) -> y (B*T, H D): softmax(Q K^T / sqrt(D)) V per head, masked when causal.
inline vec attention(vec qkv, const attention_shape& s) {
  const std::size_t w = (s.heads + 2 * s.kv_heads) * s.head_dim, t_ = s.time, d = s.head_dim;
  if (s.rope)
    for (std::size_t r = 0; r < s.batch * t_; ++r)
      for (std::size_t h = 0; h < s.heads + s.kv_heads; ++h) rope(&qkv[r * w + h * d], d, r % t_, s.rope_base, s.rope_half);
  vec y(s.batch * t_ * s.heads * d, 0.0);
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t h = 0; h < s.heads; ++h) {
      const std::size_t g = h / (s.heads / s.kv_heads);
      for (std::size_t i = 0; i < t_; ++i) {
        const std::size_t seen = s.causal ? i + 1 : t_;
        vec score(seen);
        double max = -1e300;
        for (std::size_t j = 0; j < seen; ++j) {
          double dot = 0;
          for (std::size_t k = 0; k < d; ++k)
            dot += qkv[(b * t_ + i) * w + h * d + k] * qkv[(b * t_ + j) * w + (s.heads + g) * d + k];
          score[j] = dot / std::sqrt(static_cast<double>(d));
          max = std::max(max, score[j]);
        }
        double sum = 0;
        for (double& v : score) sum += (v = std::exp(v - max));
        for (std::size_t j = 0; j < seen; ++j)
          for (std::size_t k = 0; k < d; ++k)
            y[(b * t_ + i) * s.heads * d + h * d + k] +=
                score[j] / sum * qkv[(b * t_ + j) * w + (s.heads + s.kv_heads + g) * d + k];
      }
    }
  return y;
}

/// Mean over rows of -log softmax(logits)[target].
inline double cross_entropy(const vec& logits, std::size_t n, std::size_t v, const std::vector<unsigned>& targets) {
  double total = 0;
  for (std::size_t r = 0; r < n; ++r) {
    double max = -1e300;
    for (std::size_t i = 0; i < v; ++i) max = std::max(max, logits[r * v + i]);
    double sum = 0;
    for (std::size_t i = 0; i < v; ++i) sum += std::exp(logits[r * v + i] - max);
    total += -(logits[r * v + targets[r]] - max - std::log(sum));
  }
  return total / n;
}

inline vec add(const vec& a, const vec& b) {
  vec c(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) c[i] = a[i] + b[i];
  return c;
}

}  // namespace ref
