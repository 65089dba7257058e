// Must not compile: a layer with a forward but no backward cannot be trained.
#include <string_view>

#include "lmkit/nn/linear.hpp"
#include "lmkit/nn/sequential.hpp"

struct forward_only {
  static constexpr std::size_t in_width = 4, out_width = 4;
  void reserve(lmkit::nn::activation_arena&, lmkit::nn::batch_shape) {}
  lmkit::nn::const_matrix forward(lmkit::nn::const_matrix x, const lmkit::nn::run_context&) { return x; }
  template <class V>
  void visit_parameters(V&&, std::string_view) {}
};

int main() {
  lmkit::nn::sequential<lmkit::nn::linear<4, 4>, forward_only> model;
  (void)model;
}
