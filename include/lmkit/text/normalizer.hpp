// Text normalisation before tokenising: one Unicode form (NFC, NFKC), one case (case folding),
// no accents, tidy white space — steps that compose at compile time into a chain:
//
//   constexpr lmkit::text::normalizer_chain<nfkc, case_fold, strip_accents, clean_whitespace> normalize;
//   std::string clean = normalize("  Ｃａｆé  ＴＥＳＴ ");   // "cafe test"
//
// A step is any type callable as `std::string(std::string_view)`; the Unicode steps use utf8proc
// (Unicode 15) and refuse ill-formed UTF-8 with lmkit::format_error.
#pragma once

#include <concepts>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>

#include <utf8proc.h>

#include "lmkit/core/error.hpp"
#include "lmkit/text/unicode_class.hpp"
#include "lmkit/text/utf8.hpp"

namespace lmkit::text {

/// A normalisation step: text in, text out.
template <class T>
concept text_normalizer = requires(const T& step, std::string_view text) {
  { step(text) } -> std::convertible_to<std::string>;
};

namespace detail {

/// utf8proc_map with `options`; ill-formed input is a format_error naming `step`.
inline std::string utf8proc_transform(std::string_view text, int options, const char* step) {
  require_utf8(text, step);
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          utf8proc_ssize_t(text.size()), &out, utf8proc_option_t(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
  require<format_error>(n >= 0, step, ": ", n < 0 ? utf8proc_errmsg(n) : "");
  return std::string(reinterpret_cast<const char*>(out), std::size_t(n));
}

}  // namespace detail

/// Canonical composition (NFC).
struct nfc {
  std::string operator()(std::string_view text) const {
    return detail::utf8proc_transform(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE, "nfc");
  }
};

/// Compatibility composition (NFKC): ligatures, full-width forms, circled digits to plain ones.
struct nfkc {
  std::string operator()(std::string_view text) const {
    return detail::utf8proc_transform(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, "nfkc");
  }
};

/// Unicode full case folding ("Straße" and "STRASSE" both become "strasse"), the result in NFC.
struct case_fold {
  std::string operator()(std::string_view text) const {
    return detail::utf8proc_transform(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD, "case_fold");
  }
};

/// Removes accents: canonical decomposition, non-spacing marks (Mn) dropped, recomposition — as
/// BERT's and Hugging Face's StripAccents do. Spacing marks (Mc, e.g. Devanagari vowel signs) stay.
struct strip_accents {
  std::string operator()(std::string_view text) const {
    const std::string decomposed =
        detail::utf8proc_transform(text, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, "strip_accents");
    std::string kept;
    kept.reserve(decomposed.size());
    for (std::size_t i = 0; i < decomposed.size();) {
      const decoded_code_point c = decode_utf8(decomposed.data() + i);
      if (utf8proc_category(utf8proc_int32_t(c.value)) != UTF8PROC_CATEGORY_MN) kept.append(decomposed, i, c.size);
      i += c.size;
    }
    return detail::utf8proc_transform(kept, UTF8PROC_STABLE | UTF8PROC_COMPOSE, "strip_accents");
  }
};

/// Every run of white space (Unicode White_Space: spaces, tabs, line breaks, U+3000...) becomes one
/// space, or one newline if `keep_newlines` and the run held a line break; the ends are trimmed.
struct clean_whitespace {
  bool keep_newlines = false;
  std::string operator()(std::string_view text) const {
    require_utf8(text, "clean_whitespace");
    std::string out;
    out.reserve(text.size());
    bool in_space = false, saw_newline = false;
    for (std::size_t i = 0; i < text.size();) {
      const decoded_code_point c = decode_utf8(text.data() + i);
      if (unicode_class(c.value) & white_space) {
        in_space = true;
        saw_newline |= c.value == '\n' || c.value == '\r' || c.value == 0x2028 || c.value == 0x2029 || c.value == 0x85;
      } else {
        if (in_space && !out.empty()) out.push_back(keep_newlines && saw_newline ? '\n' : ' ');
        in_space = saw_newline = false;
        out.append(text, i, c.size);
      }
      i += c.size;
    }
    return out;
  }
};

/// Steps applied left to right. Each must be a text_normalizer.
template <class... Steps>
struct normalizer_chain {
  static_assert((text_normalizer<Steps> && ...),
                "every step of a normalizer_chain must be callable as std::string(std::string_view)");
  std::tuple<Steps...> steps;

  std::string operator()(std::string_view text) const {
    std::string current(text);
    std::apply([&](const auto&... step) { ((current = std::string(step(current))), ...); }, steps);
    return current;
  }
};

}  // namespace lmkit::text
