// The Elman network (Elman 1990) as PyTorch's nn.RNN(nonlinearity='tanh', batch_first=True):
//   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
// with PyTorch's names and layout (weight_ih_l{k} [H, in], weight_hh_l{k} [H, H], bias_ih_l{k},
// bias_hh_l{k} [H]). The same stacking, carried state and BPTT as the LSTM (recurrent.hpp).
#pragma once

#include <cstddef>
#include <span>

#include "lmkit/kernels/kernels.hpp"
#include "lmkit/nn/recurrent.hpp"

namespace lmkit::nn {

/// One Elman step for one sequence (the fused kernels::elman_cell); see recurrent.hpp for the contract.
struct elman_cell {
  static constexpr std::size_t gates = 1;
  static constexpr bool has_cell_state = false;
  static constexpr const char* name = "rnn";

  /// gates [H]: pre-activations in, h = tanh(pre + bias) out (kept there for the backward too).
  static void forward(std::span<float> gates, std::span<const float> bias, const float*, float*, float* h,
                      std::size_t hidden) {
    kernels::elman_cell(gates, bias, {h, hidden});
  }

  /// gates [H]: h in; dpre [H]: dL/dpre = (dy + dh) (1 - h^2) out.
  static void backward(std::span<const float> gates, std::span<float> dpre, const float*, const float*, const float* dy,
                       const float* dh, float*, std::size_t hidden) {
    kernels::elman_cell_backward(gates, dpre, {dy, hidden}, {dh, hidden});
  }
};

/// A stack of `layers` Elman (tanh) layers, widths static or dynamic.
template <std::size_t In = dynamic, std::size_t Hidden = dynamic>
using rnn = recurrent<elman_cell, In, Hidden>;

}  // namespace lmkit::nn
