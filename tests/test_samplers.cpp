// gen/ samplers: each part's distribution against the one computed here from its definition
// (double precision) by a chi-square test over 100k seeded draws; the edge cases (ties, p = 1,
// k above the vocabulary, min_keep, everything banned, NaN / inf / empty logits); greedy
// determinism for 1 and 2 threads; the compile-time and run-time chains giving the same tokens;
// and the dense scans (top-k, min-p, greedy over 200k logits with edits) against plain sorting.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "lmkit/core/parallel.hpp"
#include "lmkit/gen/candidates.hpp"
#include "lmkit/gen/dynamic_chain.hpp"
#include "lmkit/gen/logit_bias.hpp"
#include "lmkit/gen/logit_transform.hpp"
#include "lmkit/gen/penalties.hpp"
#include "lmkit/gen/sampler_chain.hpp"
#include "lmkit/gen/sampler_config.hpp"
#include "lmkit/gen/temperature.hpp"
#include "lmkit/gen/truncation.hpp"
#include "test_support.hpp"

using namespace lmkit;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr std::size_t draws = 100'000;

// ---- the chi-square distribution's upper quantile, from the regularised incomplete gamma ----

/// P(a, x), the regularised lower incomplete gamma (Numerical Recipes' series / continued fraction).
double gamma_p(double a, double x) {
  if (x <= 0.0) return 0.0;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1.0) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 1000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::abs(term) < std::abs(sum) * 1e-15) break;
    }
    return sum * std::exp(log_prefix);
  }
  double b = x + 1.0 - a, c = 1e300, d = 1.0 / b, h = d;  // Lentz's method for Q(a, x)
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (std::abs(c) < 1e-300) c = 1e-300;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1.0) < 1e-15) break;
  }
  return 1.0 - std::exp(log_prefix) * h;
}

/// The x with P(chi2_df > x) = 0.001, by bisection on the CDF.
double chi_square_critical_001(std::size_t df) {
  double lo = 0.0, hi = 10.0 * static_cast<double>(df) + 100.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (gamma_p(0.5 * static_cast<double>(df), 0.5 * mid) < 0.999 ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// ---- the distributions, written from the definitions (double, independent of the library) ----

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

std::vector<double> softmax(const std::vector<double>& logits) {
  double m = -inf;
  for (double l : logits) m = std::max(m, l);
  std::vector<double> p(logits.size(), 0.0);
  if (m == -inf) return p;
  double sum = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) sum += p[i] = logits[i] == -inf ? 0.0 : std::exp(logits[i] - m);
  for (double& x : p) x /= sum;
  return p;
}

/// Ids by rank: higher logit first, then lower id.
std::vector<std::size_t> ranked(const std::vector<double>& logits) {
  std::vector<std::size_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return logits[a] > logits[b]; });
  return order;
}

std::vector<double> keep_only(std::vector<double> logits, const std::vector<std::size_t>& kept) {
  std::vector<double> out(logits.size(), -inf);
  for (std::size_t i : kept) out[i] = logits[i];
  return out;
}

std::vector<double> ref_top_k(const std::vector<double>& logits, std::size_t k) {
  auto order = ranked(logits);
  order.resize(std::min(k, order.size()));
  return keep_only(logits, order);
}

/// The smallest rank prefix whose probability reaches p (at least min_keep). `margin` gets the
/// distance from p of the nearest cumulative sum, so a test can check it is not on a knife edge.
std::vector<double> ref_top_p(const std::vector<double>& logits, double p, std::size_t min_keep, double* margin) {
  const auto prob = softmax(logits);
  const auto order = ranked(logits);
  double cumulative = 0.0, nearest = inf;
  std::vector<std::size_t> kept;
  for (std::size_t i : order) {
    if (prob[i] == 0.0) break;
    kept.push_back(i);
    cumulative += prob[i];
    nearest = std::min(nearest, std::abs(cumulative - p));
    if (cumulative >= p && kept.size() >= min_keep) break;
  }
  if (margin) *margin = nearest;
  return keep_only(logits, kept);
}

