// n-gram models: Kneser-Ney estimation and querying against KenLM's own output on the same text
// (../shared/data/kenlm_ref: lmplz -o 3 and query), the ARPA reader's handling of bad input, and
// estimation within a memory budget against the in-memory estimate.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "lmkit/io/arpa.hpp"
#include "lmkit/io/ngram_binary.hpp"
#include "lmkit/models/ngram/count_model.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/models/ngram/gram_sorter.hpp"
#include "lmkit/models/ngram/kneser_ney.hpp"
#include "lmkit/models/ngram/kneser_ney_external.hpp"
#include "lmkit/models/ngram/ngram.hpp"
#include "test_support.hpp"

using namespace lmkit;
using ngram::ngram_model;

namespace {

ngram_model estimate_reference_corpus() {
  std::ifstream train(test::shared_data("kenlm_ref/train_2000.txt"));
  return ngram::estimate_kneser_ney(train, 3);
}

/// n-gram text ("w1 w2 w3") -> entry, for comparing models whose word ids differ.
std::map<std::string, ngram::ngram_entry> by_text(const ngram_model& m) {
  std::map<std::string, ngram::ngram_entry> out;
  for (std::size_t n = 1; n <= m.order(); ++n)
    for (std::size_t i = 0; i < m.table(n).size(); ++i) {
      std::string text;
      for (const ngram::word_id w : m.table(n).words(i)) text += (text.empty() ? "" : " ") + m.vocab().word(w);
      out.emplace(text, m.table(n).value(i));
    }
  return out;
}

struct query_reference {
  std::vector<double> totals;
  std::vector<std::size_t> oovs;
};

query_reference read_query_sentences() {
  std::ifstream in(test::shared_data("kenlm_ref/query_sentence.txt"));
  query_reference r;
  std::string line;
  while (std::getline(in, line)) {
    double total;
    std::size_t oov;
    if (std::sscanf(line.c_str(), "Total: %lf OOV: %zu", &total, &oov) == 2) r.totals.push_back(total), r.oovs.push_back(oov);
  }
  return r;
}

/// Scores test_next200.txt sentence by sentence and checks it against KenLM's query output.
void check_query_agrees(const ngram_model& model) {
  const auto reference = read_query_sentences();
  std::ifstream test_text(test::shared_data("kenlm_ref/test_next200.txt"));
  std::string line;
  std::size_t i = 0;
  ngram::text_score all;
  while (std::getline(test_text, line)) {
    const auto s = model.score_sentence(line);
    REQUIRE(i < reference.totals.size());
    INFO("sentence " << i + 1 << ": " << line);
    REQUIRE(std::abs(s.total_log_prob - reference.totals[i]) <= 1e-4);
    REQUIRE(s.oovs == reference.oovs[i]);
    all += s;
    ++i;
  }
  REQUIRE(i == reference.totals.size());
  // query_summary.txt: Perplexity including OOVs 334.0040115649804, excluding 151.88490475730399,
  // OOVs 190, Tokens 1085.
  std::ifstream summary(test::shared_data("kenlm_ref/query_summary.txt"));
  std::string text((std::istreambuf_iterator<char>(summary)), {});
  auto number_after = [&](const std::string& label) {
    const auto at = text.find(label);
    REQUIRE(at != std::string::npos);
    return std::stod(text.substr(at + label.size()));
  };
  REQUIRE(all.tokens == static_cast<std::size_t>(number_after("\nTokens:")));
  REQUIRE(all.oovs == static_cast<std::size_t>(number_after("\nOOVs:")));
  REQUIRE(std::abs(all.perplexity() - number_after("Perplexity including OOVs:")) < 5e-5);
  REQUIRE(std::abs(all.perplexity_excluding_oovs() - number_after("Perplexity excluding OOVs:")) < 5e-5);
}

}  // namespace

