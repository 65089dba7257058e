// The Porter stemmer (M. F. Porter, "An algorithm for suffix stripping", Program 14(3), 1980),
// as the paper defines it: steps 1a-5b over a lower-case English word, each rule guarded by the
// measure m of the stem ([C](VC)^m[V]). Words of one or two letters are left alone, as in Porter's
// own implementation. The paper's step 2 has "abli -> able" (later versions changed it to
// "bli -> ble" and added "logi -> log"); this is the paper's.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "lmkit/core/error.hpp"
#include "lmkit/text/utf8.hpp"

namespace lmkit::text {

class porter_stemmer {
 public:
  /// The stem of a lower-case ASCII word (other input comes back unchanged).
  static std::string stem(std::string_view word) {
    std::string w(word);
    if (w.size() <= 2) return w;
    for (const char c : w)
      if (c < 'a' || c > 'z') return w;
    step1a(w);
    step1b(w);
    step1c(w);
    step2(w);
    step3(w);
    step4(w);
    step5(w);
    return w;
  }

 private:
  // A consonant is a letter other than a, e, i, o, u, and other than y preceded by a consonant.
  static bool consonant(const std::string& w, std::size_t i) {
    switch (w[i]) {
      case 'a': case 'e': case 'i': case 'o': case 'u': return false;
      case 'y': return i == 0 || !consonant(w, i - 1);
      default: return true;
    }
  }
  /// m of the stem w[0, length): the number of VC sequences.
  static int measure(const std::string& w, std::size_t length) {
    int m = 0;
    std::size_t i = 0;
    while (i < length && consonant(w, i)) ++i;
    while (i < length) {
      while (i < length && !consonant(w, i)) ++i;
      if (i >= length) break;
      while (i < length && consonant(w, i)) ++i;
      ++m;
    }
    return m;
  }
  static bool has_vowel(const std::string& w, std::size_t length) {
    for (std::size_t i = 0; i < length; ++i)
      if (!consonant(w, i)) return true;
    return false;
  }
  /// *d: the stem ends with a double consonant.
  static bool double_consonant(const std::string& w, std::size_t length) {
    return length >= 2 && w[length - 1] == w[length - 2] && consonant(w, length - 1);
  }
  /// *o: the stem ends consonant-vowel-consonant, the last consonant not w, x or y.
  static bool cvc(const std::string& w, std::size_t length) {
    if (length < 3 || !consonant(w, length - 1) || consonant(w, length - 2) || !consonant(w, length - 3)) return false;
    const char c = w[length - 1];
    return c != 'w' && c != 'x' && c != 'y';
  }
  static bool ends_with(const std::string& w, std::string_view suffix) { return w.size() >= suffix.size() && w.ends_with(suffix); }
  static void replace_end(std::string& w, std::size_t suffix_size, std::string_view with) {
    w.replace(w.size() - suffix_size, suffix_size, with.data(), with.size());
  }

  /// The rules of steps 2-4: the longest matching suffix decides; it is replaced if the stem's
  /// measure is above `min_m` (and `extra` allows it), otherwise the step does nothing.
  template <std::size_t N, class Extra>
  static void replace_longest(std::string& w, const std::array<std::pair<std::string_view, std::string_view>, N>& rules,
                              int min_m, Extra extra) {
    const std::pair<std::string_view, std::string_view>* best = nullptr;
    for (const auto& r : rules)
      if (ends_with(w, r.first) && (!best || r.first.size() > best->first.size())) best = &r;
    if (!best) return;
    const std::size_t stem = w.size() - best->first.size();
    if (measure(w, stem) > min_m && extra(w, stem, best->first)) replace_end(w, best->first.size(), best->second);
  }
  static constexpr auto always = [](const std::string&, std::size_t, std::string_view) { return true; };

