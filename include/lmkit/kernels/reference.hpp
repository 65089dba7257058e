// Plain scalar versions of every kernel, written for clarity, accumulating in double: the
// independent reference the SIMD kernels are tested against. Not for production use.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/weight_matrix.hpp"
#include "lmkit/kernels/gemm_problem.hpp"
#include "lmkit/kernels/optimizer_coefficients.hpp"

namespace lmkit::kernels::reference {

inline void add(const float* a, const float* b, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}
inline void mul(const float* a, const float* b, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}
inline void scale(const float* x, float s, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = s * x[i];
}
inline void axpy(float alpha, const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<double>(y[i]) + double{alpha} * x[i]);
}
inline double dot(const float* a, const float* b, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += double{a[i]} * b[i];
  return s;
}

inline void adam_update(float* w, const float* g, float* m, float* v, std::size_t n, const adam_coefficients& c) {
  for (std::size_t i = 0; i < n; ++i) {
    const double grad = double{g[i]} + double{c.l2} * w[i];
    m[i] = static_cast<float>(c.beta1 * double{m[i]} + (1.0 - c.beta1) * grad);
    v[i] = static_cast<float>(c.beta2 * double{v[i]} + (1.0 - c.beta2) * grad * grad);
    w[i] = static_cast<float>(double{w[i]} * c.shrink -
                              c.step_size * double{m[i]} / (std::sqrt(double{v[i]}) * c.rsqrt_correction2 + c.eps));
  }
}

inline void softmax(const float* x, float* out, std::size_t n) {
  if (n == 0) return;
  const double max = *std::max_element(x, x + n);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(x[i] - max);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(std::exp(x[i] - max) / sum);
}
/// One query's attention over n keys/values (rows at `stride`), all in double.
inline void attend_query(const float* q, const float* keys, const float* values, std::size_t stride, std::size_t n,
                         std::size_t head_dim, float scale, float* out) {
  std::vector<double> w(n);
  double max = -std::numeric_limits<double>::infinity(), sum = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    double s = 0.0;
    for (std::size_t i = 0; i < head_dim; ++i) s += double{q[i]} * keys[j * stride + i];
    w[j] = s * scale;
    max = std::max(max, w[j]);
  }
  for (auto& x : w) sum += (x = std::exp(x - max));
  for (std::size_t i = 0; i < head_dim; ++i) {
    double o = 0.0;
    for (std::size_t j = 0; j < n; ++j) o += w[j] / sum * values[j * stride + i];
    out[i] = static_cast<float>(o);
  }
}
inline void log_softmax(const float* x, float* out, std::size_t n) {
  if (n == 0) return;
  const double max = *std::max_element(x, x + n);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(x[i] - max);
  const double log_sum = std::log(sum);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(x[i] - max - log_sum);
}
// Written from the Jacobian, dx_i += sum_j dy_j y_j (delta_ij - y_i), not from the kernel's shortcut.
inline void softmax_backward(const float* y, const float* dy, float* dx, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    double g = 0;
    for (std::size_t j = 0; j < n; ++j) g += double{dy[j]} * y[j] * ((i == j ? 1.0 : 0.0) - y[i]);
    dx[i] = static_cast<float>(dx[i] + g);
  }
}
// d log_softmax_j / d x_i = delta_ij - softmax_i, with softmax_i = exp(y_i).
inline void log_softmax_backward(const float* y, const float* dy, float* dx, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    double g = 0;
    for (std::size_t j = 0; j < n; ++j) g += double{dy[j]} * ((i == j ? 1.0 : 0.0) - std::exp(double{y[i]}));
    dx[i] = static_cast<float>(dx[i] + g);
  }
}

