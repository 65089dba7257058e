// A sampler chain fixed at compile time: the parts run in the order of the type list, then one
// token is drawn from softmax over what is left.
//
//   gen::sampler_chain<gen::repetition_penalty, gen::top_k, gen::top_p, gen::temperature>
//       chain{{1.1f}, {40}, {0.95f}, {0.8f}};
//   lmkit::philox rng(lmkit::seed{42});
//   token_id next = chain.sample(logits, history, rng);   // history: prompt + generated so far
//
// The same seed, logits and history give the same token: the parts are deterministic and the draw
// takes exactly one uniform_double from the stream per token. A chain keeps its working set
// between calls (no allocation per token once warm), so give each thread its own chain.
#pragma once

#include <cstddef>
#include <span>
#include <tuple>
#include <utility>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/gen/candidates.hpp"
#include "lmkit/gen/sampler_part.hpp"

namespace lmkit::gen {

template <class... Parts>
class sampler_chain {
  static_assert((sampler_part<Parts> && ...),
                "sampler_chain: every part must be copyable and have `void apply(gen::candidates&, const "
                "gen::sample_context&) const` (see lmkit/gen/sampler_part.hpp)");

 public:
  sampler_chain() = default;
  explicit sampler_chain(Parts... parts)
    requires(sizeof...(Parts) > 0)
      : parts_(std::move(parts)...) {}

  /// The next token given the model's logits for it and the tokens so far.
  token_id sample(std::span<const float> logits, std::span<const token_id> history, philox& rng) {
    work_.reset(logits);
    apply(work_, sample_context{history, rng});
    return work_.draw(rng);
  }

  /// Runs the parts without drawing: a chain is itself a part of a bigger chain.
  void apply(candidates& c, const sample_context& ctx) const {
    std::apply([&](const auto&... part) { (part.apply(c, ctx), ...); }, parts_);
  }

  template <std::size_t I>
  auto& part() {
    return std::get<I>(parts_);
  }
  template <std::size_t I>
  const auto& part() const {
    return std::get<I>(parts_);
  }

  /// The candidates the last draw chose from (for log-probabilities or a look at the cut).
  const candidates& last_candidates() const { return work_; }

 private:
  std::tuple<Parts...> parts_;
  candidates work_;
};

/// The short name used in the design notes.
template <class... Parts>
using chain = sampler_chain<Parts...>;

}  // namespace lmkit::gen
