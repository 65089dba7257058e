// Interpolated modified Kneser-Ney estimation within a memory budget, as lmplz -S does it: the
// same numbers as estimate_kneser_ney (kneser_ney.hpp, which explains the estimate), computed in
// streaming passes over n-grams sorted on disk (gram_sorter.hpp) instead of hash tables in memory.
// Only the vocabulary and the followers of one context at a time are held in memory.
//
//  A. count:       order-N n-grams and the shorter <s>-initial ones, sorted by suffix;
//  B. adjust:      order n, in suffix order, gives order n - 1's continuation counts (the n-grams
//                  that share a suffix are adjacent); counts of adjusted counts -> discounts;
//  C. contexts:    each order re-sorted by prefix, so that a context's followers are adjacent:
//                  their sum and N1 / N2 / N3+ give the context's gamma;
//  D. interpolate: orders from 1 up, each in suffix order, joined with the order below (also in
//                  suffix order) for p(w | h');
//  E. write:       each order in the ARPA order, joined with its gammas as the next order's
//                  contexts (the back-offs).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/models/ngram/gram_sorter.hpp"
#include "lmkit/models/ngram/kneser_ney.hpp"
#include "lmkit/models/ngram/vocabulary.hpp"

namespace lmkit::ngram {

/// Where and within how much memory an external estimate runs.
struct external_estimate_options {
  std::size_t memory_bytes = std::size_t{1} << 30;  // shared by the sort buffers
  std::filesystem::path temp_folder = std::filesystem::temp_directory_path();
};

/// What an external estimate reports as it goes (for a progress line).
struct external_estimate_stage {
  const char* name;
  std::size_t order;
};

/// Estimates an interpolated modified Kneser-Ney model of `order` from `lines` (one sentence per
/// line, as add_line of kneser_ney_counter takes them) and hands it out in the ARPA order:
/// `counts(std::span<const std::size_t>)` once (n-grams per order), then for each order from 1 and
/// each n-gram in the order of its word ids `entry(n, words, log10 p, log10 backoff)` (back-off 0
/// where there is none). `vocab` receives the words. `stage(external_estimate_stage)` is called
/// as each pass starts.
template <class Counts, class Entry, class Stage>
void estimate_kneser_ney_external(std::istream& lines, std::size_t order, vocabulary& vocab,
                                  const kneser_ney_options& options, const external_estimate_options& external,
                                  Counts&& counts, Entry&& entry, Stage&& stage) {
  require<argument_error>(order >= 1 && order <= max_order, "kneser_ney: order must be 1 to ", max_order, ", got ", order);
  require<argument_error>(std::filesystem::is_directory(external.temp_folder), "kneser_ney: temporary folder ",
                          external.temp_folder.string(), " does not exist");
  // Each sorter may hold this much; at most order + 4 hold memory at once (the others are sealed).
  const std::size_t share = std::max<std::size_t>(external.memory_bytes / (order + 4), std::size_t{1} << 16);
  auto sorter = [&](std::size_t n, gram_order o, bool combine) {
    return std::make_unique<gram_sorter>(n, o, share, external.temp_folder, combine);
  };
  using sorters = std::vector<std::unique_ptr<gram_sorter>>;

  // A. Counts: S[n - 1] holds order n in suffix order (order N's n-grams; <s>-initial shorter ones).
  stage(external_estimate_stage{"counting", order});
  sorters by_suffix(order);
  for (std::size_t n = 1; n <= order; ++n) by_suffix[n - 1] = sorter(n, gram_order::suffix, true);
  {
    std::string line;
    std::vector<word_id> ids;
    std::size_t line_number = 0;
    while (std::getline(lines, line)) {
      sentence_ids(line, ++line_number, vocab, ids);
      for_each_counted_gram(ids, order, [&](std::span<const word_id> gram) { by_suffix[gram.size() - 1]->add(gram.data(), 1.0); });
    }
  }
  for (auto& s : by_suffix) s->seal();

  // B. Adjusted counts, top down, each order re-sorted by prefix into P[n - 1].
  std::vector<std::size_t> sizes(order);
  std::vector<kneser_ney_discounts> discounts(order);
  sorters by_prefix(order);
  gram_record r;
  for (std::size_t n = order; n >= 1; --n) {
    stage(external_estimate_stage{"adjusting counts", n});
    by_prefix[n - 1] = sorter(n, gram_order::prefix, false);
    std::array<std::uint64_t, 5> t{};
    bool seen_unk = false, seen_bos = false;
    while (by_suffix[n - 1]->next(r)) {
      const auto a = static_cast<std::uint64_t>(r.a);
      if (a >= 1 && a <= 4) ++t[a];
      ++sizes[n - 1];
      by_prefix[n - 1]->add(r.words.data(), r.a);
      if (n >= 2 && r.words[1] != bos_id) by_suffix[n - 2]->add(r.words.data() + 1, 1.0);
      if (n == 1) seen_unk |= r.words[0] == unk_id, seen_bos |= r.words[0] == bos_id;
    }
    by_suffix[n - 1].reset();
    if (n == 1)  // <unk> and <s> are unigrams with adjusted count 0
      for (const auto& [seen, w] : {std::pair{seen_unk, unk_id}, std::pair{seen_bos, bos_id}})
        if (!seen) {
          by_prefix[0]->add(&w, 0.0);
          ++sizes[0];
        }
    by_prefix[n - 1]->seal();
    if (n >= 2) by_suffix[n - 2]->seal();
    discounts[n - 1] = compute_discounts(t, n, options);
  }
  counts(std::span<const std::size_t>(sizes));

  // C. Per context: the discounted share of each follower and the context's gamma. Q[n - 1] gets
  // order n in suffix order with a = discounted share, b = gamma(context); G[n - 1] the gammas of
  // order n + 1's contexts (order-n n-grams) in prefix order.
  sorters interpolation(order), gammas(order);
  std::vector<gram_record> followers;
  for (std::size_t n = 1; n <= order; ++n) {
    stage(external_estimate_stage{"context sums", n});
    interpolation[n - 1] = sorter(n, gram_order::suffix, false);
    if (n >= 2) gammas[n - 2] = sorter(n - 1, gram_order::prefix, false);
    const auto& d = discounts[n - 1];
    auto flush = [&] {
      if (followers.empty()) return;
      double denominator = 0;
      std::array<std::uint64_t, 4> with_count{};
      for (const gram_record& f : followers) {
        denominator += f.a;
        const auto a = static_cast<std::uint64_t>(f.a);
        if (a > 0) ++with_count[std::min<std::uint64_t>(a, 3)];
      }
      // The same expression, in the same types, as estimate_kneser_ney's gamma.
      const double gamma = (d.amount[1] * with_count[1] + d.amount[2] * with_count[2] + d.amount[3] * with_count[3]) / denominator;
      for (const gram_record& f : followers)
        interpolation[n - 1]->add(f.words.data(), d.apply(static_cast<std::uint64_t>(f.a)) / denominator, gamma);
      if (n >= 2) gammas[n - 2]->add(followers.front().words.data(), gamma);
      followers.clear();
    };
    while (by_prefix[n - 1]->next(r)) {
      if (!followers.empty() && compare_grams(followers.front().words.data(), r.words.data(), n - 1, gram_order::prefix) != 0)
        flush();
      followers.push_back(r);
    }
    flush();
    by_prefix[n - 1].reset();
    interpolation[n - 1]->seal();
    if (n >= 2) gammas[n - 2]->seal();
  }

  // D. Probabilities, lower orders first: p = share + gamma p(suffix), the suffix's p read from the
  // order below in the same (suffix) order. A[n - 1] keeps p for order n + 1, L[n - 1] log10 p in
  // the ARPA order.
  sorters probabilities(order), arpa(order);
  const double uniform = 1.0 / static_cast<double>(sizes[0] - 1);  // the vocabulary less <s>
  for (std::size_t n = 1; n <= order; ++n) {
    stage(external_estimate_stage{"interpolating", n});
    if (n < order) probabilities[n - 1] = sorter(n, gram_order::suffix, false);
    arpa[n - 1] = sorter(n, gram_order::prefix, false);
    gram_record lower;
    bool have_lower = false;
    while (interpolation[n - 1]->next(r)) {
      double p_lower = uniform;
      if (n >= 2) {
        // Every suffix is in the order below, and both streams ascend by it.
        while (!have_lower || compare_grams(lower.words.data(), r.words.data() + 1, n - 1, gram_order::suffix) < 0) {
          have_lower = probabilities[n - 2]->next(lower);
          require<argument_error>(have_lower, "kneser_ney: the ", n - 1, "-gram suffix of a ", n, "-gram is missing");
        }
        p_lower = lower.a;
      }
      const double p = r.a + r.b * p_lower;
      if (n < order) probabilities[n - 1]->add(r.words.data(), p);
      arpa[n - 1]->add(r.words.data(), p);
    }
    interpolation[n - 1].reset();
    if (n >= 2) probabilities[n - 2].reset();
    if (n < order) probabilities[n - 1]->seal();
    arpa[n - 1]->seal();
  }

  // E. Out in the ARPA order, each n-gram with the gamma of the context it is for order n + 1.
  for (std::size_t n = 1; n <= order; ++n) {
    stage(external_estimate_stage{"writing", n});
    gram_record g;
    bool have_gamma = false, gammas_left = n < order;
    while (arpa[n - 1]->next(r)) {
      float log_backoff = 0.0f;
      if (n < order) {
        while (gammas_left && (!have_gamma || compare_grams(g.words.data(), r.words.data(), n, gram_order::prefix) < 0)) {
          have_gamma = gammas[n - 1]->next(g);
          gammas_left = have_gamma;
        }
        if (have_gamma && compare_grams(g.words.data(), r.words.data(), n, gram_order::prefix) == 0)
          log_backoff = static_cast<float>(std::log10(g.a));
      }
      // <s> is never predicted; lmplz writes its probability as log10 1.
      const float log_prob = n == 1 && r.words[0] == bos_id ? 0.0f : static_cast<float>(std::log10(r.a));
      entry(n, std::span<const word_id>(r.words.data(), n), log_prob, log_backoff);
    }
    arpa[n - 1].reset();
    if (n < order) gammas[n - 1].reset();
  }
}

}  // namespace lmkit::ngram