inline void layer_norm(const float* x, const float* weight, const float* bias, float* out, std::size_t n, float eps,
                       float* mean_out, float* rstd_out) {
  if (n == 0) return;
  double mean = 0, var = 0;
  for (std::size_t i = 0; i < n; ++i) mean += x[i];
  mean /= n;
  for (std::size_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= n;
  const double rstd = 1.0 / std::sqrt(var + eps);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>((x[i] - mean) * rstd * weight[i] + (bias ? bias[i] : 0.0));
  if (mean_out) *mean_out = static_cast<float>(mean);
  if (rstd_out) *rstd_out = static_cast<float>(rstd);
}
inline void rms_norm(const float* x, const float* weight, float* out, std::size_t n, float eps, float* rstd_out) {
  if (n == 0) return;
  double ms = 0;
  for (std::size_t i = 0; i < n; ++i) ms += double{x[i]} * x[i];
  const double rstd = 1.0 / std::sqrt(ms / n + eps);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(x[i] * rstd * weight[i]);
  if (rstd_out) *rstd_out = static_cast<float>(rstd);
}
// Norm backward, from the formulas in norm-inl.hpp but in double and without SIMD.
inline void layer_norm_backward(const float* x, const float* weight, float mean, float rstd, const float* dy, float* dx,
                                float* dweight, float* dbias, std::size_t n) {
  if (n == 0) return;
  double mean_g = 0, mean_g_xhat = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double xhat = (double{x[i]} - mean) * rstd, g = double{dy[i]} * weight[i];
    mean_g += g;
    mean_g_xhat += g * xhat;
  }
  mean_g /= n;
  mean_g_xhat /= n;
  for (std::size_t i = 0; i < n; ++i) {
    const double xhat = (double{x[i]} - mean) * rstd, g = double{dy[i]} * weight[i];
    dx[i] = static_cast<float>(dx[i] + rstd * (g - mean_g - xhat * mean_g_xhat));
    dweight[i] = static_cast<float>(dweight[i] + dy[i] * xhat);
    if (dbias) dbias[i] += dy[i];
  }
}
inline void rms_norm_backward(const float* x, const float* weight, float rstd, const float* dy, float* dx, float* dweight,
                              std::size_t n) {
  if (n == 0) return;
  double mean_g_xhat = 0;
  for (std::size_t i = 0; i < n; ++i) mean_g_xhat += double{dy[i]} * weight[i] * x[i] * rstd;
  mean_g_xhat /= n;
  for (std::size_t i = 0; i < n; ++i) {
    const double xhat = double{x[i]} * rstd, g = double{dy[i]} * weight[i];
    dx[i] = static_cast<float>(dx[i] + rstd * (g - xhat * mean_g_xhat));
    dweight[i] = static_cast<float>(dweight[i] + dy[i] * xhat);
  }
}

inline double gelu_tanh(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
inline double gelu_erf(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
inline double silu(double x) { return x / (1.0 + std::exp(-x)); }
inline double gelu_tanh_derivative(double x) {
  const double c = std::sqrt(2.0 / M_PI), t = std::tanh(c * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
}
inline double gelu_erf_derivative(double x) {
  return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
}
inline double silu_derivative(double x) {
  const double s = 1.0 / (1.0 + std::exp(-x));
  return s * (1.0 + x * (1.0 - s));
}

inline void rope_half(float* x, std::size_t head_dim, std::size_t heads, const float* cos, const float* sin, bool inverse) {
  const std::size_t half = head_dim / 2;
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t i = 0; i < half; ++i) {
      float* row = x + h * head_dim;
      const double a = row[i], b = row[i + half], c = cos[i], s = inverse ? -sin[i] : sin[i];
      row[i] = static_cast<float>(a * c - b * s);
      row[i + half] = static_cast<float>(a * s + b * c);
    }
}
inline void rope_adjacent(float* x, std::size_t head_dim, std::size_t heads, const float* cos, const float* sin,
                          bool inverse) {
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t i = 0; i < head_dim / 2; ++i) {
      float* row = x + h * head_dim;
      const double a = row[2 * i], b = row[2 * i + 1], c = cos[i], s = inverse ? -sin[i] : sin[i];
      row[2 * i] = static_cast<float>(a * c - b * s);
      row[2 * i + 1] = static_cast<float>(a * s + b * c);
    }
}

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// PyTorch's LSTM step, written from its documentation: gates [4n] (i, f, g, o) pre-activations
/// in, activations out.
inline void lstm_cell(float* gates, const float* bias, const float* c_prev, float* c, float* h, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    const double i = sigmoid(double{gates[j]} + bias[j]), f = sigmoid(double{gates[n + j]} + bias[n + j]),
                 g = std::tanh(double{gates[2 * n + j]} + bias[2 * n + j]),
                 o = sigmoid(double{gates[3 * n + j]} + bias[3 * n + j]);
    const double cell = f * c_prev[j] + i * g;
    gates[j] = static_cast<float>(i);
    gates[n + j] = static_cast<float>(f);
    gates[2 * n + j] = static_cast<float>(g);
    gates[3 * n + j] = static_cast<float>(o);
    c[j] = static_cast<float>(cell);
    h[j] = static_cast<float>(o * std::tanh(cell));
  }
}
/// The chain rule through lstm_cell, term by term (dpre may be gates).
inline void lstm_cell_backward(const float* gates, float* dpre, const float* c_prev, const float* c, const float* dy,
                               const float* dh, float* dc, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    const double i = gates[j], f = gates[n + j], g = gates[2 * n + j], o = gates[3 * n + j];
    const double dh_total = double{dy[j]} + dh[j], tanh_c = std::tanh(double{c[j]});
    const double dc_total = dc[j] + dh_total * o * (1.0 - tanh_c * tanh_c);
    dc[j] = static_cast<float>(dc_total * f);
    dpre[j] = static_cast<float>(dc_total * g * i * (1.0 - i));
    dpre[n + j] = static_cast<float>(dc_total * c_prev[j] * f * (1.0 - f));
    dpre[2 * n + j] = static_cast<float>(dc_total * i * (1.0 - g * g));
    dpre[3 * n + j] = static_cast<float>(dh_total * tanh_c * o * (1.0 - o));
  }
}
inline void elman_cell(float* gates, const float* bias, float* h, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) h[j] = gates[j] = static_cast<float>(std::tanh(double{gates[j]} + bias[j]));
}
inline void elman_cell_backward(const float* gates, float* dpre, const float* dy, const float* dh, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    const double h = gates[j];
    dpre[j] = static_cast<float>((double{dy[j]} + dh[j]) * (1.0 - h * h));
  }
}