TEST_CASE("Kneser-Ney estimation gives KenLM's ARPA: same n-grams, probabilities and back-offs", "[ngram][kenlm]") {
  const ngram_model ours = estimate_reference_corpus();
  const ngram_model kenlm = io::read_arpa(test::shared_data("kenlm_ref/ts2000.o3.arpa"));
  for (std::size_t n = 1; n <= 3; ++n) REQUIRE(ours.table(n).size() == kenlm.table(n).size());
  const auto a = by_text(ours), b = by_text(kenlm);
  REQUIRE(a.size() == b.size());
  for (const auto& [text, expected] : b) {
    INFO("n-gram '" << text << "'");
    const auto it = a.find(text);
    REQUIRE(it != a.end());
    REQUIRE(std::abs(it->second.log_prob - expected.log_prob) <= 1e-5);
    REQUIRE(std::abs(it->second.log_backoff - expected.log_backoff) <= 1e-5);
  }
}

TEST_CASE("querying lmkit's estimate reproduces KenLM's query totals and perplexities", "[ngram][kenlm]") {
  check_query_agrees(estimate_reference_corpus());
}

TEST_CASE("querying KenLM's own ARPA file reproduces its query output", "[ngram][kenlm]") {
  check_query_agrees(io::read_arpa(test::shared_data("kenlm_ref/ts2000.o3.arpa")));
}

TEST_CASE("ngram<N>, the order fixed at compile time, scores as the run-time model does", "[ngram][kenlm]") {
  const ngram_model runtime = estimate_reference_corpus();
  std::ifstream train(test::shared_data("kenlm_ref/train_2000.txt"));
  const auto fixed = ngram::ngram<3>::estimate(train);
  static_assert(ngram::ngram<3>::order == 3 && ngram::ngram<3>::state::capacity == 2);
  static_assert(sizeof(ngram::ngram<3>::state) < sizeof(ngram::ngram_state) / 4);
  std::ifstream test_text(test::shared_data("kenlm_ref/test_next200.txt"));
  std::string line;
  std::size_t sentences = 0;
  while (std::getline(test_text, line)) {
    const ngram::text_score a = runtime.score_sentence(line), b = fixed.score_sentence(line);
    REQUIRE(a.total_log_prob == b.total_log_prob);  // the same look-ups in the same order
    REQUIRE(a.tokens == b.tokens);
    REQUIRE(a.oovs == b.oovs);
    ++sentences;
  }
  REQUIRE(sentences > 0);
  // Word by word with a carried state, too.
  auto state = fixed.begin_sentence();
  auto runtime_state = runtime.begin_sentence();
  for (const char* w : {"the", "king", "is", "dead", "</s>"}) {
    const auto id = fixed.vocab().find(w);
    REQUIRE(fixed.score(state, id).log_prob == runtime.score(runtime_state, id).log_prob);
  }
  // The order is checked where the model is made; a state too small for a model is refused.
  REQUIRE_THROWS_AS(ngram::ngram<4>(estimate_reference_corpus()), argument_error);
  ngram::basic_ngram_state<1> small;
  REQUIRE_THROWS_AS(runtime.score(small, 3), argument_error);
}

TEST_CASE("Korean words are counted, estimated, printed and read back as the words they are", "[ngram][unicode]") {
  // A small Korean text written for this test: "하늘" appears 4 times, "하늘 이" twice.
  const std::string text =
      "오늘 하늘 이 맑다\n"
      "하늘 이 푸르다\n"
      "바다 와 하늘 은 넓다\n"
      "오늘 바다 는 조용하다\n"
      "푸른 하늘 아래 바다\n";
  ngram::count_model counts(2);
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) counts.add_line(line);
  const auto id = [&](const char* w) { return counts.vocab().find(w); };
  REQUIRE(id("하늘") != ngram::unk_id);
  REQUIRE(counts.vocab().word(id("하늘")) == "하늘");
  const ngram::word_id sky[] = {id("하늘")};
  REQUIRE(counts.count({}, id("하늘")) == 4);
  REQUIRE(counts.count(sky, id("이")) == 2);
  REQUIRE(counts.count(sky, id("은")) == 1);

  std::istringstream train(text);
  const ngram_model model = ngram::estimate_kneser_ney(train, 3, {.discount_fallback = std::array<float, 3>{0.5f, 1.0f, 1.5f}});
  std::ostringstream arpa;
  io::write_arpa(model, arpa);
  // The words are printed byte for byte (UTF-8 untouched), e.g. the bigram line "... 하늘 이 ...".
  REQUIRE(arpa.str().find("\t하늘 이\t") != std::string::npos);
  REQUIRE(arpa.str().find("\t오늘 하늘 이\n") != std::string::npos);
  std::istringstream back(arpa.str());
  const ngram_model read = io::read_arpa(back, "korean.arpa");
  for (const char* sentence : {"오늘 하늘 이 맑다", "바다 는 조용하다", "하늘 은 넓다"}) {
    const auto a = model.score_sentence(sentence), b = read.score_sentence(sentence);
    REQUIRE(a.oovs == 0);
    REQUIRE(a.total_log_prob == Approx(b.total_log_prob).epsilon(1e-6));
  }
  REQUIRE(model.score_sentence("우주 는 넓다").oovs == 1);  // 우주 was never seen
}

