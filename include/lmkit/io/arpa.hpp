// The ARPA back-off language model format (SRILM, KenLM): a \data\ header with the number of
// n-grams per order, then for each order a \N-grams: section of lines
//   log10-probability <TAB> w1 w2 .. wN [<TAB> log10-backoff]
// and \end\. The reader checks every count, field and number and names the file and line it
// stopped at; the writer writes atomically.
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "lmkit/core/atomic_file.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/float_text.hpp"
#include "lmkit/models/ngram/kneser_ney_external.hpp"
#include "lmkit/models/ngram/ngram_model.hpp"

namespace lmkit::io {

namespace arpa_detail {

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

inline bool parse_float(std::string_view text, float& out) {
  if (text.empty()) return false;
  const char* begin = text.data();
  if (*begin == '+') ++begin;
  const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

/// Splits on spaces and tabs.
inline std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace arpa_detail

/// Reads an ARPA model. `where` names the source in error messages.
inline ngram::ngram_model read_arpa(std::istream& in, const std::string& where = "ARPA input") {
  using namespace arpa_detail;
  std::string line;
  std::size_t line_number = 0;
  auto fail = [&](const std::string& what) -> void {
    throw format_error(lmkit::detail::concat(where, ":", line_number, ": ", what));
  };
  auto next_line = [&]() -> bool {
    if (!std::getline(in, line)) return false;
    ++line_number;
    return true;
  };
  // Header: skip anything before \data\ (SRILM writes comments there).
  bool found = false;
  while (next_line())
    if (trim(line) == "\\data\\") {
      found = true;
      break;
    }
  if (!found) fail("no \\data\\ line");
  std::vector<std::size_t> counts;
  while (next_line()) {
    const std::string_view t = trim(line);
    if (t.empty()) {
      if (!counts.empty()) break;
      continue;
    }
    if (t.substr(0, 6) != "ngram ") fail(lmkit::detail::concat("expected 'ngram N=count', found '", t, "'"));
    const auto eq = t.find('=');
    if (eq == std::string_view::npos) fail("'ngram' line without '='");
    std::size_t n = 0, count = 0;
    const auto order_text = trim(t.substr(6, eq - 6)), count_text = trim(t.substr(eq + 1));
    if (std::from_chars(order_text.data(), order_text.data() + order_text.size(), n).ec != std::errc() ||
        std::from_chars(count_text.data(), count_text.data() + count_text.size(), count).ec != std::errc())
      fail(lmkit::detail::concat("bad numbers in '", t, "'"));
    if (n != counts.size() + 1) fail(lmkit::detail::concat("expected the count of ", counts.size() + 1, "-grams, found ", n));
    counts.push_back(count);
  }
  if (counts.empty()) fail("no 'ngram N=count' lines after \\data\\");

  ngram::ngram_model model(counts.size());
  std::vector<ngram::word_id> ids;
  for (std::size_t n = 1; n <= counts.size(); ++n) {
    std::string header = "\\";  // built piecewise: g++ 12 warns falsely (-Wrestrict) on a + chain here
    header += std::to_string(n);
    header += "-grams:";
    while (next_line() && trim(line).empty()) {
    }
    if (!in || trim(line) != header) fail(lmkit::detail::concat("expected ", header));
    // The header's count is not trusted with memory: reserve a bounded amount, grow past it.
    model.table(n).reserve(std::min<std::size_t>(counts[n - 1], std::size_t{1} << 20));
    for (std::size_t i = 0; i < counts[n - 1]; ++i) {
      if (!next_line()) fail(lmkit::detail::concat("the file ends after ", i, " of ", counts[n - 1], " ", n, "-grams"));
      const auto f = fields(trim(line));
      if (f.size() != n + 1 && f.size() != n + 2)
        fail(lmkit::detail::concat("a ", n, "-gram line needs a probability, ", n, " words and an optional back-off; found ",
                            f.size(), " fields"));
      ngram::ngram_entry e;
      if (!parse_float(f[0], e.log_prob)) fail(lmkit::detail::concat("bad probability '", f[0], "'"));
      if (f.size() == n + 2 && !parse_float(f[n + 1], e.log_backoff)) fail(lmkit::detail::concat("bad back-off '", f[n + 1], "'"));
      if (e.log_prob > 0.0f) fail(lmkit::detail::concat("log10 probability ", e.log_prob, " is above 0"));
      ids.clear();
      for (std::size_t w = 1; w <= n; ++w) {
        if (n == 1) ids.push_back(model.vocab().insert(f[w]));
        else if (!model.vocab().contains(f[w])) fail(lmkit::detail::concat("word '", f[w], "' is not among the unigrams"));
        else ids.push_back(model.vocab().find(f[w]));
      }
      if (model.find(ids)) fail("duplicate n-gram");
      model.set(ids, e);
    }
  }
  while (next_line() && trim(line).empty()) {
  }
  if (!in || trim(line) != "\\end\\") fail("expected \\end\\ after the last section");
  if (!model.find(std::array<ngram::word_id, 1>{ngram::unk_id})) {
    // Models built with a closed vocabulary have no <unk>; an OOV word then gets probability 0
    // (KenLM's convention of log10 = -100 keeps the arithmetic finite).
    model.set(std::array<ngram::word_id, 1>{ngram::unk_id}, {-100.0f, 0.0f});
  }
  return model;
}

inline ngram::ngram_model read_arpa(const std::filesystem::path& path) {
  std::ifstream in(path);
  require<io_error>(static_cast<bool>(in), "read_arpa: cannot open ", path.string());
  return read_arpa(in, path.string());
}

namespace arpa_detail {

/// The rows of `table` in the order of their words (lexicographic by id). The first two ids are
/// packed into a key that decides most comparisons without reading the words again.
inline std::vector<std::size_t> sorted_rows(const ngram::ngram_table<ngram::ngram_entry>& table) {
  struct keyed_row {
    std::uint64_t key;
    std::size_t row;
  };
  const std::size_t n = table.order();
  std::vector<keyed_row> keyed(table.size());
  for (std::size_t i = 0; i < keyed.size(); ++i) {
    const auto words = table.words(i);
    keyed[i] = {std::uint64_t{words[0]} << 32 | (n > 1 ? words[1] : 0u), i};
  }
  std::sort(keyed.begin(), keyed.end(), [&](const keyed_row& a, const keyed_row& b) {
    if (a.key != b.key || n <= 2) return a.key < b.key;
    const auto x = table.words(a.row).subspan(2), y = table.words(b.row).subspan(2);
    return std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end());
  });
  std::vector<std::size_t> rows(keyed.size());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = keyed[i].row;
  return rows;
}

/// ARPA text made piece by piece: the counts, then the n-grams of each order in turn (a section
/// header when the order changes), handed to `sink` in pieces of about a megabyte.
template <class Sink>
class arpa_text {
 public:
  arpa_text(const ngram::vocabulary& vocab, Sink& sink) : vocab_(vocab), sink_(sink) {}

  void counts(std::span<const std::size_t> per_order) {
    order_ = per_order.size();
    text_ += "\\data\\\n";
    for (std::size_t n = 1; n <= order_; ++n) text_ += "ngram " + std::to_string(n) + "=" + std::to_string(per_order[n - 1]) + "\n";
  }

  /// One n-gram line; the highest order's lines have no back-off.
  void entry(std::size_t n, std::span<const ngram::word_id> words, float log_prob, float log_backoff) {
    while (section_ < n) text_ += "\n\\" + std::to_string(++section_) + "-grams:\n";  // empty orders too
    append_shortest(text_, log_prob);
    text_ += '\t';
    for (std::size_t w = 0; w < words.size(); ++w) {
      if (w) text_ += ' ';
      text_ += vocab_.word(words[w]);
    }
    if (n < order_) {
      text_ += '\t';
      append_shortest(text_, log_backoff);
    }
    text_ += '\n';
    if (text_.size() >= (std::size_t{1} << 20)) {
      sink_(std::string_view(text_));
      text_.clear();
    }
  }

  void finish() {
    while (section_ < order_) text_ += "\n\\" + std::to_string(++section_) + "-grams:\n";
    text_ += "\n\\end\\\n";
    sink_(std::string_view(text_));
    text_.clear();
  }

 private:
  const ngram::vocabulary& vocab_;
  Sink& sink_;
  std::string text_;
  std::size_t order_ = 0, section_ = 0;
};

/// The ARPA text of `model`, handed to `sink` in pieces of about a megabyte.
template <class Sink>
void write_arpa_text(const ngram::ngram_model& model, Sink&& sink) {
  arpa_text<std::remove_reference_t<Sink>> text(model.vocab(), sink);
  std::vector<std::size_t> sizes;
  for (std::size_t n = 1; n <= model.order(); ++n) sizes.push_back(model.table(n).size());
  text.counts(sizes);
  for (std::size_t n = 1; n <= model.order(); ++n) {
    const auto& table = model.table(n);
    for (const std::size_t row : sorted_rows(table))
      text.entry(n, table.words(row), table.value(row).log_prob, table.value(row).log_backoff);
  }
  text.finish();
}

}  // namespace arpa_detail

/// Writes the model in ARPA format: n-grams of each order sorted by their words' ids, numbers in
/// the shortest form that reads back as the same float.
inline void write_arpa(const ngram::ngram_model& model, std::ostream& out) {
  arpa_detail::write_arpa_text(model, [&](std::string_view piece) {
    out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
  });
}

inline void write_arpa(const ngram::ngram_model& model, const std::filesystem::path& path) {
  atomic_file_writer writer(path);
  arpa_detail::write_arpa_text(model, [&](std::string_view piece) { writer.write(piece); });
  writer.commit();
}

/// Estimates an interpolated modified Kneser-Ney model of `order` from `lines` within a memory
/// budget (ngram::estimate_kneser_ney_external) and writes it to `out` as ARPA text as it goes;
/// `stage(ngram::external_estimate_stage)` hears of each pass. Gives the same text as
/// write_arpa(estimate_kneser_ney(lines, order, options)).
template <class Stage>
void write_arpa_estimated_externally(std::istream& lines, std::ostream& out, std::size_t order,
                                     const ngram::kneser_ney_options& options,
                                     const ngram::external_estimate_options& external, Stage&& stage) {
  ngram::vocabulary vocab;
  auto sink = [&](std::string_view piece) { out.write(piece.data(), static_cast<std::streamsize>(piece.size())); };
  arpa_detail::arpa_text<decltype(sink)> text(vocab, sink);
  ngram::estimate_kneser_ney_external(
      lines, order, vocab, options, external, [&](std::span<const std::size_t> sizes) { text.counts(sizes); },
      [&](std::size_t n, std::span<const ngram::word_id> words, float log_prob, float log_backoff) {
        text.entry(n, words, log_prob, log_backoff);
      },
      stage);
  text.finish();
}

}  // namespace lmkit::io