std::vector<double> ref_min_p(const std::vector<double>& logits, double min_p, double* margin) {
  const auto prob = softmax(logits);
  const double top = *std::max_element(prob.begin(), prob.end());
  std::vector<std::size_t> kept;
  double nearest = inf;
  for (std::size_t i = 0; i < prob.size(); ++i) {
    nearest = std::min(nearest, std::abs(prob[i] - min_p * top) / top);
    if (prob[i] >= min_p * top) kept.push_back(i);
  }
  if (margin) *margin = nearest;
  return keep_only(logits, kept);
}

/// Meister et al.: by |-ln p - H| ascending, the smallest prefix whose probability reaches mass.
std::vector<double> ref_typical(const std::vector<double>& logits, double mass, double* margin) {
  const auto prob = softmax(logits);
  double entropy = 0.0;
  for (double p : prob)
    if (p > 0.0) entropy -= p * std::log(p);
  std::vector<std::size_t> order(prob.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::abs(-std::log(prob[a]) - entropy) < std::abs(-std::log(prob[b]) - entropy);
  });
  double cumulative = 0.0, nearest = inf;
  std::vector<std::size_t> kept;
  for (std::size_t i : order) {
    kept.push_back(i);
    cumulative += prob[i];
    nearest = std::min(nearest, std::abs(cumulative - mass));
    if (cumulative >= mass) break;
  }
  if (margin) *margin = nearest;
  return keep_only(logits, kept);
}

std::vector<double> ref_penalties(std::vector<double> logits, const std::vector<token_id>& history, std::size_t window,
                                  double repeat, double frequency, double presence) {
  std::vector<int> count(logits.size(), 0);
  const std::size_t first = history.size() > window ? history.size() - window : 0;
  for (std::size_t i = first; i < history.size(); ++i) ++count[history[i]];
  for (std::size_t t = 0; t < logits.size(); ++t) {
    if (count[t] == 0) continue;
    logits[t] = logits[t] > 0 ? logits[t] / repeat : logits[t] * repeat;
    logits[t] -= count[t] * frequency + presence;
  }
  return logits;
}

std::vector<double> ref_temperature(std::vector<double> logits, double t) {
  for (double& l : logits) l /= t;
  return logits;
}

/// Draws `draws` tokens and checks them against `expected` (probabilities): tokens of probability
/// 0 never come, and chi-square (bins of expected count < 5 pooled) is below the 0.001 quantile.
template <class Chain>
void check_distribution(Chain& chain, const std::vector<float>& logits, const std::vector<token_id>& history,
                        const std::vector<double>& expected, std::uint64_t seed_value = 7) {
  philox rng(seed{seed_value});
  std::vector<std::size_t> observed(logits.size(), 0);
  for (std::size_t i = 0; i < draws; ++i) {
    const token_id t = chain.sample(logits, history, rng);
    REQUIRE(t < logits.size());
    ++observed[t];
  }
  double chi2 = 0.0, pooled_expected = 0.0, pooled_observed = 0.0;
  std::size_t bins = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double e = expected[i] * static_cast<double>(draws);
    if (expected[i] == 0.0) {
      INFO("token " << i << " has probability 0 but came " << observed[i] << " times");
      REQUIRE(observed[i] == 0);
    } else if (e < 5.0) {
      pooled_expected += e;
      pooled_observed += static_cast<double>(observed[i]);
    } else {
      chi2 += (static_cast<double>(observed[i]) - e) * (static_cast<double>(observed[i]) - e) / e;
      ++bins;
    }
  }
  if (pooled_expected > 0.0) {
    chi2 += (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) / pooled_expected;
    ++bins;
  }
  if (bins <= 1) return;  // one outcome: nothing to test beyond the zeros above
  const double critical = chi_square_critical_001(bins - 1);
  INFO("chi-square " << chi2 << " with " << bins - 1 << " degrees of freedom, critical value " << critical);
  CHECK(chi2 < critical);
}

