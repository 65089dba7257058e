// A sampler chain chosen at run time (from a command line, a request), built from the same part
// types as the compile-time gen::sampler_chain, so the two give the same tokens for the same
// parts, order and seed.
//
//   gen::dynamic_chain chain = gen::make_chain({.temperature = 0.8f, .top_k = 40, .top_p = 0.95f});
//   chain.add(gen::logit_transform{soft_cap{30.0f}});        // a user's xsimd functor, appended
//   token_id next = chain.sample(logits, history, rng);
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/gen/candidates.hpp"
#include "lmkit/gen/sampler_part.hpp"

namespace lmkit::gen {

/// Any sampler part, type-erased (one indirect call per part per token).
class any_sampler {
 public:
  template <class P>
    requires sampler_part<P> && (!std::is_same_v<std::remove_cvref_t<P>, any_sampler>)
  any_sampler(P part)  // NOLINT: implicit on purpose, so that chain.add(gen::top_k{40}) reads well
      : apply_([p = std::move(part)](candidates& c, const sample_context& ctx) { p.apply(c, ctx); }) {}

  void apply(candidates& c, const sample_context& ctx) const { apply_(c, ctx); }

 private:
  std::function<void(candidates&, const sample_context&)> apply_;
};

class dynamic_chain {
 public:
  dynamic_chain() = default;
  dynamic_chain(std::initializer_list<any_sampler> parts) : parts_(parts) {}

  /// Appends a part (it runs after the ones already there).
  dynamic_chain& add(any_sampler part) {
    parts_.push_back(std::move(part));
    return *this;
  }

  /// Inserts a part before the one at `position` (size() appends).
  dynamic_chain& insert(std::size_t position, any_sampler part) {
    require<argument_error>(position <= parts_.size(), "dynamic_chain: position ", position, " is past the ",
                            parts_.size(), " parts");
    parts_.insert(parts_.begin() + static_cast<std::ptrdiff_t>(position), std::move(part));
    return *this;
  }

  std::size_t size() const { return parts_.size(); }

  /// The next token given the model's logits for it and the tokens so far.
  token_id sample(std::span<const float> logits, std::span<const token_id> history, philox& rng) {
    work_.reset(logits);
    apply(work_, sample_context{history, rng});
    return work_.draw(rng);
  }

  void apply(candidates& c, const sample_context& ctx) const {
    for (const any_sampler& part : parts_) part.apply(c, ctx);
  }

  const candidates& last_candidates() const { return work_; }

 private:
  std::vector<any_sampler> parts_;
  candidates work_;
};

}  // namespace lmkit::gen