/// Element (r, c) of op(M) as a double.
inline double element(const matrix_operand& m, std::size_t r, std::size_t c) {
  const std::size_t index = m.transposed ? c * m.stride + r : r * m.stride + c;
  switch (m.type) {
    case dtype::f32: return static_cast<const float*>(m.data)[index];
    case dtype::bf16: return static_cast<const bf16*>(m.data)[index].to_float();
    case dtype::f16: return static_cast<const f16*>(m.data)[index].to_float();
  }
  return 0;
}

/// The triple loop. Also returns, per element of C, sum_k |a b| (for error bounds) if asked.
/// With bf16 products each operand element is first rounded to bf16 (nearest, ties to even).
inline void gemm(const gemm_problem& g, std::vector<double>* magnitude = nullptr) {
  if (magnitude) magnitude->assign(g.m * g.n, 0.0);
  const bool bf16_products = g.products == product_precision::bf16;
  auto value = [&](const matrix_operand& m, std::size_t r, std::size_t c) {
    const double x = element(m, r, c);
    return bf16_products ? double{bf16::from_float(static_cast<float>(x)).to_float()} : x;
  };
  for (std::size_t i = 0; i < g.m; ++i)
    for (std::size_t j = 0; j < g.n; ++j) {
      double sum = g.accumulate ? g.c[i * g.ldc + j] : 0.0, size = std::abs(sum);
      for (std::size_t p = 0; p < g.k; ++p) {
        const double term = value(g.a, i, p) * value(g.b, p, j);
        sum += term;
        size += std::abs(term);
      }
      g.c[i * g.ldc + j] = static_cast<float>(sum);
      if (magnitude) (*magnitude)[i * g.n + j] = size;
    }
}

// ---- quantised weights (ggml's block formats) ------------------------------------------------

/// ggml's quantize_row_q8_0_ref, from its definition: per block of 32, amax = max |x|,
/// d = amax / 127, id = d ? 1 / d : 0, q = roundf(x * id) (halves away from zero), d stored as f16.
inline void quantize_q8_0(const float* x, block_q8_0* y, std::size_t blocks) {
  for (std::size_t b = 0; b < blocks; ++b) {
    const float* v = x + b * 32;
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f16::from_float(d);
    for (int i = 0; i < 32; ++i) y[b].qs[i] = static_cast<std::int8_t>(std::roundf(v[i] * id));
  }
}

/// ggml's quantize_row_q4_0_ref, from its definition: per block, `max` is the first value of
/// largest magnitude (with its sign), d = max / -8, id = d ? 1 / d : 0,
/// q = min(15, (int8)(x * id + 8.5)) (truncation), element i < 16 in the low nibble of qs[i],
/// element i + 16 in the high nibble.
inline void quantize_q4_0(const float* x, block_q4_0* y, std::size_t blocks) {
  for (std::size_t b = 0; b < blocks; ++b) {
    const float* v = x + b * 32;
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < 32; ++i)
      if (amax < std::fabs(v[i])) {
        amax = std::fabs(v[i]);
        max = v[i];
      }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f16::from_float(d);
    for (int i = 0; i < 16; ++i) {
      const int lo = std::min(15, static_cast<int>(static_cast<std::int8_t>(v[i] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<std::int8_t>(v[i + 16] * id + 8.5f)));
      y[b].qs[i] = static_cast<std::uint8_t>(lo | (hi << 4));
    }
  }
}

