// Per-token log-probabilities, for a look at what the model thought: the chosen token's and the
// top-n alternatives'.
//
// They come from the model's raw distribution, log_softmax(scores) at temperature 1, before the
// sampler chain (as Hugging Face's output_logits; llama.cpp's n_probs reports the distribution
// after its samplers instead). So a greedy run still shows how sure the model was, and the numbers
// do not depend on the sampling options.
//
// Attention weights are not offered: the decoder computes each head's scores inside its attention
// kernel and drops them (a buffer per task), and keeping them for every layer, head and position
// would need a hook in models::decoder_session (layers x heads x positions floats per token).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/gen/text_stream.hpp"

namespace lmkit::gen {

struct token_logprob {
  token_id token = 0;
  float logprob = 0.0f;                              // natural log
  std::vector<std::pair<token_id, float>> top{};     // the most likely tokens, best first (ties: lower id)
};

/// out = log_softmax(scores) (in double for the sum). -inf stays -inf; all -inf is an error.
inline void log_softmax(std::span<const float> scores, std::span<float> out) {
  require<argument_error>(scores.size() == out.size() && !scores.empty(), "log_softmax: ", scores.size(),
                          " scores into ", out.size(), " slots");
  const float m = *std::max_element(scores.begin(), scores.end());
  require<argument_error>(m > -std::numeric_limits<float>::infinity() && std::isfinite(m),
                          "log_softmax: no finite score (max ", m, ")");
  double sum = 0.0;
  for (const float s : scores) sum += std::exp(static_cast<double>(s) - m);
  const double log_z = m + std::log(sum);
  for (std::size_t i = 0; i < scores.size(); ++i) out[i] = static_cast<float>(scores[i] - log_z);
}

/// The log-probability of `chosen` under softmax(scores) and the `top_n` most likely tokens.
inline token_logprob logprob_of(std::span<const float> scores, token_id chosen, std::size_t top_n,
                                std::vector<float>& scratch) {
  require<argument_error>(chosen < scores.size(), "logprob_of: token ", chosen, " is outside the vocabulary of ",
                          scores.size());
  scratch.resize(scores.size());
  log_softmax(scores, scratch);
  token_logprob r{chosen, scratch[chosen], {}};
  top_n = std::min(top_n, scores.size());
  if (top_n > 0) {
    std::vector<std::pair<token_id, float>> all;
    all.reserve(scores.size());
    for (std::size_t i = 0; i < scores.size(); ++i) all.push_back({static_cast<token_id>(i), scratch[i]});
    auto better = [](const auto& a, const auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); };
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(top_n), all.end(), better);
    r.top.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(top_n));
  }
  return r;
}

inline token_logprob logprob_of(std::span<const float> scores, token_id chosen, std::size_t top_n) {
  std::vector<float> scratch;
  return logprob_of(scores, chosen, top_n, scratch);
}

/// The text each generated token adds after the prompt (the difference of whole decodes: a token
/// that ends inside a character adds nothing, the next one the whole character).
inline std::vector<std::string> token_pieces(const detokenizer& decode, std::span<const token_id> prompt,
                                             std::span<const token_id> generated) {
  std::vector<token_id> all(prompt.end() - static_cast<std::ptrdiff_t>(std::min<std::size_t>(prompt.size(), 16)),
                            prompt.end());
  std::string before = decode(all);
  std::vector<std::string> pieces;
  for (const token_id t : generated) {
    all.push_back(t);
    std::string now = decode(all);
    pieces.push_back(now.starts_with(before) ? now.substr(before.size()) : now);
    before = std::move(now);
  }
  return pieces;
}

namespace detail {

inline std::string html_escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace detail

/// A self-contained HTML page: the prompt, then each generated token coloured by its probability
/// (red = unlikely, green = likely) with its alternatives in a tooltip and in a list below.
inline std::string logprobs_html(std::string_view prompt_text, std::span<const token_logprob> tokens,
                                 std::span<const std::string> pieces, const detokenizer& decode,
                                 std::string_view title = "lmkit generation") {
  require<argument_error>(pieces.size() == tokens.size(), "logprobs_html: ", pieces.size(), " pieces for ",
                          tokens.size(), " tokens");
  auto visible = [&](token_id id) {
    std::string s = decode(std::span<const token_id>(&id, 1));
    std::string v;
    v += '\'';
    for (const char c : s) v += c == '\n' ? std::string_view("\\n") : c == '\t' ? std::string_view("\\t") : std::string_view(&c, 1);
    v += '\'';
    return v;
  };
  std::string out;
  out += "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + detail::html_escape(title) +
         "</title>\n<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
         "pre{white-space:pre-wrap;font-size:1.1em;line-height:1.6}.p{color:#555}"
         ".t{border-radius:3px;cursor:help}.t:hover{outline:1px solid #000}"
         "table{border-collapse:collapse;font-size:.85em}td{padding:1px 6px;border-bottom:1px solid #ddd}</style>"
         "</head><body>\n<h1>" +
         detail::html_escape(title) +
         "</h1>\n<p>Each generated token is coloured by the probability the model gave it (red: low, green: high; "
         "log_softmax of the raw scores, before sampling). Hover for the alternatives.</p>\n<pre><span class=\"p\">" +
         detail::html_escape(prompt_text) + "</span>";
  char buf[64];
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const double p = std::exp(static_cast<double>(tokens[i].logprob));
    const int hue = static_cast<int>(std::lround(120.0 * p));  // 0 red .. 120 green
    std::string tip = visible(tokens[i].token);
    std::snprintf(buf, sizeof buf, " p=%.4f logprob=%.3f", p, tokens[i].logprob);
    tip += buf;
    for (const auto& [id, lp] : tokens[i].top) {
      std::snprintf(buf, sizeof buf, " %.4f", std::exp(static_cast<double>(lp)));
      tip += '\n';  // (appended piece by piece: g++ 12 warns falsely on "\n" + std::string)
      tip += visible(id);
      tip += buf;
    }
    std::snprintf(buf, sizeof buf, "hsl(%d,80%%,80%%)", hue);
    out += "<span class=\"t\" style=\"background:" + std::string(buf) + "\" title=\"" + detail::html_escape(tip) + "\">" +
           detail::html_escape(pieces[i]) + "</span>";
  }
  out += "</pre>\n<h2>Tokens</h2>\n<table><tr><th>#</th><th>token</th><th>p</th><th>alternatives</th></tr>\n";
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%.4f", std::exp(static_cast<double>(tokens[i].logprob)));
    out += "<tr><td>" + std::to_string(i) + "</td><td>" + detail::html_escape(visible(tokens[i].token)) + "</td><td>" +
           buf + "</td><td>";
    for (const auto& [id, lp] : tokens[i].top) {
      std::snprintf(buf, sizeof buf, " %.4f; ", std::exp(static_cast<double>(lp)));
      out += detail::html_escape(visible(id)) + buf;
    }
    out += "</td></tr>\n";
  }
  out += "</table>\n</body></html>\n";
  return out;
}

}  // namespace lmkit::gen
