// Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000),
// exactly as PyTorch's nn.LSTM(batch_first=True) computes it:
//   i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)     f = sigmoid(W_if x + b_if + W_hf h + b_hf)
//   g = tanh(W_ig x + b_ig + W_hg h + b_hg)        o = sigmoid(W_io x + b_io + W_ho h + b_ho)
//   c' = f * c + i * g                              h' = o * tanh(c')
// The gate blocks are stacked in the order i, f, g, o in weight_ih_l{k} [4H, in], weight_hh_l{k}
// [4H, H], bias_ih_l{k} and bias_hh_l{k} [4H]: PyTorch's names and layout, so checkpoints exchange.
//
//   nn::lstm<64, 256> rnn(64, 256, /*layers*/ 2);
//   rnn.carry_state(true);   // truncated BPTT: each batch continues the sequences of the one before
#pragma once

#include <cstddef>
#include <span>

#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/recurrent.hpp"

namespace lmkit::nn {

/// One LSTM step for one sequence (the fused kernels::lstm_cell); see recurrent.hpp for the contract.
struct lstm_cell {
  static constexpr std::size_t gates = 4;
  static constexpr bool has_cell_state = true;
  static constexpr const char* name = "lstm";

  /// gates [4H]: pre-activations in, (i, f, g, o) out; c = f c_prev + i g; h = o tanh(c).
  static void forward(std::span<float> gates, std::span<const float> bias, const float* c_prev, float* c, float* h,
                      std::size_t hidden) {
    kernels::lstm_cell(gates, bias, {c_prev, hidden}, {c, hidden}, {h, hidden});
  }

  /// gates [4H]: (i, f, g, o) in; dpre [4H]: their pre-activations' gradients out. dL/dh_t = dy + dh;
  /// dc: dL/dc_t from step t+1 in, dL/dc_{t-1} out.
  static void backward(std::span<const float> gates, std::span<float> dpre, const float* c_prev, const float* c,
                       const float* dy, const float* dh, float* dc, std::size_t hidden) {
    kernels::lstm_cell_backward(gates, dpre, {c_prev, hidden}, {c, hidden}, {dy, hidden}, {dh, hidden}, {dc, hidden});
  }
};

/// A stack of `layers` LSTM layers (PyTorch's num_layers), widths static or dynamic.
template <std::size_t In = dynamic, std::size_t Hidden = dynamic>
using lstm = recurrent<lstm_cell, In, Hidden>;

}  // namespace lmkit::nn
