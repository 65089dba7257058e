// Fixed per-token changes of the logits: a bias added to chosen tokens (llama.cpp's
// --logit-bias ID+BIAS, OpenAI's logit_bias) and tokens banned outright (a bias of -inf). Both
// touch only their own tokens; a token id outside the vocabulary is an argument_error.
#pragma once

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <utility>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/gen/candidates.hpp"
#include "lmkit/gen/sampler_part.hpp"

namespace lmkit::gen {

/// logit[id] += bias for each (id, bias); biases of the same id add up; -inf bans the token.
class logit_bias {
 public:
  logit_bias() = default;
  logit_bias(std::initializer_list<std::pair<token_id, float>> biases) : logit_bias(std::vector(biases)) {}
  explicit logit_bias(std::vector<std::pair<token_id, float>> biases) {
    std::sort(biases.begin(), biases.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [id, bias] : biases) {
      require<argument_error>(!std::isnan(bias) && bias != -candidates::minus_infinity, "logit_bias: the bias of token ",
                              id, " must be a number below +inf, got ", bias);
      if (!ids_.empty() && ids_.back() == id) {
        values_.back() += bias;
      } else {
        ids_.push_back(id);
        values_.push_back(bias);
      }
    }
  }

  bool enabled() const { return !ids_.empty(); }

  void apply(candidates& c, const sample_context&) const {
    c.adjust(ids_, [&](std::size_t j, float logit) { return logit + values_[j]; });
  }

 private:
  std::vector<token_id> ids_;
  std::vector<float> values_;
};

/// Tokens that are never sampled. If every token ends up banned, the draw throws argument_error.
class banned_tokens {
 public:
  banned_tokens() = default;
  banned_tokens(std::initializer_list<token_id> ids) : banned_tokens(std::vector(ids)) {}
  explicit banned_tokens(std::vector<token_id> ids) : ids_(std::move(ids)) {
    std::sort(ids_.begin(), ids_.end());
    ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
  }

  bool enabled() const { return !ids_.empty(); }

  void apply(candidates& c, const sample_context&) const {
    c.adjust(ids_, [](std::size_t, float) { return candidates::minus_infinity; });
  }

 private:
  std::vector<token_id> ids_;
};

}  // namespace lmkit::gen