std::vector<float> test_logits(std::size_t n, std::uint64_t stream, double scale = 1.5) {
  philox rng(seed{99}, stream);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(scale * rng.normal());
  return v;
}

/// A soft cap as Gemma 2 applies to its final logits: cap * tanh(x / cap), a user's xsimd functor.
struct soft_cap {
  float cap = 2.0f;
  float operator()(float x) const { return cap * std::tanh(x / cap); }
  simd::float_batch operator()(simd::float_batch x) const {
    return simd::float_batch(cap) * xsimd::tanh(x / simd::float_batch(cap));
  }
};

}  // namespace

TEST_CASE("chi-square critical values match the tables", "[samplers]") {
  CHECK(test::close(chi_square_critical_001(1), 10.828, 1e-3));
  CHECK(test::close(chi_square_critical_001(10), 29.588, 1e-3));
  CHECK(test::close(chi_square_critical_001(30), 59.703, 1e-3));
}

TEST_CASE("each sampler draws from the distribution its definition gives", "[samplers]") {
  const auto logits = test_logits(24, 1);
  const auto l = to_double(logits);
  const std::vector<token_id> none;

  SECTION("plain softmax (no parts)") {
    gen::sampler_chain<> chain;
    check_distribution(chain, logits, none, softmax(l));
  }
  SECTION("temperature") {
    gen::sampler_chain<gen::temperature> chain{{0.6f}};
    check_distribution(chain, logits, none, softmax(ref_temperature(l, 0.6)));
    gen::sampler_chain<gen::temperature> hot{{2.5f}};
    check_distribution(hot, logits, none, softmax(ref_temperature(l, 2.5)));
  }
  SECTION("top-k") {
    gen::sampler_chain<gen::top_k> chain{{5}};
    check_distribution(chain, logits, none, softmax(ref_top_k(l, 5)));
  }
  SECTION("top-p") {
    for (double p : {0.5, 0.8, 0.95}) {
      double margin = 0;
      const auto expected = softmax(ref_top_p(l, p, 1, &margin));
      REQUIRE(margin > 1e-4);
      gen::sampler_chain<gen::top_p> chain{{static_cast<float>(p)}};
      check_distribution(chain, logits, none, expected);
    }
  }
  SECTION("min-p") {
    for (double p : {0.05, 0.2}) {
      double margin = 0;
      const auto expected = softmax(ref_min_p(l, p, &margin));
      REQUIRE(margin > 1e-4);
      gen::sampler_chain<gen::min_p> chain{{static_cast<float>(p)}};
      check_distribution(chain, logits, none, expected);
    }
  }
  SECTION("typical-p") {
    for (double p : {0.5, 0.9}) {
      double margin = 0;
      const auto expected = softmax(ref_typical(l, p, &margin));
      REQUIRE(margin > 1e-4);
      gen::sampler_chain<gen::typical_p> chain{{static_cast<float>(p)}};
      check_distribution(chain, logits, none, expected);
    }
  }
  SECTION("repetition, frequency and presence penalties over a window") {
    // Token 20 occurs only before the window of 8, so it is not penalised.
    const std::vector<token_id> history{20, 20, 1, 3, 3, 3, 0, 7, 1, 12};
    gen::sampler_chain<gen::penalties> chain{{1.5f, 0.3f, 0.4f, 8}};
    check_distribution(chain, logits, history, softmax(ref_penalties(l, history, 8, 1.5, 0.3, 0.4)));
    gen::sampler_chain<gen::repetition_penalty, gen::frequency_penalty, gen::presence_penalty> separate{
        {1.5f, 8}, {0.3f, 8}, {0.4f, 8}};
    check_distribution(separate, logits, history, softmax(ref_penalties(l, history, 8, 1.5, 0.3, 0.4)));
  }
  SECTION("logit bias and banned tokens") {
    auto expected = l;
    expected[2] += 1.5;
    expected[5] -= 2.0;
    expected[9] = -inf;
    expected[0] = -inf;
    gen::sampler_chain<gen::logit_bias, gen::banned_tokens> chain{{{2, 1.0f}, {5, -2.0f}, {2, 0.5f}, {9, -INFINITY}},
                                                                  {0}};
    check_distribution(chain, logits, none, softmax(expected));
  }
  SECTION("the whole vocabulary (no cut): blocks of weights, edits between them, a temperature") {
    const auto wide = test_logits(5000, 9, 2.5);
    auto expected = to_double(wide);
    for (token_id id : {7u, 1500u, 1024u, 4999u}) expected[id] += 6.0;
    expected[1023] = -inf;
    for (double& x : expected) x /= 1.3;
    gen::sampler_chain<gen::logit_bias, gen::banned_tokens, gen::temperature> chain{
        {{7, 6.0f}, {1500, 6.0f}, {1024, 6.0f}, {4999, 6.0f}}, {1023}, {1.3f}};
    check_distribution(chain, wide, none, softmax(expected));
    gen::sampler_chain<gen::logit_bias> untempered{{{7, 6.0f}, {1500, 6.0f}, {1024, 6.0f}, {4999, 6.0f}}};
    expected = to_double(wide);
    for (token_id id : {7u, 1500u, 1024u, 4999u}) expected[id] += 6.0;
    check_distribution(untempered, wide, none, softmax(expected));
  }
  SECTION("a user's xsimd transform: soft-capping by tanh") {
    std::vector<double> expected = l;
    for (double& x : expected) x = 2.0 * std::tanh(x / 2.0);
    gen::sampler_chain<gen::logit_transform<soft_cap>> chain{{soft_cap{2.0f}}};
    check_distribution(chain, logits, none, softmax(expected));
    // After a top-k the transform sees only the survivors (the sparse path).
    gen::sampler_chain<gen::top_k, gen::logit_transform<soft_cap>> after{{6}, {soft_cap{2.0f}}};
    check_distribution(after, logits, none, softmax(ref_top_k(expected, 6)));
  }
  SECTION("a typical chain: penalties, top-k, top-p, min-p, temperature (llama.cpp's order)") {
    const std::vector<token_id> history{4, 4, 11, 2, 17, 4};
    auto expected = ref_penalties(l, history, 64, 1.1, 0.1, 0.2);
    expected = ref_top_k(expected, 12);
    double margin = 0;
    expected = ref_top_p(expected, 0.9, 1, &margin);
    REQUIRE(margin > 1e-4);
    expected = ref_min_p(expected, 0.05, &margin);
    REQUIRE(margin > 1e-4);
    expected = softmax(ref_temperature(expected, 0.8));
    gen::sampler_chain<gen::penalties, gen::top_k, gen::top_p, gen::min_p, gen::temperature> chain{
        {1.1f, 0.1f, 0.2f, 64}, {12}, {0.9f}, {0.05f}, {0.8f}};
    check_distribution(chain, logits, history, expected);
    auto dynamic = gen::make_chain({.temperature = 0.8f, .top_k = 12, .top_p = 0.9f, .min_p = 0.05f,
                                    .repeat_penalty = 1.1f, .frequency_penalty = 0.1f, .presence_penalty = 0.2f});
    check_distribution(dynamic, logits, history, expected);
  }
}

