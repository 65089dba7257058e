// BPE training: the incremental trainer against a plain one written here (recount every pair after
// each merge), determinism, the vocabulary written as a rank file and a tokenizer.json and read back.
#include <catch2/catch.hpp>

#include <map>

#include "lmkit/core/rng.hpp"
#include "lmkit/io/hf_tokenizer.hpp"
#include "lmkit/io/tiktoken.hpp"
#include "lmkit/text/bpe_trainer.hpp"
#include "test_support.hpp"

using namespace lmkit::text;

namespace {

/// Zipf-distributed words from a small random alphabet, with punctuation, digits and line breaks.
std::string synthetic_corpus(std::uint64_t seed_value, std::size_t words) {
  lmkit::philox rng(lmkit::seed{seed_value});
  std::vector<std::string> lexicon;
  const std::string letters = "etaoinshrdlucmfwypvbgk";
  for (int i = 0; i < 400; ++i) {
    std::string w;
    const int n = 1 + int(rng() % 8);
    for (int k = 0; k < n; ++k) w += letters[rng() % letters.size()];
    lexicon.push_back(w);
  }
  lexicon.push_back("\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4");  // a Korean word: merges across UTF-8 bytes
  std::string text;
  for (std::size_t i = 0; i < words; ++i) {
    const double u = rng.uniform_double();
    text += lexicon[std::size_t(double(lexicon.size()) * u * u * u)];
    const auto r = rng() % 20;
    text += r == 0 ? ".\n" : r == 1 ? ", " : r == 2 ? " 42 " : " ";
  }
  return text;
}

/// The textbook trainer: count every pair of every piece, merge the most frequent (ties: smallest
/// ids), repeat.
std::vector<std::pair<token_id, token_id>> plain_training(std::string_view text, split_pattern pattern, std::size_t merges) {
  std::map<std::string, std::uint64_t> counts;
  for_each_piece(pattern, text, [&](std::string_view p) { ++counts[std::string(p)]; });
  std::vector<std::pair<std::vector<token_id>, std::uint64_t>> words;
  for (const auto& [p, c] : counts) {
    std::vector<token_id> s;
    for (const char ch : p) s.push_back(static_cast<unsigned char>(ch));
    words.emplace_back(s, c);
  }
  std::vector<std::pair<token_id, token_id>> out;
  for (std::size_t m = 0; m < merges; ++m) {
    std::map<std::pair<token_id, token_id>, std::uint64_t> pairs;
    for (const auto& [s, c] : words)
      for (std::size_t k = 0; k + 1 < s.size(); ++k) pairs[{s[k], s[k + 1]}] += c;
    std::pair<token_id, token_id> best{};
    std::uint64_t best_count = 0;
    for (const auto& [p, c] : pairs)
      if (c > best_count) best = p, best_count = c;  // map order: the smallest pair wins ties
    if (best_count < 2) break;
    out.push_back(best);
    const token_id merged = token_id(256 + m);
    for (auto& [s, c] : words) {
      std::vector<token_id> t;
      for (std::size_t k = 0; k < s.size(); ++k) {
        if (k + 1 < s.size() && s[k] == best.first && s[k + 1] == best.second) {
          t.push_back(merged);
          ++k;
        } else {
          t.push_back(s[k]);
        }
      }
      s = t;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the incremental trainer makes the textbook trainer's merges", "[bpe][train]") {
  const std::string corpus = synthetic_corpus(1, 20000);
  for (const auto pattern : {split_pattern::gpt2, split_pattern::cl100k_base}) {
    bpe_trainer trainer(pattern);
    trainer.add_text(corpus);
    const auto result = trainer.train({.vocab_size = 256 + 400, .pattern = pattern});
    REQUIRE(result.merges.size() == 400);
    CHECK(result.merges == plain_training(corpus, pattern, 400));
    CHECK(result.token_bytes.size() == 656);
    for (std::size_t k = 0; k < result.merges.size(); ++k)
      CHECK(result.token_bytes[256 + k] == result.token_bytes[result.merges[k].first] + result.token_bytes[result.merges[k].second]);
  }
}

TEST_CASE("training is deterministic and its files load back", "[bpe][train]") {
  const std::string corpus = synthetic_corpus(2, 30000);
  auto train_once = [&] {
    bpe_trainer trainer(split_pattern::cl100k_base);
    trainer.add_text(corpus.substr(0, corpus.size() / 2));
    trainer.add_text(corpus.substr(corpus.size() / 2));
    return trainer.train({.vocab_size = 1000, .pattern = split_pattern::cl100k_base});
  };
  const auto a = train_once(), b = train_once();
  CHECK(a.merges == b.merges);
  CHECK(a.corpus_bytes == corpus.size());
  CHECK(a.corpus_tokens < corpus.size() / 3);

  const auto dir = lmkit::test::temporary_folder("bpe_train");
  lmkit::io::write_tiktoken_ranks(dir / "trained.tiktoken", a.token_bytes);
  const std::vector<special_token> specials{{"<|end|>", token_id(a.token_bytes.size())}};
  lmkit::io::write_hf_tokenizer_json(dir / "tokenizer.json", a.token_bytes, a.merges, split_pattern::cl100k_base, specials);

  // The merge-list tokenizer reproduces the trainer's own segmentation of the corpus.
  const auto merge_list = lmkit::io::read_hf_tokenizer_json(dir / "tokenizer.json");
  const auto first_half = merge_list.encode_ordinary(corpus.substr(0, corpus.size() / 2));
  const auto second_half = merge_list.encode_ordinary(corpus.substr(corpus.size() / 2));
  CHECK(first_half.size() + second_half.size() == a.corpus_tokens);
  CHECK(merge_list.decode(first_half) == corpus.substr(0, corpus.size() / 2));
  CHECK(merge_list.special_id("<|end|>") == token_id(1000));

  // The rank file, with tiktoken's rule.
  const auto ranks = lmkit::io::load_tiktoken(dir / "trained.tiktoken", lmkit::io::tiktoken_encoding{split_pattern::cl100k_base, {}});
  CHECK(ranks.vocab_size() == 1000);
  CHECK(ranks.decode(ranks.encode_ordinary(corpus)) == corpus);
  CHECK(a.tokenizer(split_pattern::cl100k_base).encode_ordinary(corpus) == ranks.encode_ordinary(corpus));
}

TEST_CASE("training stops when no pair repeats, and refuses bad input", "[bpe][train]") {
  bpe_trainer trainer;
  trainer.add_text("abcd");
  const auto result = trainer.train({.vocab_size = 5000});
  CHECK(result.merges.empty());  // every pair occurs once
  CHECK(result.corpus_tokens == 4);
  CHECK_THROWS_AS(trainer.train({.vocab_size = 100}), lmkit::argument_error);
  CHECK_THROWS_AS(trainer.add_text("\xC3"), lmkit::format_error);
}