/// The 32 integer weights of a block.
inline void block_integers(const block_q8_0& b, int* q) {
  for (int i = 0; i < 32; ++i) q[i] = b.qs[i];
}
inline void block_integers(const block_q4_0& b, int* q) {
  for (int i = 0; i < 16; ++i) {
    q[i] = (b.qs[i] & 15) - 8;
    q[i + 16] = (b.qs[i] >> 4) - 8;
  }
}

template <class Block>
void dequantize(const Block* in, float* out, std::size_t blocks) {
  int q[32];
  for (std::size_t b = 0; b < blocks; ++b) {
    block_integers(in[b], q);
    const float d = in[b].d.to_float();
    for (int i = 0; i < 32; ++i) out[b * 32 + i] = static_cast<float>(q[i]) * d;
  }
}

/// Weight (r, c) of a weight matrix of any type, as a float (d * q for the block types); reads
/// with memcpy, since the data need not be aligned.
inline float weight_element(const weight_matrix& w, std::size_t r, std::size_t c) {
  const auto* row = static_cast<const unsigned char*>(w.data) + r * row_bytes(w.type, w.cols);
  auto read = [](const unsigned char* p, auto value) {
    std::memcpy(&value, p, sizeof(value));
    return value;
  };
  int q[32];
  switch (w.type) {
    case weight_type::f32: return read(row + 4 * c, 0.0f);
    case weight_type::f16: return read(row + 2 * c, f16{}).to_float();
    case weight_type::bf16: return read(row + 2 * c, bf16{}).to_float();
    case weight_type::q8_0: {
      const auto block = read(row + c / 32 * sizeof(block_q8_0), block_q8_0{});
      block_integers(block, q);
      return static_cast<float>(q[c % 32]) * block.d.to_float();
    }
    case weight_type::q4_0: {
      const auto block = read(row + c / 32 * sizeof(block_q4_0), block_q4_0{});
      block_integers(block, q);
      return static_cast<float>(q[c % 32]) * block.d.to_float();
    }
  }
  return 0;
}

/// y [m x w.rows] = x [m x w.cols] * w^T. Plain types: the double triple loop. Block types: each row
/// of x quantised to Q8_0 (quantize_q8_0), then per block the int32 sum of products, times
/// f32(d_w) * f32(d_x), summed in double. Also returns, per element of y, the sum of the blocks'
/// |scale * sum of |products||, the size the rounding of a float sum is measured against.
inline void matmul_weights(const float* x, std::size_t m, std::size_t ldx, const weight_matrix& w, float* y,
                           std::size_t ldy, std::vector<double>* magnitude = nullptr) {
  if (magnitude) magnitude->assign(m * w.rows, 0.0);
  if (!is_block_type(w.type)) {
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t r = 0; r < w.rows; ++r) {
        double sum = 0, size = 0;
        for (std::size_t c = 0; c < w.cols; ++c) {
          const double term = double{x[i * ldx + c]} * weight_element(w, r, c);
          sum += term;
          size += std::abs(term);
        }
        y[i * ldy + r] = static_cast<float>(sum);
        if (magnitude) (*magnitude)[i * w.rows + r] = size;
      }
    return;
  }
  const std::size_t blocks = w.cols / 32, stride = row_bytes(w.type, w.cols);
  std::vector<block_q8_0> xq(blocks);
  int qw[32];
  for (std::size_t i = 0; i < m; ++i) {
    quantize_q8_0(x + i * ldx, xq.data(), blocks);
    for (std::size_t r = 0; r < w.rows; ++r) {
      const auto* row = static_cast<const unsigned char*>(w.data) + r * stride;
      double sum = 0, size = 0;
      for (std::size_t b = 0; b < blocks; ++b) {
        float dw;
        if (w.type == weight_type::q8_0) {
          block_q8_0 block;
          std::memcpy(&block, row + b * sizeof(block), sizeof(block));  // no alignment assumed
          block_integers(block, qw);
          dw = block.d.to_float();
        } else {
          block_q4_0 block;
          std::memcpy(&block, row + b * sizeof(block), sizeof(block));
          block_integers(block, qw);
          dw = block.d.to_float();
        }
        std::int32_t dot = 0, absolute = 0;
        for (int k = 0; k < 32; ++k) {
          dot += qw[k] * xq[b].qs[k];
          absolute += std::abs(qw[k] * xq[b].qs[k]);
        }
        const double scale = double{dw} * double{xq[b].d.to_float()};
        sum += scale * dot;
        size += std::abs(scale) * absolute;
      }
      y[i * ldy + r] = static_cast<float>(sum);
      if (magnitude) (*magnitude)[i * w.rows + r] = size;
    }
  }
}

}  // namespace lmkit::kernels::reference