TEST_CASE("greedy: temperature 0 is the argmax, ties to the lowest id", "[samplers]") {
  philox rng(seed{1});
  const std::vector<token_id> none;
  gen::sampler_chain<gen::temperature> greedy{{0.0f}};
  std::vector<float> equal(10, 0.5f);
  CHECK(greedy.sample(equal, none, rng) == 0);
  std::vector<float> two{0.1f, 0.3f, 0.2f, 0.9f, 0.0f, 0.9f, -1.0f, 0.9f};
  CHECK(greedy.sample(two, none, rng) == 3);
  gen::sampler_chain<gen::top_k> top1{{1}};
  CHECK(top1.sample(two, none, rng) == 3);
  gen::sampler_chain<gen::greedy> plain;
  CHECK(plain.sample(two, none, rng) == 3);

  // Large vocabulary (the vector scans), ties far apart, and the same after edits.
  std::vector<float> big = test_logits(5000, 2);
  big[4100] = big[777] = 40.0f;
  CHECK(greedy.sample(big, none, rng) == 777);
  gen::sampler_chain<gen::banned_tokens, gen::temperature> ban{{777}, {0.0f}};
  CHECK(ban.sample(big, none, rng) == 4100);
  const std::vector<token_id> history{777};
  gen::sampler_chain<gen::presence_penalty, gen::temperature> penalised{{0.5f}, {0.0f}};
  CHECK(penalised.sample(big, history, rng) == 4100);
  gen::sampler_chain<gen::logit_bias, gen::greedy> lifted{{{12, 100.0f}}, {}};
  CHECK(lifted.sample(big, none, rng) == 12);
  // Each token takes one uniform_double (two 32-bit values) from the stream, greedy or not.
  philox counted(seed{5});
  greedy.sample(big, none, counted);
  CHECK(counted.position() == 2);
}