  static void step1a(std::string& w) {
    if (ends_with(w, "sses")) replace_end(w, 4, "ss");
    else if (ends_with(w, "ies")) replace_end(w, 3, "i");
    else if (ends_with(w, "ss")) return;
    else if (ends_with(w, "s")) replace_end(w, 1, "");
  }
  static void step1b(std::string& w) {
    if (ends_with(w, "eed")) {
      if (measure(w, w.size() - 3) > 0) replace_end(w, 3, "ee");
      return;
    }
    std::size_t cut = 0;
    if (ends_with(w, "ed") && has_vowel(w, w.size() - 2)) cut = 2;
    else if (ends_with(w, "ing") && has_vowel(w, w.size() - 3)) cut = 3;
    if (cut == 0) return;
    replace_end(w, cut, "");
    if (ends_with(w, "at") || ends_with(w, "bl") || ends_with(w, "iz")) {
      w += 'e';
    } else if (double_consonant(w, w.size())) {
      const char last = w.back();
      if (last != 'l' && last != 's' && last != 'z') w.pop_back();
    } else if (measure(w, w.size()) == 1 && cvc(w, w.size())) {
      w += 'e';
    }
  }
  static void step1c(std::string& w) {
    if (ends_with(w, "y") && has_vowel(w, w.size() - 1)) w.back() = 'i';
  }
  static void step2(std::string& w) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 20> rules{{
        {"ational", "ate"}, {"tional", "tion"}, {"enci", "ence"}, {"anci", "ance"}, {"izer", "ize"},
        {"abli", "able"},   {"alli", "al"},     {"entli", "ent"}, {"eli", "e"},     {"ousli", "ous"},
        {"ization", "ize"}, {"ation", "ate"},   {"ator", "ate"},  {"alism", "al"},  {"iveness", "ive"},
        {"fulness", "ful"}, {"ousness", "ous"}, {"aliti", "al"},  {"iviti", "ive"}, {"biliti", "ble"},
    }};
    replace_longest(w, rules, 0, always);
  }
  static void step3(std::string& w) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> rules{{
        {"icate", "ic"}, {"ative", ""}, {"alize", "al"}, {"iciti", "ic"}, {"ical", "ic"}, {"ful", ""}, {"ness", ""},
    }};
    replace_longest(w, rules, 0, always);
  }
  static void step4(std::string& w) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 19> rules{{
        {"al", ""},  {"ance", ""}, {"ence", ""}, {"er", ""},  {"ic", ""},  {"able", ""}, {"ible", ""},
        {"ant", ""}, {"ement", ""}, {"ment", ""}, {"ent", ""}, {"ion", ""}, {"ou", ""},   {"ism", ""},
        {"ate", ""}, {"iti", ""},  {"ous", ""},  {"ive", ""}, {"ize", ""},
    }};
    // (m>1 and (*S or *T)) ION ->
    replace_longest(w, rules, 1, [](const std::string& s, std::size_t stem, std::string_view suffix) {
      return suffix != "ion" || (stem > 0 && (s[stem - 1] == 's' || s[stem - 1] == 't'));
    });
  }
  static void step5(std::string& w) {
    if (ends_with(w, "e")) {
      const std::size_t stem = w.size() - 1;
      const int m = measure(w, stem);
      if (m > 1 || (m == 1 && !cvc(w, stem))) w.pop_back();
    }
    if (measure(w, w.size()) > 1 && double_consonant(w, w.size()) && w.back() == 'l') w.pop_back();
  }
};

/// A normaliser step: every maximal run of lower-case ASCII letters is replaced by its stem; all
/// else (upper case, digits, other scripts) is kept. Case-fold first to stem every English word.
struct porter_stem {
  std::string operator()(std::string_view text) const {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
      std::size_t j = i;
      while (j < text.size() && text[j] >= 'a' && text[j] <= 'z') ++j;
      // A run that touches other letters (an upper-case or accented one) is part of a longer word.
      const bool whole_word = j > i && (i == 0 || !is_word_byte(text[i - 1])) && (j == text.size() || !is_word_byte(text[j]));
      if (j > i) {
        if (whole_word)
          out += porter_stemmer::stem(text.substr(i, j - i));
        else
          out.append(text.substr(i, j - i));
        i = j;
      } else {
        out.push_back(text[i++]);
      }
    }
    return out;
  }

 private:
  static bool is_word_byte(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || static_cast<unsigned char>(c) >= 0x80;
  }
};

}  // namespace lmkit::text
