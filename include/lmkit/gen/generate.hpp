// The generation loop: a prompt, a model (any gen::language_model), a sampler (any chain), and
// tokens out, one at a time, until max_tokens, a stop token or a stop string.
//
//   gen::decoder_lm lm(model, /*context=*/0, pool);
//   gen::dynamic_chain chain = gen::make_chain({.temperature = 0.8f, .top_k = 40});
//   lmkit::philox rng(lmkit::seed{1});
//   auto out = gen::generate(lm, prompt_ids, chain, rng,
//                            {.max_tokens = 64, .stop_tokens = {eos}, .stop_strings = {"\n\n"},
//                             .decode = gen::decoder_of(tokenizer),
//                             .on_text = [](std::string_view piece) { std::cout << piece << std::flush; }});
//
// The model is rewound to position 0 first and fed the whole prompt. Temperature 0 (greedy) gives
// the same tokens on any number of threads, since the models do (their partitions do not depend
// on the thread count) and the chain is serial.
//
// Context: with context_policy::error (the default), a prompt + max_tokens longer than the model's
// context is an argument_error that names both, before any work. With sliding_window, when the
// context is full the model is rewound and fed the last `window` tokens again (a prompt longer
// than the context is cut to its last `window` tokens the same way): the model then sees only the
// recent text, as in llama.cpp's context shift without the KV shuffle. Models without a context
// limit (n-gram, LSTM) never slide.
//
// Stop strings need `decode`. A stop string that never occurs simply runs to max_tokens; one that
// does ends the text just before it (the tokens include the ones that formed it: a token cannot be
// split). A stop token ends generation and is not part of the tokens or the text.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/gen/language_model.hpp"
#include "lmkit/gen/logprobs.hpp"
#include "lmkit/gen/text_stream.hpp"

namespace lmkit::gen {

/// Anything that draws the next token from the scores and the history (both chains).
template <class S>
concept token_sampler = requires(S& s, std::span<const float> scores, std::span<const token_id> history, philox& rng) {
  { s.sample(scores, history, rng) } -> std::convertible_to<token_id>;
};

enum class context_policy { error, sliding_window };
enum class stop_reason { max_tokens, stop_token, stop_string };

inline const char* to_string(stop_reason r) {
  switch (r) {
    case stop_reason::max_tokens: return "max_tokens";
    case stop_reason::stop_token: return "stop_token";
    case stop_reason::stop_string: return "stop_string";
  }
  return "?";
}

struct generate_options {
  std::size_t max_tokens = 128;
  std::vector<token_id> stop_tokens{};
  std::vector<std::string> stop_strings{};  // need `decode`
  context_policy on_full_context = context_policy::error;
  std::size_t window = 0;        // sliding_window: tokens kept (0: half the context)
  std::size_t logprobs = 0;      // > 0: record each token's logprob and this many alternatives
  bool record_logprobs = false;  // record the chosen token's logprob even with logprobs = 0
  detokenizer decode{};          // token ids to text (gen::decoder_of(tokenizer))
  std::function<void(std::string_view)> on_text{};  // each new piece of text (needs decode)
};

struct generation {
  std::vector<token_id> tokens;           // generated, without a stop token
  std::string text;                       // their text (empty without decode)
  stop_reason reason = stop_reason::max_tokens;
  std::optional<token_id> stop_token;     // the one that ended it
  std::vector<token_logprob> logprobs;    // per token when asked for
  std::size_t slides = 0;                 // times the window slid
};

template <language_model M, token_sampler S>
generation generate(M& model, std::span<const token_id> prompt, S& sampler, philox& rng, const generate_options& o = {}) {
  require<argument_error>(!prompt.empty(), "generate: the prompt is empty (give at least one token, e.g. BOS)");
  require<argument_error>(o.stop_strings.empty() || o.decode, "generate: stop strings need a decode function");
  require<argument_error>(!o.on_text || o.decode, "generate: streaming text needs a decode function");
  const std::size_t context = model.context_length();
  std::size_t window = 0;
  if (context > 0) {
    if (o.on_full_context == context_policy::error) {
      if (prompt.size() + o.max_tokens > context)
        throw argument_error(lmkit::detail::concat("generate: the prompt's ", prompt.size(), " tokens + max_tokens ", o.max_tokens,
                                            " = ", prompt.size() + o.max_tokens, " exceed the model's context of ", context,
                                            " positions (shorten them, or use context_policy::sliding_window)"));
    } else {
      window = o.window ? o.window : std::max<std::size_t>(1, context / 2);
      require<argument_error>(window < context, "generate: a sliding window of ", window,
                              " tokens must be shorter than the context of ", context);
    }
  }

  generation out;
  std::vector<token_id> history(prompt.begin(), prompt.end());
  std::optional<text_stream> stream;
  if (o.decode) stream.emplace(o.decode, prompt, o.stop_strings);
  std::vector<float> scratch;

  model.truncate(0);
  std::span<const float> scores =
      window > 0 && prompt.size() > context ? model.append(prompt.last(window)) : model.append(prompt);
  for (std::size_t i = 0; i < o.max_tokens; ++i) {
    const token_id next = sampler.sample(scores, history, rng);
    if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), next) != o.stop_tokens.end()) {
      out.reason = stop_reason::stop_token;
      out.stop_token = next;
      break;
    }
    if (o.logprobs > 0 || o.record_logprobs) out.logprobs.push_back(logprob_of(scores, next, o.logprobs, scratch));
    history.push_back(next);
    out.tokens.push_back(next);
    if (stream) {
      const std::string piece = stream->push(next);
      if (o.on_text && !piece.empty()) o.on_text(piece);
      if (stream->stopped()) {
        out.reason = stop_reason::stop_string;
        break;
      }
    }
    if (i + 1 == o.max_tokens) break;  // the last token need not be run
    if (context > 0 && model.position() + 1 > context) {
      // only with sliding_window: the error policy checked the length up front
      model.truncate(0);
      scores = model.append(std::span<const token_id>(history).last(window));
      ++out.slides;
    } else {
      scores = model.append(std::span<const token_id>(&history.back(), 1));
    }
  }
  if (stream) {
    const std::string rest = stream->finish();
    if (o.on_text && !rest.empty()) o.on_text(rest);
    out.text = stream->text();
  }
  return out;
}

/// generate() with a fresh stream seeded with `seed_value`.
template <language_model M, token_sampler S>
generation generate(M& model, std::span<const token_id> prompt, S& sampler, std::uint64_t seed_value,
                    const generate_options& o = {}) {
  philox rng(seed{seed_value});
  return generate(model, prompt, sampler, rng, o);
}

}  // namespace lmkit::gen