TEST_CASE("ARPA files round-trip through the writer and the reader", "[ngram][arpa]") {
  const ngram_model model = estimate_reference_corpus();
  const auto path = test::temporary_folder("arpa") / "roundtrip.arpa";
  io::write_arpa(model, path);
  const auto again = by_text(io::read_arpa(path)), original = by_text(model);
  REQUIRE(again.size() == original.size());
  for (const auto& [text, e] : original) {
    REQUIRE(again.at(text).log_prob == e.log_prob);  // %.9g keeps every bit of a float
    REQUIRE(again.at(text).log_backoff == e.log_backoff);
  }
}

TEST_CASE("malformed ARPA input is a format_error naming the line", "[ngram][arpa]") {
  const std::string good =
      "\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-1\t<unk>\t0\n-0.5\ta\t-0.2\n-0.5\tb\t0\n\n\\2-grams:\n-0.3\ta b\n\n\\end\\\n";
  {
    std::istringstream in(good);
    const auto m = io::read_arpa(in);
    REQUIRE(m.order() == 2);
    REQUIRE(m.table(2).size() == 1);
  }
  auto error_of = [](const std::string& text) -> std::string {
    std::istringstream in(text);
    try {
      io::read_arpa(in, "test.arpa");
    } catch (const format_error& e) {
      return e.what();
    }
    return "no error";
  };
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  REQUIRE(error_of("") == "test.arpa:0: no \\data\\ line");
  REQUIRE(error_of(good.substr(0, good.find("\\2-grams:") + 10)).find("the file ends after 0 of 1 2-grams") != std::string::npos);
  REQUIRE(error_of(replaced("-0.3\ta b", "-0.3x\ta b")).find("test.arpa:11: bad probability '-0.3x'") != std::string::npos);
  REQUIRE(error_of(replaced("-0.3\ta b", "-0.3\ta c")).find("word 'c' is not among the unigrams") != std::string::npos);
  REQUIRE(error_of(replaced("-0.3\ta b", "-0.3\ta")).find("found 2 fields") != std::string::npos);
  REQUIRE(error_of(replaced("\\end\\", "")).find("expected \\end\\") != std::string::npos);
  REQUIRE(error_of(replaced("ngram 2=1", "ngram 3=1")).find("expected the count of 2-grams") != std::string::npos);
  REQUIRE(error_of(replaced("-0.5\tb\t0", "0.5\tb\t0")).find("above 0") != std::string::npos);
}

TEST_CASE("estimation refuses reserved words and data too small for discounts", "[ngram]") {
  ngram::kneser_ney_counter counter(3);
  REQUIRE_THROWS_AS(counter.add_line("a <s> b"), format_error);
  std::istringstream tiny("a b\n");
  REQUIRE_THROWS_AS(ngram::estimate_kneser_ney(tiny, 3), argument_error);
  // With lmplz's --discount_fallback the same data gives a model whose distributions sum to one.
  std::istringstream again("a b\n");
  const ngram_model fallback =
      ngram::estimate_kneser_ney(again, 3, {.discount_fallback = std::array<float, 3>{0.5f, 1.0f, 1.5f}});
  std::vector<double> p(fallback.vocab().size());
  ngram::ngram_state state = fallback.begin_sentence();
  for (const char* w : {"a", "b"}) {
    fallback.next_word_probabilities(state, p, /*include_unk=*/true);
    double total = 0;
    for (double x : p) total += x;
    REQUIRE(total == Approx(1.0).epsilon(1e-5));
    fallback.score(state, fallback.vocab().find(w));
  }
}