TEST_CASE("greedy and sampled tokens are the same for 1 and 2 threads", "[samplers]") {
  constexpr std::size_t rows = 64, vocabulary = 5000;
  std::vector<std::vector<float>> logits(rows);
  for (std::size_t r = 0; r < rows; ++r) logits[r] = test_logits(vocabulary, 100 + r, 3.0);
  auto run = [&](int threads, float temperature) {
    thread_pool pool(threads);
    std::vector<token_id> out(rows);
    pool.for_each_index(rows, [&](std::size_t r) {
      auto chain = gen::make_chain({.temperature = temperature, .top_k = 40, .repeat_penalty = 1.2f});
      philox rng(seed{11}, r);
      const std::vector<token_id> history{static_cast<token_id>(r), static_cast<token_id>(2 * r)};
      out[r] = chain.sample(logits[r], history, rng);
    });
    return out;
  };
  const auto greedy1 = run(1, 0.0f), greedy2 = run(2, 0.0f);
  CHECK(greedy1 == greedy2);
  for (std::size_t r = 0; r < rows; ++r) {
    auto l = to_double(logits[r]);
    l = ref_penalties(l, {static_cast<token_id>(r), static_cast<token_id>(2 * r)}, 64, 1.2, 0, 0);
    CHECK(greedy1[r] == ranked(l).front());
  }
  CHECK(run(1, 0.9f) == run(2, 0.9f));
}

TEST_CASE("the compile-time and run-time chains give the same tokens for the same seed", "[samplers]") {
  constexpr std::size_t vocabulary = 32000;
  gen::sampler_chain<gen::penalties, gen::top_k, gen::top_p, gen::min_p, gen::temperature, gen::logit_transform<soft_cap>>
      fixed{{1.1f, 0.05f, 0.1f, 64}, {40}, {0.95f}, {0.05f}, {0.8f}, {soft_cap{3.0f}}};
  auto dynamic = gen::make_chain({.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                                  .repeat_penalty = 1.1f, .frequency_penalty = 0.05f, .presence_penalty = 0.1f});
  dynamic.add(gen::logit_transform{soft_cap{3.0f}});
  auto generate = [&](auto& chain, std::uint64_t seed_value) {
    philox rng(seed{seed_value});
    std::vector<token_id> history{1, 2, 3};
    for (std::size_t step = 0; step < 300; ++step) {
      auto logits = test_logits(vocabulary, step % 7, 2.0);
      for (token_id t : history) logits[t] += 4.0f;  // make repeats likely, so the penalties matter
      history.push_back(chain.sample(logits, history, rng));
    }
    return history;
  };
  const auto a = generate(fixed, 3), b = generate(dynamic, 3), c = generate(fixed, 3), d = generate(fixed, 4);
  CHECK(a == b);
  CHECK(a == c);
  CHECK(a != d);
}

