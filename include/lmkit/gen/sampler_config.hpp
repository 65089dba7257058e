// Every sampling option as one plain struct, named after llama.cpp's command line, and the
// run-time chain made from it. The defaults switch everything off: plain sampling from softmax
// of the logits (llama.cpp's own defaults are in the comments).
//
// The chain applies its parts in llama.cpp's default order (common/sampling):
//
//   logit bias, banned tokens -> penalties -> top-k -> typical-p -> top-p -> min-p -> temperature -> draw
//
// Parts left at their "off" value are not added. temperature = 0 is greedy: the most likely token
// left after the cuts, the lowest id among ties; after top-k, top-p and min-p that is always the
// argmax of the penalised logits (typical-p may drop the argmax, as in llama.cpp).
#pragma once

#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/gen/dynamic_chain.hpp"
#include "lmkit/gen/logit_bias.hpp"
#include "lmkit/gen/penalties.hpp"
#include "lmkit/gen/temperature.hpp"
#include "lmkit/gen/token_history.hpp"
#include "lmkit/gen/truncation.hpp"

namespace lmkit::gen {

struct sampler_config {
  float temperature = 1.0f;        // --temp (llama.cpp: 0.8); 0 = greedy
  std::size_t top_k = 0;           // --top-k (40); 0 = off
  float top_p = 1.0f;              // --top-p (0.95); 1 = off
  float min_p = 0.0f;              // --min-p (0.05); 0 = off
  float typical_p = 1.0f;          // --typical (1.0); 1 = off
  float repeat_penalty = 1.0f;     // --repeat-penalty (1.0); 1 = off
  float frequency_penalty = 0.0f;  // --frequency-penalty (0.0)
  float presence_penalty = 0.0f;   // --presence-penalty (0.0)
  std::size_t penalty_last_n = 64; // --repeat-last-n (64); 0 = off, whole_history = llama.cpp's -1
  std::vector<std::pair<token_id, float>> logit_bias{};  // --logit-bias ID+BIAS
  std::vector<token_id> banned{};                        // --logit-bias ID-inf
  std::size_t min_keep = 1;        // --min-keep (0, which means 1)
};

/// The run-time chain for `config`, in llama.cpp's order. Throws argument_error for an option
/// outside its range, naming it.
inline dynamic_chain make_chain(const sampler_config& config) {
  auto in_unit = [](float v) { return v >= 0.0f && v <= 1.0f; };
  require<argument_error>(std::isfinite(config.temperature), "sampler_config: temperature must be finite, got ",
                          config.temperature);
  require<argument_error>(in_unit(config.top_p), "sampler_config: top_p must be in [0, 1], got ", config.top_p);
  require<argument_error>(in_unit(config.min_p), "sampler_config: min_p must be in [0, 1], got ", config.min_p);
  require<argument_error>(in_unit(config.typical_p), "sampler_config: typical_p must be in [0, 1], got ",
                          config.typical_p);
  require<argument_error>(config.repeat_penalty > 0.0f && std::isfinite(config.repeat_penalty),
                          "sampler_config: repeat_penalty must be > 0, got ", config.repeat_penalty);
  require<argument_error>(std::isfinite(config.frequency_penalty) && std::isfinite(config.presence_penalty),
                          "sampler_config: frequency_penalty and presence_penalty must be finite");
  const std::size_t min_keep = std::max<std::size_t>(config.min_keep, 1);

  dynamic_chain chain;
  if (!config.logit_bias.empty()) chain.add(gen::logit_bias(config.logit_bias));
  if (!config.banned.empty()) chain.add(banned_tokens(config.banned));
  const penalties p{config.repeat_penalty, config.frequency_penalty, config.presence_penalty, config.penalty_last_n};
  if (p.enabled()) chain.add(p);
  if (config.top_k > 0) chain.add(top_k{config.top_k, min_keep});
  if (config.typical_p < 1.0f) chain.add(typical_p{config.typical_p, min_keep});
  if (config.top_p < 1.0f) chain.add(top_p{config.top_p, min_keep});
  if (config.min_p > 0.0f) chain.add(min_p{config.min_p, min_keep});
  if (config.temperature != 1.0f) chain.add(temperature{config.temperature});
  return chain;
}

}  // namespace lmkit::gen
