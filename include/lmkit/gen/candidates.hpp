// The working set a sampler chain narrows down: the tokens still in play, each with its logit and,
// once normalised, its probability. It starts as a view of the model's logits (no copy: at a
// vocabulary of 200k, copying 800 KB would cost more than the whole typical chain) and stays that
// way while the parts only touch a few tokens (penalties, logit bias, bans: kept as a short list of
// edits, sorted by id). The first part that needs a set of tokens (top-k, min-p, ...) turns it into
// a sparse list of (id, logit, prob). Flags say whether that list is sorted (by logit, descending)
// and normalised, so that top-k, top-p and min-p one after another do not sort or exponentiate twice.
//
// Order of candidates everywhere: higher logit first, and among equal logits the lower id first.
// So ties are broken the same way by greedy, top-k and the cut points of top-p / typical-p.
//
// The scans over the dense logits use xsimd at the build's instruction set: they are memory-bound
// single passes (a max, a threshold), for which the build's baseline vectors suffice.
#pragma once

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/simd/transform.hpp"

namespace lmkit::gen {

/// One token still in play.
struct candidate {
  token_id id = 0;
  float logit = 0.0f;
  float prob = 0.0f;  // meaningful only while the set is normalised
};

/// The order of candidates: higher logit first, then lower id.
inline bool ranks_before(const candidate& a, const candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

class candidates {
 public:
  static constexpr float minus_infinity = -std::numeric_limits<float>::infinity();

  /// Starts a new token: a view of `logits` (kept by reference until the next reset). Throws
  /// argument_error on empty logits, and on NaN or +inf with the position. -inf is allowed: a token
  /// the model masks out, treated as banned.
  void reset(std::span<const float> logits) {
    require<argument_error>(!logits.empty(), "sample: the logits are empty (a vocabulary of 0 tokens)");
    require<argument_error>(logits.size() <= std::numeric_limits<token_id>::max(), "sample: ", logits.size(),
                            " logits are more than token_id can number");
    check_finite(logits, "sample: the logit at position ");
    source_ = logits;
    vocabulary_ = logits.size();
    edits_.clear();
    items_.clear();
    dense_ = true;
    sorted_ = normalised_ = false;
  }

  std::size_t vocabulary() const { return vocabulary_; }
  /// True while the set is every token of the vocabulary (a view of the logits plus edits).
  bool is_dense() const { return dense_; }
  bool is_sorted() const { return !dense_ && sorted_; }
  bool is_normalised() const { return !dense_ && normalised_; }
  /// Tokens in play (while dense: the vocabulary, masked tokens included).
  std::size_t size() const { return dense_ ? vocabulary_ : items_.size(); }

  /// The sparse list (made from the dense set first if need be: every token with a finite logit).
  std::span<candidate> items() {
    make_sparse();
    return items_;
  }

  /// The sparse list as it is (empty while dense): after a draw, the tokens it chose from.
  std::span<const candidate> sparse_items() const {
    return dense_ ? std::span<const candidate>{} : std::span<const candidate>(items_);
  }

  /// Call after writing logits through items(): drops the sorted and normalised flags.
  void logits_changed() {
    sorted_ = normalised_ = false;
  }

  /// logit[ids[j]] = fn(j, logit[ids[j]]) for the tokens still in play. `ids` sorted ascending,
  /// unique, each inside the vocabulary. A result of -inf removes the token.
  template <class Fn>
  void adjust(std::span<const token_id> ids, Fn&& fn) {
    if (ids.empty()) return;
    require<argument_error>(ids.back() < vocabulary_, "sample: token id ", ids.back(), " is outside the vocabulary of ",
                            vocabulary_, " tokens");
    if (dense_) {
      for (std::size_t j = 0; j < ids.size(); ++j) set_dense_logit(ids[j], fn(j, dense_logit(ids[j])));
      return;
    }
    for (candidate& c : items_) {
      const auto at = std::lower_bound(ids.begin(), ids.end(), c.id);
      if (at != ids.end() && *at == c.id) c.logit = fn(static_cast<std::size_t>(at - ids.begin()), c.logit);
    }
    std::erase_if(items_, [](const candidate& c) { return c.logit == minus_infinity; });
    sorted_ = normalised_ = false;
  }

  /// Keeps the k best tokens (all of them if k >= size()). The result is not sorted.
  void keep_top(std::size_t k) {
    k = std::max<std::size_t>(k, 1);
    if (dense_) {
      if (k >= vocabulary_) return;
      if (k == 1) select_best_dense();
      else select_top_dense(k);
      return;
    }
    if (k >= items_.size()) return;
    if (!sorted_) {
      std::nth_element(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(k - 1), items_.end(), ranks_before);
    }
    items_.resize(k);
    normalised_ = false;
  }

  /// Keeps only the best token (greedy).
  void keep_best() { keep_top(1); }

  /// Keeps the tokens whose logit is >= threshold, and at least the `min_keep` best ones.
  void keep_at_least(float threshold, std::size_t min_keep) {
    min_keep = std::max<std::size_t>(min_keep, 1);
    if (dense_) {
      gather_dense(threshold);
      if (items_.size() < min_keep) {  // too few above: the min_keep best (a superset of these)
        reset_dense_view();
        select_top_dense(min_keep);
      }
      return;
    }
    const std::size_t above = static_cast<std::size_t>(
        std::count_if(items_.begin(), items_.end(), [&](const candidate& c) { return c.logit >= threshold; }));
    if (above >= min_keep) {
      if (above == items_.size()) return;
      if (sorted_) {
        items_.resize(above);  // sorted: the ones above are a prefix
      } else {
        std::erase_if(items_, [&](const candidate& c) { return c.logit < threshold; });
      }
      normalised_ = false;
    } else {
      keep_top(min_keep);
    }
  }

  /// The largest logit in play (-inf if every token is banned).
  float max_logit() {
    if (dense_) return dense_max();
    if (items_.empty()) return minus_infinity;
    if (sorted_) return items_.front().logit;
    float m = minus_infinity;
    for (const candidate& c : items_) m = std::max(m, c.logit);
    return m;
  }

  /// Sorts the sparse list by rank (a no-op when it already is).
  void sort() {
    make_sparse();
    if (!sorted_) std::sort(items_.begin(), items_.end(), ranks_before);
    sorted_ = true;
  }

  /// Sorts at least the best tokens whose probability sums reach `mass` (and at least `min_count`
  /// of them) and returns how many of the first tokens are sorted: a partial sort in growing
  /// prefixes, so that top-p over a whole vocabulary does not sort it all.
  std::size_t sort_until_mass(double mass, std::size_t min_count) {
    normalise();
    if (sorted_) return items_.size();
    std::size_t m = std::min(items_.size(), std::max<std::size_t>(64, min_count));
    for (;;) {
      std::partial_sort(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(m), items_.end(), ranks_before);
      if (m == items_.size()) {
        sorted_ = true;
        return m;
      }
      double sum = 0.0;
      for (std::size_t i = 0; i < m; ++i) sum += items_[i].prob;
      if (sum >= mass) return m;
      m = std::min(items_.size(), m * 8);
    }
  }

  /// Orders the sparse list by key(candidate) ascending (computed once per token), ties by rank.
  /// For orders other than by logit (typical-p's distance from the entropy).
  template <class Key>
  void sort_by(Key&& key) {
    make_sparse();
    keyed_.resize(items_.size());
    for (std::size_t i = 0; i < items_.size(); ++i) keyed_[i] = {key(items_[i]), items_[i]};
    std::sort(keyed_.begin(), keyed_.end(), [](const auto& a, const auto& b) {
      return a.first < b.first || (a.first == b.first && ranks_before(a.second, b.second));
    });
    for (std::size_t i = 0; i < items_.size(); ++i) items_[i] = keyed_[i].second;
    sorted_ = false;
  }

  /// Keeps the first n items in their current order (after sort() or sort_until_mass()).
  void truncate(std::size_t n) {
    make_sparse();
    if (n >= items_.size()) return;
    items_.resize(n);
    normalised_ = false;
  }

  /// prob = softmax(logit) over the tokens in play (computed once until the logits change).
  void normalise() {
    make_sparse();
    if (normalised_) return;
    const float m = max_logit();
    double sum = 0.0;
    for (candidate& c : items_) {
      c.prob = std::exp(c.logit - m);
      sum += c.prob;
    }
    const float inverse = static_cast<float>(1.0 / sum);
    for (candidate& c : items_) c.prob *= inverse;
    normalised_ = true;
  }

  /// logit /= t for every token in play (t > 0 keeps the order). While dense, into a copy.
  void divide_logits(float t) {
    if (dense_) {
      transform([t](auto x) { return x / decltype(x)(t); });
      return;
    }
    for (candidate& c : items_) c.logit /= t;
    normalised_ = false;
  }

  /// logit = f(logit) for every token in play, with f an xsimd element-wise functor. While dense,
  /// the logits are copied once into an owned buffer and transformed there.
  template <simd::elementwise_functor F>
  void transform(const F& f) {
    if (dense_) {
      if (source_.data() != owned_.data()) {  // not already our copy (a second transform)
        owned_.resize(vocabulary_);
        std::copy(source_.begin(), source_.end(), owned_.begin());
      }
      for (const auto& [id, logit] : edits_) owned_[id] = logit;
      simd::transform(owned_, owned_, f);
      check_finite(owned_, "sample: after a logit transform, the logit of token ");
      source_ = owned_;
      edits_.clear();
      return;
    }
    values_.resize(items_.size());
    for (std::size_t i = 0; i < items_.size(); ++i) values_[i] = items_[i].logit;
    simd::transform(values_, values_, f);
    for (std::size_t i = 0; i < items_.size(); ++i) {
      require<argument_error>(!std::isnan(values_[i]) && values_[i] != -minus_infinity,
                              "sample: after a logit transform, the logit of token ", items_[i].id, " is ", values_[i]);
      items_[i].logit = values_[i];
    }
    std::erase_if(items_, [](const candidate& c) { return c.logit == minus_infinity; });
    sorted_ = normalised_ = false;
  }

  /// The final draw: one token from softmax over the tokens in play. Always takes exactly one
  /// uniform_double from `rng` (also when one token is left), so that the stream's position after
  /// n tokens is the same whatever the chain. Throws argument_error when no token is left.
  token_id draw(philox& rng) {
    const double u = rng.uniform_double();
    if (dense_) return draw_dense(u);
    require<argument_error>(!items_.empty(), "sample: all ", vocabulary_,
                            " tokens are banned or have a logit of -inf: there is nothing to sample");
    if (items_.size() == 1) return items_.front().id;
    normalise();
    double total = 0.0;
    for (const candidate& c : items_) total += c.prob;
    const double target = u * total;
    double cumulative = 0.0;
    for (const candidate& c : items_) {
      cumulative += c.prob;
      if (target < cumulative) return c.id;
    }
    for (auto c = items_.rbegin(); c != items_.rend(); ++c)  // rounding left the target at the very end
      if (c->prob > 0.0f) return c->id;
    return items_.back().id;
  }

  /// Scratch space for the parts (so that they stay stateless and allocate nothing per token).
  std::vector<token_id>& scratch_ids() { return scratch_ids_; }
  std::vector<std::uint32_t>& scratch_counts() { return scratch_counts_; }

 private:
  using batch = xsimd::batch<float>;
  static constexpr std::size_t lanes = batch::size;

  /// The largest of p[begin, end), with four independent accumulators: one would wait on the
  /// latency of each max (4 cycles) instead of the loads.
  static float range_max(const float* p, std::size_t begin, std::size_t end) {
    std::size_t i = begin;
    float m = minus_infinity;
    if (end - begin >= 4 * lanes) {
      batch m0(minus_infinity), m1(minus_infinity), m2(minus_infinity), m3(minus_infinity);
      for (; i + 4 * lanes <= end; i += 4 * lanes) {
        m0 = xsimd::max(m0, batch::load_unaligned(p + i));
        m1 = xsimd::max(m1, batch::load_unaligned(p + i + lanes));
        m2 = xsimd::max(m2, batch::load_unaligned(p + i + 2 * lanes));
        m3 = xsimd::max(m3, batch::load_unaligned(p + i + 3 * lanes));
      }
      alignas(64) float lane[lanes];
      xsimd::max(xsimd::max(m0, m1), xsimd::max(m2, m3)).store_aligned(lane);
      for (float v : lane) m = std::max(m, v);
    }
    for (; i < end; ++i) m = std::max(m, p[i]);
    return m;
  }

  /// Throws, naming the first position, if any logit is NaN or +inf (-inf is allowed). One pass
  /// with two running maxima (+inf) and two NaN masks (x != x).
  static void check_finite(std::span<const float> x, const char* what) {
    const float* p = x.data();
    const std::size_t n = x.size();
    std::size_t i = 0;
    batch h0(minus_infinity), h1(minus_infinity);
    auto nan0 = h0 != h0, nan1 = nan0;
    for (; i + 2 * lanes <= n; i += 2 * lanes) {
      const batch a = batch::load_unaligned(p + i), b = batch::load_unaligned(p + i + lanes);
      h0 = xsimd::max(h0, a);
      h1 = xsimd::max(h1, b);
      nan0 = nan0 | (a != a);
      nan1 = nan1 | (b != b);
    }
    bool bad = xsimd::any(nan0 | nan1) || xsimd::any(xsimd::max(h0, h1) == batch(-minus_infinity));
    for (; i < n && !bad; ++i) bad = std::isnan(p[i]) || p[i] == -minus_infinity;
    if (!bad) return;
    for (std::size_t j = 0; j < n; ++j) {
      require<argument_error>(!std::isnan(p[j]), what, j, " is NaN");
      require<argument_error>(p[j] != -minus_infinity, what, j, " is +inf");
    }
  }

  // ---- the dense set: source_ with edits_ (sorted by id) on top ----

  float dense_logit(token_id id) const {
    const auto at = std::lower_bound(edits_.begin(), edits_.end(), id, [](const auto& e, token_id i) { return e.first < i; });
    return at != edits_.end() && at->first == id ? at->second : source_[id];
  }

  void set_dense_logit(token_id id, float logit) {
    const auto at = std::lower_bound(edits_.begin(), edits_.end(), id, [](const auto& e, token_id i) { return e.first < i; });
    if (at != edits_.end() && at->first == id) at->second = logit;
    else edits_.insert(at, {id, logit});
  }

  /// fn(begin, end) over the runs of ids that carry no edit, in ascending order.
  template <class Fn>
  void for_each_run(Fn&& fn) const {
    std::size_t begin = 0;
    for (const auto& e : edits_) {
      if (e.first > begin) fn(begin, static_cast<std::size_t>(e.first));
      begin = e.first + 1;
    }
    if (begin < vocabulary_) fn(begin, vocabulary_);
  }

  float dense_max() const {
    float m = minus_infinity;
    for_each_run([&](std::size_t begin, std::size_t end) { m = std::max(m, range_max(source_.data(), begin, end)); });
    for (const auto& e : edits_) m = std::max(m, e.second);
    return m;
  }

  /// items_ = the best token (greedy): the largest logit, the lowest id among equals. Two passes,
  /// a max and a search for its first position, both vector-wide; none if all are banned.
  void select_best_dense() {
    items_.clear();
    const float m = dense_max();
    dense_ = false;
    sorted_ = normalised_ = false;
    if (m == minus_infinity) return;
    std::size_t best = vocabulary_;
    const float* p = source_.data();
    for_each_run([&](std::size_t begin, std::size_t end) {
      if (best != vocabulary_) return;
      std::size_t i = begin;
      for (; i + lanes <= end; i += lanes)
        if (xsimd::any(batch::load_unaligned(p + i) == batch(m))) break;
      for (; i < end; ++i)
        if (p[i] == m) {
          best = i;
          return;
        }
    });
    for (const auto& [id, logit] : edits_)
      if (logit == m && id < best) best = id;
    items_.push_back({static_cast<token_id>(best), m, 1.0f});
    sorted_ = normalised_ = true;
  }

  /// items_ = the tokens whose logit is >= threshold (and > -inf), in id order.
  void gather_dense(float threshold) {
    items_.clear();
    const float* p = source_.data();
    const bool all_finite = threshold == minus_infinity;
    auto keep = [&](float v) { return all_finite ? v > minus_infinity : v >= threshold; };
    std::size_t next_edit = 0;
    for_each_run([&](std::size_t begin, std::size_t end) {
      // the edits before this run, in id order
      while (next_edit < edits_.size() && edits_[next_edit].first < begin) {
        const auto& e = edits_[next_edit++];
        if (keep(e.second)) items_.push_back({e.first, e.second, 0.0f});
      }
      std::size_t i = begin;
      const batch t(all_finite ? minus_infinity : threshold);
      for (; i + lanes <= end; i += lanes) {
        const batch v = batch::load_unaligned(p + i);
        if (!xsimd::any(all_finite ? v > t : v >= t)) continue;
        for (std::size_t l = 0; l < lanes; ++l)
          if (keep(p[i + l])) items_.push_back({static_cast<token_id>(i + l), p[i + l], 0.0f});
      }
      for (; i < end; ++i)
        if (keep(p[i])) items_.push_back({static_cast<token_id>(i), p[i], 0.0f});
    });
    for (; next_edit < edits_.size(); ++next_edit) {
      const auto& e = edits_[next_edit];
      if (keep(e.second)) items_.push_back({e.first, e.second, 0.0f});
    }
    dense_ = false;
    sorted_ = normalised_ = false;
  }

  /// items_ = the k best tokens with a finite logit. One pass with a rising threshold: a token
  /// enters a buffer only if it beats the k-th best seen so far; when the buffer is full it is cut
  /// back to k (nth_element) and the threshold rises. Vectors whose lanes all fall below the
  /// threshold cost one compare; with k << vocabulary that is almost all of them.
  void select_top_dense(std::size_t k) {
    items_.clear();
    // A small buffer keeps the threshold close to the running k-th best (each cut is an
    // nth_element over ~2k tokens); a large one would admit a long tail under a stale threshold.
    const std::size_t capacity = std::max<std::size_t>(2 * k, k + 64);
    items_.reserve(capacity + 4 * lanes + edits_.size());
    float threshold = minus_infinity;  // admit strictly above: ties with higher ids rank after
    auto compact = [&] {
      std::nth_element(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(k - 1), items_.end(), ranks_before);
      items_.resize(k);
      threshold = items_[k - 1].logit;  // the k-th best: every kept one ranks before it
    };
    const float* p = source_.data();
    for_each_run([&](std::size_t begin, std::size_t end) {
      std::size_t i = begin;
      for (; i + 4 * lanes <= end; i += 4 * lanes) {  // four vectors per branch
        const batch t(threshold);
        if (!xsimd::any((batch::load_unaligned(p + i) > t) | (batch::load_unaligned(p + i + lanes) > t) |
                        (batch::load_unaligned(p + i + 2 * lanes) > t) | (batch::load_unaligned(p + i + 3 * lanes) > t)))
          continue;
        for (std::size_t l = 0; l < 4 * lanes; ++l)
          if (p[i + l] > threshold) items_.push_back({static_cast<token_id>(i + l), p[i + l], 0.0f});
        if (items_.size() >= capacity) compact();
      }
      for (; i < end; ++i)
        if (p[i] > threshold) items_.push_back({static_cast<token_id>(i), p[i], 0.0f});
      if (items_.size() >= capacity) compact();
    });
    for (const auto& [id, logit] : edits_)
      if (logit > minus_infinity) items_.push_back({id, logit, 0.0f});
    if (items_.size() > k) {
      std::nth_element(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(k - 1), items_.end(), ranks_before);
      items_.resize(k);
    }
    dense_ = false;
    sorted_ = normalised_ = false;
  }

  /// The draw over the whole vocabulary without making the sparse list: weights exp(logit - max)
  /// summed per block of 1024 tokens (vectors), the block found from the sums, and the token
  /// inside it from the same weights recomputed. Edits count as blocks of one token.
  token_id draw_dense(double u) {
    const float m = dense_max();
    require<argument_error>(m > minus_infinity, "sample: all ", vocabulary_,
                            " tokens are banned or have a logit of -inf: there is nothing to sample");
    constexpr std::size_t block = 1024;
    blocks_.clear();
    std::size_t next_edit = 0;
    auto add_edits_before = [&](std::size_t id) {
      for (; next_edit < edits_.size() && edits_[next_edit].first < id; ++next_edit) {
        const auto& [e, logit] = edits_[next_edit];
        blocks_.push_back({e, e + 1, static_cast<double>(std::exp(logit - m))});
      }
    };
    for_each_run([&](std::size_t begin, std::size_t end) {
      add_edits_before(begin);
      for (std::size_t b = begin; b < end; b += block) {
        const std::size_t e = std::min(end, b + block);
        blocks_.push_back({b, e, block_weights(b, e, m, nullptr)});
      }
    });
    add_edits_before(vocabulary_);
    double total = 0.0;
    for (const auto& b : blocks_) total += b.sum;
    const double target = u * total;
    double cumulative = 0.0;
    std::size_t chosen = blocks_.size() - 1;
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      if (target < cumulative + blocks_[i].sum) {
        chosen = i;
        break;
      }
      cumulative += blocks_[i].sum;
    }
    while (blocks_[chosen].sum == 0.0 && chosen > 0) --chosen;  // rounding ran past the end
    const auto [begin, end, sum] = blocks_[chosen];
    if (end - begin == 1) return static_cast<token_id>(begin);
    weights_.resize(end - begin);
    block_weights(begin, end, m, weights_.data());
    std::size_t last_positive = begin;
    for (std::size_t i = begin; i < end; ++i) {
      const double w = weights_[i - begin];
      if (w > 0.0) last_positive = i;
      cumulative += w;
      if (target < cumulative) return static_cast<token_id>(i);
    }
    return static_cast<token_id>(last_positive);
  }

  /// exp(logit - m) over source_[begin, end) (an unedited run): their sum, and each into `out`
  /// when it is not null. The same kernel (Highway's exp, dispatched to the widest target) either
  /// way, so the block sums and the weights inside a block agree.
  double block_weights(std::size_t begin, std::size_t end, float m, float* out) const {
    if (end == begin) return 0.0;
    float* dst = out;
    if (!dst) {
      if (scratch_.size() < end - begin) scratch_.resize(end - begin);
      dst = scratch_.data();
    }
    return kernels::exp_shifted({source_.data() + begin, end - begin}, m, {dst, end - begin});
  }

  void make_sparse() {
    if (dense_) gather_dense(minus_infinity);
  }

  /// Back to the dense view (after a gather that has to be redone another way); edits kept.
  void reset_dense_view() {
    items_.clear();
    dense_ = true;
    sorted_ = normalised_ = false;
  }

  std::span<const float> source_;
  std::size_t vocabulary_ = 0;
  std::vector<std::pair<token_id, float>> edits_;
  std::vector<candidate> items_;
  std::vector<float> owned_, values_;
  std::vector<std::pair<double, candidate>> keyed_;
  struct weighted_block {
    std::size_t begin, end;
    double sum;
  };
  std::vector<weighted_block> blocks_;
  std::vector<float> weights_;
  mutable std::vector<float> scratch_;  // block_weights' output when only the sum is wanted
  std::vector<token_id> scratch_ids_;
  std::vector<std::uint32_t> scratch_counts_;
  bool dense_ = true, sorted_ = false, normalised_ = false;
};

}  // namespace lmkit::gen