TEST_CASE("edge cases: p = 1, k above the vocabulary, min_keep", "[samplers]") {
  const auto logits = test_logits(16, 3);
  const auto l = to_double(logits);
  const std::vector<token_id> none;
  philox rng(seed{2});

  gen::sampler_chain<gen::top_p> all{{1.0f}};
  all.sample(logits, none, rng);
  CHECK(all.last_candidates().size() == 16);
  check_distribution(all, logits, none, softmax(l));

  gen::sampler_chain<gen::top_k> above{{1000}};
  above.sample(logits, none, rng);
  CHECK(above.last_candidates().size() == 16);
  check_distribution(above, logits, none, softmax(l));

  gen::sampler_chain<gen::top_p> tiny_p{{0.001f, 3}};
  tiny_p.sample(logits, none, rng);
  CHECK(tiny_p.last_candidates().size() == 3);
  check_distribution(tiny_p, logits, none, softmax(ref_top_k(l, 3)));

  gen::sampler_chain<gen::min_p> strict{{1.0f, 4}};
  strict.sample(logits, none, rng);
  CHECK(strict.last_candidates().size() == 4);

  gen::sampler_chain<gen::typical_p> typical{{0.0001f, 2}};
  typical.sample(logits, none, rng);
  CHECK(typical.last_candidates().size() == 2);

  gen::sampler_chain<gen::top_k> k_below_min_keep{{1, 5}};
  k_below_min_keep.sample(logits, none, rng);
  CHECK(k_below_min_keep.last_candidates().size() == 5);

  // top_p = 0 keeps the single best token (min_keep 1): greedy.
  gen::sampler_chain<gen::top_p> zero{{0.0f}};
  CHECK(zero.sample(logits, none, rng) == ranked(l).front());
}

TEST_CASE("bad input: everything banned, NaN, inf, empty, ids outside the vocabulary", "[samplers]") {
  const std::vector<token_id> none;
  philox rng(seed{3});
  auto message_of = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const argument_error& e) {
      return e.what();
    }
    return "no argument_error";
  };
  using Catch::Matchers::Contains;
  std::vector<float> logits = test_logits(40, 4);

  gen::sampler_chain<gen::banned_tokens> banned_all{gen::banned_tokens([] {
    std::vector<token_id> ids(40);
    std::iota(ids.begin(), ids.end(), 0);
    return ids;
  }())};
  CHECK_THAT(message_of([&] { banned_all.sample(logits, none, rng); }), Contains("all 40 tokens are banned"));
  std::vector<float> masked(40, -INFINITY);
  gen::sampler_chain<gen::top_k, gen::top_p, gen::min_p, gen::temperature> cuts{{5}, {0.9f}, {0.1f}, {0.7f}};
  CHECK_THAT(message_of([&] { cuts.sample(masked, none, rng); }), Contains("banned"));
  gen::sampler_chain<> plain;
  CHECK_THAT(message_of([&] { plain.sample(masked, none, rng); }), Contains("banned"));
  masked[17] = 0.0f;
  CHECK(cuts.sample(masked, none, rng) == 17);

  for (std::size_t position : {5, 38}) {
    auto bad = logits;
    bad[position] = NAN;
    CHECK_THAT(message_of([&] { plain.sample(bad, none, rng); }),
               Contains("position " + std::to_string(position)) && Contains("NaN"));
    bad[position] = INFINITY;
    CHECK_THAT(message_of([&] { plain.sample(bad, none, rng); }),
               Contains("position " + std::to_string(position)) && Contains("+inf"));
  }
  CHECK_THAT(message_of([&] { plain.sample(std::span<const float>{}, none, rng); }), Contains("empty"));

  gen::sampler_chain<gen::repetition_penalty> penalty{{1.3f}};
  const std::vector<token_id> outside{1, 2, 400};
  CHECK_THAT(message_of([&] { penalty.sample(logits, outside, rng); }), Contains("position 2") && Contains("400"));
  gen::sampler_chain<gen::banned_tokens> ban_outside{{40}};
  CHECK_THAT(message_of([&] { ban_outside.sample(logits, none, rng); }), Contains("outside the vocabulary"));
  CHECK_THAT(message_of([] { gen::make_chain({.top_p = 1.5f}); }), Contains("top_p"));
  CHECK_THAT(message_of([] { gen::make_chain({.repeat_penalty = 0.0f}); }), Contains("repeat_penalty"));
}

