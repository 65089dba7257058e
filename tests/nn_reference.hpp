// Double-precision scalar versions of the nn/ layers, written from the papers' formulas, for the
// gradient tests: finite differences run on these (in double), and the float layers' forward and
// backward are compared with them. Shapes are written as in llm.c: (rows, features), rows = B*T.
#pragma once

#include <algorithm>
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
  const vec* weight_mask = nullptr;  // dropout: a factor per weight, [batch, heads, time, time]
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
                score[j] / sum * (s.weight_mask ? (*s.weight_mask)[((b * s.heads + h) * t_ + i) * t_ + j] : 1.0) *
                qkv[(b * t_ + j) * w + (s.heads + s.kv_heads + g) * d + k];
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

/// PyTorch's nn.LSTM (batch_first) written out: x (B*T, in) -> the top layer's h (B*T, H). `p` holds
/// weight_ih, weight_hh, bias_ih, bias_hh per layer; h0, c0 the initial state per layer (B, H).
/// `input_masks[l]` (l >= 1, when given): dropout's multipliers on layer l's input (B*T, H).
inline vec lstm(const vec& x, std::size_t batch, std::size_t time, std::size_t in, std::size_t hidden,
                const std::vector<vec>& p, const std::vector<vec>& h0, const std::vector<vec>& c0,
                const std::vector<vec>& input_masks = {}) {
  const std::size_t layers = p.size() / 4;
  vec input = x;
  std::size_t width = in;
  for (std::size_t l = 0; l < layers; ++l) {
    if (l > 0 && l < input_masks.size())
      for (std::size_t i = 0; i < input.size(); ++i) input[i] *= input_masks[l][i];
    const vec &w_ih = p[4 * l], &w_hh = p[4 * l + 1], &b_ih = p[4 * l + 2], &b_hh = p[4 * l + 3];
    vec out(batch * time * hidden);
    for (std::size_t b = 0; b < batch; ++b) {
      vec h(h0[l].begin() + b * hidden, h0[l].begin() + (b + 1) * hidden);
      vec c(c0[l].begin() + b * hidden, c0[l].begin() + (b + 1) * hidden);
      for (std::size_t t = 0; t < time; ++t) {
        const double* xt = &input[(b * time + t) * width];
        vec pre(4 * hidden);
        for (std::size_t r = 0; r < 4 * hidden; ++r) {
          double s = b_ih[r] + b_hh[r];
          for (std::size_t k = 0; k < width; ++k) s += w_ih[r * width + k] * xt[k];
          for (std::size_t k = 0; k < hidden; ++k) s += w_hh[r * hidden + k] * h[k];
          pre[r] = s;
        }
        for (std::size_t j = 0; j < hidden; ++j) {
          const double i = sigmoid(pre[j]), f = sigmoid(pre[hidden + j]), g = std::tanh(pre[2 * hidden + j]),
                       o = sigmoid(pre[3 * hidden + j]);
          c[j] = f * c[j] + i * g;
          h[j] = o * std::tanh(c[j]);
          out[(b * time + t) * hidden + j] = h[j];
        }
      }
    }
    input = out;
    width = hidden;
  }
  return input;
}

/// PyTorch's nn.RNN (tanh, batch_first) written out; `p` and h0 as for lstm.
inline vec rnn(const vec& x, std::size_t batch, std::size_t time, std::size_t in, std::size_t hidden,
               const std::vector<vec>& p, const std::vector<vec>& h0) {
  const std::size_t layers = p.size() / 4;
  vec input = x;
  std::size_t width = in;
  for (std::size_t l = 0; l < layers; ++l) {
    const vec &w_ih = p[4 * l], &w_hh = p[4 * l + 1], &b_ih = p[4 * l + 2], &b_hh = p[4 * l + 3];
    vec out(batch * time * hidden);
    for (std::size_t b = 0; b < batch; ++b) {
      vec h(h0[l].begin() + b * hidden, h0[l].begin() + (b + 1) * hidden);
      for (std::size_t t = 0; t < time; ++t) {
        const double* xt = &input[(b * time + t) * width];
        vec next(hidden);
        for (std::size_t r = 0; r < hidden; ++r) {
          double s = b_ih[r] + b_hh[r];
          for (std::size_t k = 0; k < width; ++k) s += w_ih[r * width + k] * xt[k];
          for (std::size_t k = 0; k < hidden; ++k) s += w_hh[r * hidden + k] * h[k];
          next[r] = std::tanh(s);
        }
        h = next;
        std::copy(h.begin(), h.end(), out.begin() + (b * time + t) * hidden);
      }
    }
    input = out;
    width = hidden;
  }
  return input;
}

}  // namespace ref