TEST_CASE("the binary format maps back to the same model, and damaged files are refused", "[ngram][binary]") {
  const ngram_model model = estimate_reference_corpus();
  const auto dir = test::temporary_folder("ngram_binary");
  const auto path = dir / "model.bin";
  io::write_ngram_binary(model, path);
  REQUIRE(io::is_ngram_binary(path));
  {
    const ngram_model mapped = io::load_ngram_model(path);
    REQUIRE(by_text(mapped) == by_text(model));
    check_query_agrees(mapped);
    const std::array<ngram::word_id, 1> unk{ngram::unk_id};
    REQUIRE_THROWS_AS(const_cast<ngram_model&>(mapped).table(1)[unk], argument_error);  // mapped: read-only
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto load_variant = [&](const std::string& content) -> std::string {
    const auto damaged = dir / "damaged.bin";
    std::ofstream(damaged, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
    try {
      io::load_ngram_binary(damaged);
    } catch (const format_error& e) {
      return e.what();
    }
    return "loaded";
  };
  // Truncated anywhere: refused with a message, never a crash.
  for (std::size_t cut : {std::size_t{0}, std::size_t{7}, std::size_t{39}, std::size_t{100}, bytes.size() / 2, bytes.size() - 1})
    REQUIRE(load_variant(bytes.substr(0, cut)) != "loaded");
  // One flipped byte past the header: the checksum catches it.
  std::string flipped = bytes;
  flipped[bytes.size() / 3] ^= 0x40;
  REQUIRE(load_variant(flipped).find("checksum mismatch") != std::string::npos);
  std::string wrong_version = bytes;
  wrong_version[8] = 9;
  REQUIRE(load_variant(wrong_version).find("format version 9") != std::string::npos);
  REQUIRE(load_variant("not a model at all, but long enough for a header!!").find("bad magic") != std::string::npos);

  // An order without n-grams (an ARPA may say "ngram 2=0") survives the trip.
  std::istringstream sparse("\\data\\\nngram 1=2\nngram 2=0\n\n\\1-grams:\n-1\t<unk>\t0\n-0.5\ta\t0\n\n\\2-grams:\n\n\\end\\\n");
  io::write_ngram_binary(io::read_arpa(sparse), dir / "sparse.bin");
  REQUIRE(io::load_ngram_binary(dir / "sparse.bin").table(2).size() == 0);
}

TEST_CASE("PTB 5-gram perplexity equals KenLM's 141.19", "[ngram][ptb]") {
  // KenLM's lmplz refuses <unk> in training text; for BASELINES.md PTB's <unk> was renamed to a plain
  // word (<ptbunk>), and so it is here: the test set's <unk> then scores as that word, not as OOV.
  auto renamed = [](std::string line) {
    for (std::size_t p; (p = line.find("<unk>")) != std::string::npos;) line.replace(p, 5, "<ptbunk>");
    return line;
  };
  ngram::kneser_ney_counter counter(5);
  std::ifstream train(test::shared_data("ptb/ptb.train.txt"));
  std::string line;
  while (std::getline(train, line)) counter.add_line(renamed(line));
  const ngram_model model = ngram::estimate_kneser_ney(std::move(counter));
  std::ifstream test_text(test::shared_data("ptb/ptb.test.txt"));
  ngram::text_score all;
  while (std::getline(test_text, line)) all += model.score_sentence(renamed(line));
  REQUIRE(all.oovs == 0);
  REQUIRE(std::abs(all.perplexity() - 141.19) < 0.005);
}

TEST_CASE("add-k is a distribution; stupid back-off follows its definition; Kneser-Ney beats both", "[ngram][counts]") {
  ngram::count_model counts(3);
  for (const char* line : {"the cat sat", "the cat ran", "a dog sat", "the dog sat down"}) counts.add_line(line);
  const auto& v = counts.vocab();
  const std::vector<ngram::word_id> context{v.find("the"), v.find("cat")};
  for (double k : {1.0, 0.1}) {
    double total = 0;
    for (ngram::word_id w = 0; w < v.size(); ++w)
      if (w != ngram::bos_id) total += std::pow(10.0, counts.log_prob(context, w, ngram::add_k{k}));
    REQUIRE(std::abs(total - 1.0) < 1e-12);
  }
  // "the cat" was followed by sat and ran: (1 + 1) / (2 + V), V = 9 (the 10 vocabulary entries less <s>).
  REQUIRE(std::abs(counts.log_prob(context, v.find("sat"), ngram::add_k{1.0}) - std::log10(2.0 / 11.0)) < 1e-12);
  // Stupid back-off: seen trigram -> relative frequency; unseen -> 0.4 x the bigram's.
  REQUIRE(std::abs(counts.log_prob(context, v.find("ran"), ngram::stupid_backoff{}) - std::log10(1.0 / 2.0)) < 1e-12);
  const std::vector<ngram::word_id> dog{v.find("the"), v.find("dog")};
  // "the dog down" unseen; "dog down" unseen; unigram "down": 1 / 17 tokens; two back-offs.
  REQUIRE(std::abs(counts.log_prob(dog, v.find("down"), ngram::stupid_backoff{}) - std::log10(0.4 * 0.4 * 1.0 / 17.0)) <
          1e-12);

  // On the KenLM reference text, Kneser-Ney's perplexity is lower than add-1's (excluding OOVs).
  ngram::count_model shakespeare(3);
  std::ifstream train(test::shared_data("kenlm_ref/train_2000.txt"));
  std::string line;
  while (std::getline(train, line)) shakespeare.add_line(line);
  const ngram_model kn = estimate_reference_corpus();
  std::ifstream test_text(test::shared_data("kenlm_ref/test_next200.txt"));
  ngram::text_score laplace, kneser_ney;
  while (std::getline(test_text, line)) {
    laplace += shakespeare.score_sentence(line, ngram::add_k{1.0});
    kneser_ney += kn.score_sentence(line);
  }
  REQUIRE(laplace.tokens == kneser_ney.tokens);
  REQUIRE(kneser_ney.perplexity_excluding_oovs() < laplace.perplexity_excluding_oovs());
}

// ---- Estimation within a memory budget (sorting on disk): the in-memory estimate's ARPA text,
// byte for byte, however small the budget (however many sorted runs).

namespace external_estimate {

/// Sentences of Zipf-distributed words from a lexicon of `words` (some Korean), seeded.
std::string zipf_corpus(std::size_t sentences, std::size_t words, std::uint64_t seed) {
  philox rng(lmkit::seed{seed});
  std::vector<std::string> lexicon;
  const char* korean[] = {"하늘", "바다", "사람", "나무", "노래", "마음"};
  for (std::size_t i = 0; i < words; ++i)
    lexicon.push_back(i % 7 == 3 ? std::string(korean[i % 6]) + std::to_string(i) : "w" + std::to_string(i));
  std::string text;
  for (std::size_t s = 0; s < sentences; ++s) {
    const std::size_t length = 1 + rng() % 12;
    for (std::size_t k = 0; k < length; ++k) {
      // 1 / rank: the inverse of a uniform draw over the harmonic-ish range, clipped to the lexicon
      const double u = (rng() + 1.0) / 4294967297.0;
      const auto rank = static_cast<std::size_t>(std::pow(static_cast<double>(words), u)) - 1;
      text += (k ? " " : "") + lexicon[std::min(rank, words - 1)];
    }
    text += '\n';
  }
  return text;
}

std::string in_memory_arpa(const std::string& corpus, std::size_t order, const ngram::kneser_ney_options& options = {}) {
  std::istringstream lines(corpus);
  std::ostringstream out;
  io::write_arpa(ngram::estimate_kneser_ney(lines, order, options), out);
  return out.str();
}

std::string external_arpa(const std::string& corpus, std::size_t order, std::size_t memory,
                          const ngram::kneser_ney_options& options = {}) {
  std::istringstream lines(corpus);
  std::ostringstream out;
  std::size_t stages = 0;
  io::write_arpa_estimated_externally(lines, out, order, options,
                                      {memory, test::temporary_folder("ngram_external")},
                                      [&](const ngram::external_estimate_stage&) { ++stages; });
  REQUIRE(stages == 1 + 4 * order);  // counting, then four passes per order
  return out.str();
}

}  // namespace external_estimate
using namespace external_estimate;

TEST_CASE("gram_sorter sorts by prefix or suffix across many runs and combines equal n-grams", "[ngram][external]") {
  philox rng(lmkit::seed{7});
  for (const auto order : {ngram::gram_order::prefix, ngram::gram_order::suffix}) {
    // 64 KiB of buffer holds ~1800 records of three words: 20000 records make a dozen runs.
    ngram::gram_sorter sorter(3, order, 1 << 16, test::temporary_folder("gram_sorter"), true);
    std::map<std::array<ngram::word_id, 3>, double> expected;
    for (int i = 0; i < 20000; ++i) {
      const std::array<ngram::word_id, 3> w{rng() % 9, rng() % 40, rng() % 40};
      sorter.add(w.data(), 1.0);
      expected[w] += 1.0;
    }
    std::vector<std::pair<std::array<ngram::word_id, 3>, double>> got;
    ngram::gram_record r;
    while (sorter.next(r)) got.push_back({{r.words[0], r.words[1], r.words[2]}, r.a});
    REQUIRE(sorter.runs() > 5);
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      REQUIRE(expected.at(got[i].first) == got[i].second);
      if (i > 0)
        REQUIRE(ngram::compare_grams(got[i - 1].first.data(), got[i].first.data(), 3, order) < 0);
    }
  }
}

TEST_CASE("estimation within a memory budget writes the in-memory estimate's ARPA text exactly", "[ngram][external]") {
  const std::string corpus = zipf_corpus(4000, 3000, 11);
  // Random sentences have too few 3-of-a-kind 4- and 5-grams for discounts: lmplz's fallback
  // applies there (and only there).
  const ngram::kneser_ney_options fallback{.discount_fallback = std::array<float, 3>{0.5f, 1.0f, 1.5f}};
  for (std::size_t order : {1, 2, 3, 5}) {
    INFO("order " << order);
    const std::string expected = in_memory_arpa(corpus, order, fallback);
    // 1 MiB: every sort spills several runs; 256 MiB: one run each.
    for (std::size_t memory : {std::size_t{1} << 20, std::size_t{256} << 20}) {
      INFO("memory " << memory);
      REQUIRE(external_arpa(corpus, order, memory, fallback) == expected);
    }
  }
  REQUIRE(external_arpa("a b\n", 3, 1 << 20, fallback) == in_memory_arpa("a b\n", 3, fallback));
}

TEST_CASE("estimation within a memory budget on KenLM's reference corpus gives the in-memory text", "[ngram][external][kenlm]") {
  const std::string corpus = test::read_file(test::shared_data("kenlm_ref/train_2000.txt"));
  REQUIRE(external_arpa(corpus, 3, 1 << 20) == in_memory_arpa(corpus, 3));
}

TEST_CASE("estimation within a memory budget refuses what the in-memory one refuses", "[ngram][external]") {
  REQUIRE_THROWS_AS(external_arpa("a b\nc <unk> d\n", 3, 1 << 20), format_error);
  REQUIRE_THROWS_AS(external_arpa("a b\n", 3, 1 << 20), argument_error);  // no discounts without the fallback
  std::istringstream lines("a b c\n");
  std::ostringstream out;
  REQUIRE_THROWS_AS(io::write_arpa_estimated_externally(lines, out, 3, {}, {1 << 20, "/nonexistent/lmkit"},
                                                        [](const ngram::external_estimate_stage&) {}),
                    argument_error);
}