TEST_CASE("the dense scans equal sorting the whole vocabulary", "[samplers]") {
  const std::vector<std::size_t> sizes{1, 3, 17, 1000, 32000, 200000};
  for (std::size_t n : sizes) {
    for (std::uint64_t trial = 0; trial < 3; ++trial) {
      INFO("vocabulary " << n << ", trial " << trial);
      auto logits = test_logits(n, 1000 + trial, 2.0);
      // Plant ties and a few -inf, and a history for the penalties and bans that touch the top.
      for (std::size_t i = 0; i + 7 < n; i += n / 5 + 1) logits[i + 3] = logits[i];
      if (n > 10) logits[n / 2] = -INFINITY;
      const auto order0 = ranked(to_double(logits));
      std::vector<token_id> history;
      for (std::size_t i = 0; i < std::min<std::size_t>(n, 30); ++i) history.push_back(static_cast<token_id>(order0[i]));
      std::vector<token_id> ban;
      if (n > 5) ban = {static_cast<token_id>(order0[3]), static_cast<token_id>(order0[40 % n])};

      auto edited = ref_penalties(to_double(logits), history, 64, 1.3, 0.2, 0.1);
      for (token_id b : ban) edited[b] = -inf;
      const auto order = ranked(edited);

      for (std::size_t k : {std::size_t{1}, std::size_t{40}, std::size_t{1000}}) {
        INFO("k = " << k);
        gen::sampler_chain<gen::penalties, gen::banned_tokens, gen::top_k> chain{
            {1.3f, 0.2f, 0.1f, 64}, gen::banned_tokens(ban), {k}};
        philox rng(seed{1});
        chain.sample(logits, history, rng);
        std::vector<std::size_t> ids;
        if (chain.last_candidates().is_dense()) {  // k >= vocabulary: nothing was cut
          REQUIRE(k >= n);
          for (std::size_t i = 0; i < n; ++i)
            if (edited[i] > -inf) ids.push_back(i);
        }
        for (const auto& x : chain.last_candidates().sparse_items()) ids.push_back(x.id);
        std::sort(ids.begin(), ids.end());
        std::vector<std::size_t> want;
        for (std::size_t i : order)
          if (want.size() < k && edited[i] > -inf) want.push_back(i);
        std::sort(want.begin(), want.end());
        CHECK(ids == want);
      }

      gen::sampler_chain<gen::penalties, gen::banned_tokens, gen::min_p> minp{{1.3f, 0.2f, 0.1f, 64},
                                                                            gen::banned_tokens(ban), {0.02f}};
      philox rng(seed{1});
      minp.sample(logits, history, rng);
      const auto prob = softmax(edited);
      const double top = *std::max_element(prob.begin(), prob.end());
      std::size_t want = 0;
      for (double p : prob) want += p >= 0.02 * top;
      CHECK(minp.last_candidates().size() == want);
    }
  }
}
