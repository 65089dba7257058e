// Must not compile: a 16-wide output feeds a 32-wide input.
#include "lmkit/nn/linear.hpp"
#include "lmkit/nn/sequential.hpp"

int main() {
  lmkit::nn::sequential<lmkit::nn::linear<8, 16>, lmkit::nn::linear<32, 4>> model;
  (void)model;
}
