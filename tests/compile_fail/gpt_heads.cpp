// Must not compile: 130 is not a multiple of 4 heads.
#include "lmkit/models/gpt.hpp"

constexpr lmkit::models::gpt_config bad{.vocab = 65, .context = 64, .layers = 4, .heads = 4, .dim = 130};

int main() {
  lmkit::models::gpt<bad> model;
  (void)model;
}
