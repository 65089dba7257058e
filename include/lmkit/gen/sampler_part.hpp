// What a part of a sampler chain is: a small options struct with
//
//   void apply(candidates& c, const sample_context& ctx) const;
//
// that narrows or reweighs the candidates. Parts hold options only (scratch space lives in the
// candidates), so a chain is copyable and the same part can serve the compile-time chain
// (gen::sampler_chain<...>) and the run-time one (gen::dynamic_chain). The final draw is not a
// part: every chain ends with one draw from softmax over what is left (gen::candidates::draw).
#pragma once

#include <concepts>
#include <span>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/gen/candidates.hpp"

namespace lmkit::gen {

/// What a part sees besides the candidates: the tokens so far (prompt included, most recent last)
/// and the chain's random stream (for parts that draw; the built-in ones do not).
struct sample_context {
  std::span<const token_id> history;
  philox& rng;
};

template <class P>
concept sampler_part = std::copy_constructible<P> && requires(const P& part, candidates& c, const sample_context& ctx) {
  part.apply(c, ctx);
};

}  // namespace lmkit::gen
