// Generation (gen/language_model.hpp, generate.hpp, text_stream.hpp, logprobs.hpp, speculative.hpp,
// beam_search.hpp, prompt_template.hpp, chat_template.hpp, lm_classifier.hpp): every model family
// through the one interface, the loop's options, speculative decoding's exactness, beam search,
// prompting and LM-scored classification.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lmkit/gen/beam_search.hpp"
#include "lmkit/gen/chat_template.hpp"
#include "lmkit/gen/lm_classifier.hpp"
#include "lmkit/gen/prompt_template.hpp"
#include "lmkit/gen/generate.hpp"
#include "lmkit/gen/language_model.hpp"
#include "lmkit/gen/logprobs.hpp"
#include "lmkit/gen/sampler_config.hpp"
#include "lmkit/gen/prompt_lookup.hpp"
#include "lmkit/gen/speculative.hpp"
#include "lmkit/gen/text_stream.hpp"
#include "lmkit/io/sentencepiece_model.hpp"
#include "lmkit/models/load_decoder.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using lmkit::token_id;
using lmkit::test::shared_data;
namespace gen = lmkit::gen;
namespace models = lmkit::models;
namespace ngram = lmkit::ngram;

namespace {

/// A synthetic model whose next-token scores depend only on the last token: table[last][next].
/// No batched append (so the token-by-token fallbacks are exercised). Counts the tokens it runs.
class table_lm {
 public:
  table_lm(std::vector<std::vector<float>> table, std::size_t context = 0) : table_(std::move(table)), context_(context) {}
  std::size_t vocab_size() const { return table_.size(); }
  std::size_t context_length() const { return context_; }
  std::size_t position() const { return history_.size(); }
  std::span<const float> append(std::span<const token_id> tokens) {
    REQUIRE(!tokens.empty());
    if (context_) REQUIRE(history_.size() + tokens.size() <= context_);
    for (const token_id t : tokens) REQUIRE(t < table_.size());
    history_.insert(history_.end(), tokens.begin(), tokens.end());
    run += tokens.size();
    return table_[history_.back()];
  }
  void truncate(std::size_t n) {
    REQUIRE(n <= history_.size());
    history_.resize(n);
  }
  std::size_t run = 0;

 private:
  std::vector<std::vector<float>> table_;
  std::size_t context_;
  std::vector<token_id> history_;
};

std::vector<std::vector<float>> random_table(std::size_t vocab, std::uint64_t stream, float spread = 3.0f) {
  std::vector<std::vector<float>> t(vocab);
  for (std::size_t i = 0; i < vocab; ++i) t[i] = lmkit::test::random_floats(vocab, stream * 1000 + i, -spread, spread);
  return t;
}

std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }

float max_abs_difference(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  float m = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] != b[i]) return std::numeric_limits<float>::infinity();
      continue;
    }
    m = std::max(m, std::abs(a[i] - b[i]));
  }
  return m;
}

/// Feeding tokens one by one, all at once (batched), and after a truncate gives the same scores.
template <class M>
void check_model_interface(M& m, const std::vector<token_id>& tokens, float tolerance) {
  const std::size_t vocab = m.vocab_size();
  m.truncate(0);
  std::vector<std::vector<float>> one_by_one;
  for (const token_id t : tokens) one_by_one.push_back(copy(m.append(std::span<const token_id>(&t, 1))));
  CHECK(m.position() == tokens.size());

  m.truncate(0);
  std::vector<float> all(tokens.size() * vocab);
  gen::append_all(m, tokens, all);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    INFO("position " << i);
    CHECK(max_abs_difference(one_by_one[i], std::span<const float>(all).subspan(i * vocab, vocab)) <= tolerance);
  }
  // Rewind to the middle and run the second half again: the same scores as the first time.
  const std::size_t half = tokens.size() / 2;
  m.truncate(half);
  CHECK(m.position() == half);
  const auto again = copy(m.append(std::span<const token_id>(tokens).subspan(half)));
  CHECK(max_abs_difference(again, one_by_one.back()) <= tolerance);
  CHECK_THROWS_AS(m.truncate(tokens.size() + 1), lmkit::argument_error);
  CHECK_THROWS_AS(m.append(std::vector<token_id>{static_cast<token_id>(vocab)}), lmkit::argument_error);
}

ngram::ngram_model word_ngram(const std::string& text, std::size_t order) {
  ngram::kneser_ney_counter counter(order);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) counter.add_line(line);
  return ngram::estimate_kneser_ney(std::move(counter), {.discount_fallback = std::array<float, 3>{0.5f, 1.0f, 1.5f}});
}

const char* tiny_corpus =
    "the cat sat on the mat\n"
    "the dog sat on the log\n"
    "a cat saw the dog on the mat\n"
    "the dog saw a cat\n"
    "on the mat the cat sat\n";

struct llama_fixture {
  fs::path dir = shared_data("fixtures/shakespeare-llama");
  models::decoder model = models::load_decoder(dir / "shakespeare-llama-f32.gguf");
  lmkit::text::sentencepiece_tokenizer tokenizer = lmkit::io::read_sentencepiece_model(dir / "tok512.model");
  nlohmann::json romeo = nlohmann::json::parse(lmkit::test::read_file(dir / "refs" / "romeo.pytorch.json"));
  std::vector<token_id> prompt() const { return romeo["prompt_ids"].get<std::vector<token_id>>(); }
  std::vector<token_id> greedy() const { return romeo["greedy_ids"].get<std::vector<token_id>>(); }
};

}  // namespace

// ------------------------------------------------------------------------------------------------
// 1. every family is a gen::language_model

TEST_CASE("language_model: a pretrained decoder (llama fixture)", "[generate][model]") {
  llama_fixture f;
  gen::decoder_lm lm(f.model, 64);
  CHECK(lm.vocab_size() == 512);
  CHECK(lm.context_length() == 64);
  check_model_interface(lm, f.prompt(), 1e-4f);
  // the first prompt's scores are PyTorch's (the adapter adds nothing wrong)
  lm.truncate(0);
  const auto s = lm.append(f.prompt());
  CHECK(std::max_element(s.begin(), s.end()) - s.begin() == f.greedy()[0]);
  // a full context is an error, never an overwrite
  gen::decoder_lm small(f.model, 4);
  small.append(std::vector<token_id>{1, 2, 3, 4});
  CHECK_THROWS_WITH(small.append(std::vector<token_id>{5}), Catch::Contains("context is full"));
}

TEST_CASE("language_model: a GPT trained here (its blocks' infer over a KV cache)", "[generate][model]") {
  models::gpt<> model({.vocab = 13, .context = 12, .layers = 2, .heads = 2, .dim = 8});
  model.init(lmkit::seed{7});
  gen::gpt_lm lm(model);
  CHECK(lm.context_length() == 12);
  const std::vector<token_id> tokens = {1, 5, 2, 9, 12, 0, 3, 3};
  check_model_interface(lm, tokens, 1e-5f);
  // The cached path gives the training forward's logits at every position.
  lm.truncate(0);
  std::vector<float> cached(tokens.size() * 13);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto row = lm.append(std::span<const token_id>(&tokens[i], 1));
    std::copy(row.begin(), row.end(), cached.begin() + static_cast<std::ptrdiff_t>(i * 13));
  }
  const auto full = model.logits(tokens, {1, tokens.size()}, {.training = false});
  for (std::size_t i = 0; i < cached.size(); ++i) REQUIRE(cached[i] == Approx(full.data()[i]).margin(1e-5));
  lm.truncate(0);
  lm.append(std::vector<token_id>(12, 1));
  CHECK_THROWS_WITH(lm.append(std::vector<token_id>{1}), Catch::Contains("context is full"));
}

TEST_CASE("language_model: an LSTM LM (carried state, truncate re-feeds)", "[generate][model]") {
  models::lstm_lm<> model({.vocab = 13, .embedding = 8, .hidden = 16, .layers = 2});
  model.init(lmkit::seed{3});
  gen::lstm_lm_adapter lm(model);
  CHECK(lm.context_length() == 0);
  check_model_interface(lm, {1, 5, 2, 9, 12, 0, 3, 3, 7, 7}, 1e-5f);
}

TEST_CASE("language_model: a Kneser-Ney n-gram over its words", "[generate][model]") {
  const auto kn = word_ngram(tiny_corpus, 3);
  gen::ngram_lm lm(kn);
  CHECK(lm.vocab_size() == kn.vocab().size());
  std::vector<token_id> words;
  for (const char* w : {"the", "cat", "sat", "on", "the", "dog"}) words.push_back(kn.vocab().find(w));
  check_model_interface(lm, words, 1e-6f);
  // the scores are ln of ngram_model's own probabilities after the same words
  lm.truncate(0);
  std::vector<double> p(kn.vocab().size());
  auto state = kn.begin_sentence();
  for (const token_id w : words) {
    const auto scores = copy(lm.append(std::span<const token_id>(&w, 1)));
    kn.score(state, w);
    kn.next_word_probabilities(state, p);
    for (std::size_t v = 0; v < p.size(); ++v) {
      INFO("word " << kn.vocab().word(v));
      if (p[v] == 0.0) CHECK(std::isinf(scores[v]));
      else CHECK(scores[v] == Approx(std::log(p[v])).margin(1e-5));
    }
  }
  // "sat" is always followed by "on" in the text: the model is sure of it
  lm.truncate(0);
  const auto after_sat = lm.append(std::vector<token_id>{kn.vocab().find("cat"), kn.vocab().find("sat")});
  CHECK(std::max_element(after_sat.begin(), after_sat.end()) - after_sat.begin() == kn.vocab().find("on"));
}

TEST_CASE("language_model: an n-gram over token ids", "[generate][model]") {
  const std::vector<std::vector<token_id>> seqs = {{5, 6, 7, 5, 6, 7, 5, 6, 8}, {7, 5, 6, 7, 9}};
  const auto kn = gen::estimate_token_ngram(seqs, 3);
  auto lm = gen::ngram_lm::over_token_ids(kn, 12);
  CHECK(lm.vocab_size() == 12);
  check_model_interface(lm, {5, 6, 7, 5, 11, 6}, 1e-6f);
  lm.truncate(0);
  const auto s = lm.append(std::vector<token_id>{5, 6});
  CHECK(std::max_element(s.begin(), s.end()) - s.begin() == 7);  // "5 6" is followed by 7 three times in four
  CHECK(std::isinf(s[0]));   // never seen: never proposed
  CHECK(std::isinf(s[11]));
}

// ------------------------------------------------------------------------------------------------
// 2. the loop

TEST_CASE("generate: greedy on the llama fixture is PyTorch's, on 1 and 2 threads", "[generate]") {
  llama_fixture f;
  const auto prompt = f.prompt();
  const auto expected = f.greedy();
  std::vector<std::vector<token_id>> runs;
  for (const int threads : {1, 2}) {
    const lmkit::thread_pool pool(threads);
    gen::decoder_lm lm(f.model, 0, pool);
    auto chain = gen::make_chain({.temperature = 0.0f});
    lmkit::philox rng(lmkit::seed{1});
    const auto out = gen::generate(lm, prompt, chain, rng, {.max_tokens = expected.size()});
    CHECK(out.reason == gen::stop_reason::max_tokens);
    runs.push_back(out.tokens);
  }
  CHECK(runs[0] == expected);
  CHECK(runs[1] == runs[0]);
}

TEST_CASE("generate: text, streaming and stop strings on the llama fixture", "[generate]") {
  llama_fixture f;
  gen::decoder_lm lm(f.model);
  auto chain = gen::make_chain({.temperature = 0.0f});
  const std::string greedy_text = f.romeo["greedy_text"].get<std::string>();
  std::string streamed;
  auto out = gen::generate(lm, f.prompt(), chain, 1,
                           {.max_tokens = 64, .decode = gen::decoder_of(f.tokenizer),
                            .on_text = [&](std::string_view piece) { streamed += piece; }});
  CHECK(out.text == greedy_text);
  CHECK(streamed == greedy_text);

  // "and then," first ends at a known place: the text stops right before it, and nothing of it shows
  const std::string stop = "and then,";
  streamed.clear();
  out = gen::generate(lm, f.prompt(), chain, 1,
                      {.max_tokens = 64, .stop_strings = {"no such text", stop}, .decode = gen::decoder_of(f.tokenizer),
                       .on_text = [&](std::string_view piece) { streamed += piece; }});
  CHECK(out.reason == gen::stop_reason::stop_string);
  CHECK(out.text == greedy_text.substr(0, greedy_text.find(stop)));
  CHECK(streamed == out.text);
  CHECK(out.tokens.size() < 64);

  // a stop string that never occurs runs to max_tokens
  out = gen::generate(lm, f.prompt(), chain, 1,
                      {.max_tokens = 20, .stop_strings = {"zzzz"}, .decode = gen::decoder_of(f.tokenizer)});
  CHECK(out.reason == gen::stop_reason::max_tokens);
  CHECK(out.tokens.size() == 20);

  // a stop token ends it and is left out
  const token_id newline = f.greedy()[0];
  out = gen::generate(lm, f.prompt(), chain, 1, {.max_tokens = 64, .stop_tokens = {newline}});
  CHECK(out.reason == gen::stop_reason::stop_token);
  CHECK(out.stop_token == newline);
  CHECK(out.tokens.empty());
}

TEST_CASE("generate: a context too short is a clear error, or slides when asked", "[generate]") {
  llama_fixture f;
  gen::decoder_lm lm(f.model, 32);
  auto chain = gen::make_chain({.temperature = 0.0f});
  const auto prompt = f.prompt();  // 7 tokens
  CHECK_THROWS_AS(gen::generate(lm, prompt, chain, 1, {.max_tokens = 26}), lmkit::argument_error);
  CHECK_THROWS_WITH(gen::generate(lm, prompt, chain, 1, {.max_tokens = 26}),
                    Catch::Contains("7 tokens") && Catch::Contains("max_tokens 26") && Catch::Contains("context of 32"));
  CHECK(gen::generate(lm, prompt, chain, 1, {.max_tokens = 25}).tokens.size() == 25);

  // sliding: 60 tokens through a context of 32 with a window of 16
  const auto slid = gen::generate(lm, prompt, chain, 1,
                                  {.max_tokens = 60, .on_full_context = gen::context_policy::sliding_window, .window = 16});
  CHECK(slid.tokens.size() == 60);
  // 7 + 25 fill the context; then every 16 new tokens (window 16 + 16 = 32) slide once more
  CHECK(slid.slides == 2);
  // until the first slide it is plain greedy
  const auto plain = gen::generate(lm, prompt, chain, 1, {.max_tokens = 25});
  CHECK(std::equal(plain.tokens.begin(), plain.tokens.end(), slid.tokens.begin()));
  // after a slide the model sees only the window: the next token is the greedy one after those 16
  {
    std::vector<token_id> all = prompt;
    all.insert(all.end(), slid.tokens.begin(), slid.tokens.end());
    const std::size_t at = 7 + 26;  // the token sampled right after the first slide is slid.tokens[26]
    gen::decoder_lm fresh(f.model, 32);
    const auto s = fresh.append(std::span<const token_id>(all).subspan(at - 16, 16));
    CHECK(std::max_element(s.begin(), s.end()) - s.begin() == slid.tokens[26]);
  }
  CHECK_THROWS_AS(gen::generate(lm, prompt, chain, 1,
                                {.max_tokens = 60, .on_full_context = gen::context_policy::sliding_window, .window = 32}),
                  lmkit::argument_error);
}

TEST_CASE("generate: every family through the same loop", "[generate]") {
  auto chain = gen::make_chain({.temperature = 0.0f});
  const auto kn = word_ngram(tiny_corpus, 3);
  gen::ngram_lm ngram_model(kn);
  const std::vector<token_id> the_cat = {kn.vocab().find("the"), kn.vocab().find("cat")};
  const auto out = gen::generate(ngram_model, the_cat, chain, 1, {.max_tokens = 20, .stop_tokens = {ngram::eos_id}});
  REQUIRE(out.tokens.size() >= 3);
  CHECK(out.tokens[0] == kn.vocab().find("sat"));  // "the cat" is followed by "sat on the" in the text
  CHECK(out.tokens[1] == kn.vocab().find("on"));
  CHECK(out.tokens[2] == kn.vocab().find("the"));

  models::lstm_lm<> lstm({.vocab = 13, .embedding = 8, .hidden = 16, .layers = 1});
  lstm.init(lmkit::seed{1});
  gen::lstm_lm_adapter lstm_model(lstm);
  CHECK(gen::generate(lstm_model, std::vector<token_id>{1, 2}, chain, 1, {.max_tokens = 30}).tokens.size() == 30);

  models::gpt<> gpt({.vocab = 13, .context = 8, .layers = 1, .heads = 2, .dim = 8});
  gpt.init(lmkit::seed{1});
  gen::gpt_lm gpt_model(gpt);
  CHECK_THROWS_AS(gen::generate(gpt_model, std::vector<token_id>{1, 2}, chain, 1, {.max_tokens = 30}),
                  lmkit::argument_error);
  const auto slid = gen::generate(gpt_model, std::vector<token_id>{1, 2}, chain, 1,
                                  {.max_tokens = 30, .on_full_context = gen::context_policy::sliding_window});
  CHECK(slid.tokens.size() == 30);
  CHECK(slid.slides > 0);
}

TEST_CASE("generate: sampling follows the seed, and the model's distribution", "[generate]") {
  const auto table = random_table(6, 1, 1.5f);
  table_lm lm(table);
  auto chain = gen::make_chain({});
  const auto a = gen::generate(lm, std::vector<token_id>{0}, chain, 5, {.max_tokens = 40});
  const auto b = gen::generate(lm, std::vector<token_id>{0}, chain, 5, {.max_tokens = 40});
  const auto c = gen::generate(lm, std::vector<token_id>{0}, chain, 6, {.max_tokens = 40});
  CHECK(a.tokens == b.tokens);
  CHECK(a.tokens != c.tokens);
  // the last generated token is not run through the model
  lm.run = 0;
  gen::generate(lm, std::vector<token_id>{0, 1}, chain, 5, {.max_tokens = 10});
  CHECK(lm.run == 2 + 9);
}

// ------------------------------------------------------------------------------------------------
// text pieces

TEST_CASE("text_stream: UTF-8 split over tokens, stop strings held back", "[generate][text]") {
  // tokens are bytes: "é" is two tokens, "€" three
  const gen::detokenizer bytes = [](std::span<const token_id> ids) {
    std::string s;
    for (const token_id t : ids) s += static_cast<char>(t);
    return s;
  };
  auto tokens_of = [](std::string_view s) {
    std::vector<token_id> t;
    for (const char c : s) t.push_back(static_cast<unsigned char>(c));
    return t;
  };
  {
    gen::text_stream stream(bytes, {});
    const std::string text = "caf\xC3\xA9 \xE2\x82\xAC!";
    std::vector<std::string> pieces;
    for (const token_id t : tokens_of(text)) pieces.push_back(stream.push(t));
    pieces.push_back(stream.finish());
    std::string joined;
    for (const auto& p : pieces) joined += p;
    CHECK(joined == text);
    CHECK(pieces[3].empty());            // the first byte of "é" alone shows nothing
    CHECK(pieces[4] == "\xC3\xA9");      // then the whole character
    CHECK(pieces[6].empty());
    CHECK(pieces[7].empty());
    CHECK(pieces[8] == "\xE2\x82\xAC");
  }
  {
    gen::text_stream stream(bytes, {}, {"END", "\n\n"});
    std::string shown;
    for (const token_id t : tokens_of("abc EN")) shown += stream.push(t);
    CHECK(shown == "abc ");  // "EN" may become "END"
    for (const token_id t : tokens_of("Dx")) shown += stream.push(t);
    shown += stream.finish();
    CHECK(stream.stopped());
    CHECK(shown == "abc ");
    CHECK(stream.text() == "abc ");
  }
  {
    gen::text_stream stream(bytes, {}, {"END"});
    std::string shown;
    for (const token_id t : tokens_of("EN!")) shown += stream.push(t);
    CHECK(shown == "EN!");  // not the stop string after all
    CHECK(!stream.stopped());
  }
  CHECK_THROWS_AS(gen::text_stream(bytes, {}, {""}), lmkit::argument_error);
}

// ------------------------------------------------------------------------------------------------
// 5. log-probabilities

TEST_CASE("logprobs: the chosen token's and the alternatives', from the raw scores", "[generate][logprobs]") {
  const std::vector<float> scores = {1.0f, 3.0f, 2.0f, 3.0f, -std::numeric_limits<float>::infinity()};
  const auto r = gen::logprob_of(scores, 2, 3);
  double z = 0;
  for (float s : scores) z += std::exp(double(s));
  CHECK(r.logprob == Approx(2.0 - std::log(z)));
  REQUIRE(r.top.size() == 3);
  CHECK(r.top[0].first == 1);  // tie with 3: the lower id first
  CHECK(r.top[1].first == 3);
  CHECK(r.top[2].first == 2);
  CHECK(r.top[0].second == Approx(3.0 - std::log(z)));

  // in the loop: greedy's tokens are the top alternative, whatever the chain did
  const auto table = random_table(7, 2);
  table_lm lm(table);
  auto chain = gen::make_chain({.temperature = 0.0f});
  const auto out = gen::generate(lm, std::vector<token_id>{0}, chain, 1, {.max_tokens = 10, .logprobs = 2});
  REQUIRE(out.logprobs.size() == 10);
  for (std::size_t i = 0; i < 10; ++i) {
    CHECK(out.logprobs[i].token == out.tokens[i]);
    CHECK(out.logprobs[i].top[0].first == out.tokens[i]);
    CHECK(out.logprobs[i].logprob < 0.0f);
    CHECK(out.logprobs[i].top[1].second <= out.logprobs[i].top[0].second);
  }
}

// ------------------------------------------------------------------------------------------------
// 3. speculative decoding

TEST_CASE("speculative: greedy output is the target's greedy output (llama fixture)", "[generate][speculative]") {
  llama_fixture f;
  const auto prompt = f.prompt();
  const auto expected = f.greedy();
  auto greedy = gen::make_chain({.temperature = 0.0f});
  lmkit::philox rng(lmkit::seed{1});

  SECTION("draft: the same model quantised to q8_0") {
    const auto q8 = models::load_decoder(f.dir / "shakespeare-llama-q8_0.gguf");
    for (const std::size_t k : {1, 3, 6}) {
      gen::decoder_lm target(f.model), draft(q8);
      const auto out = gen::speculative_generate(target, draft, prompt, greedy, rng,
                                                 {.max_tokens = expected.size(), .draft_tokens = k});
      INFO("k = " << k << ", acceptance " << out.acceptance_rate());
      CHECK(out.tokens == expected);
      CHECK(out.acceptance_rate() > 0.5);  // a quantised copy agrees on most argmaxes
      CHECK(out.rounds < expected.size());
    }
  }
  SECTION("draft: an n-gram over token ids of the model's own greedy text") {
    std::vector<token_id> text = prompt;
    text.insert(text.end(), expected.begin(), expected.end());
    const auto kn = gen::estimate_token_ngram(std::vector<std::vector<token_id>>{text}, 4);
    auto draft = gen::ngram_lm::over_token_ids(kn, 512);
    gen::decoder_lm target(f.model);
    const auto out = gen::speculative_generate(target, draft, prompt, greedy, rng, {.max_tokens = expected.size(), .draft_tokens = 4});
    CHECK(out.tokens == expected);
    CHECK(out.accepted <= out.drafted);
    CHECK(out.acceptance_rate() > 0.3);
  }
  SECTION("draft: prompt lookup (the continuation of the latest earlier match)") {
    for (const std::size_t k : {1, 4}) {
      gen::decoder_lm target(f.model);
      gen::prompt_lookup_draft draft(512);
      const auto out = gen::speculative_generate(target, draft, prompt, greedy, rng,
                                                 {.max_tokens = expected.size(), .draft_tokens = k});
      INFO("k = " << k << ", acceptance " << out.acceptance_rate());
      CHECK(out.tokens == expected);
      CHECK(out.accepted <= out.drafted);
      CHECK(out.accepted > 0);  // the fixture's greedy text repeats itself ("and then, and then")
      CHECK(draft.matches() > 0);
    }
  }
  SECTION("a stop token ends it, as in plain greedy") {
    gen::decoder_lm target(f.model), draft(f.model);
    const token_id stop = expected[5];
    const auto out = gen::speculative_generate(target, draft, prompt, greedy, rng, {.max_tokens = 64, .stop_tokens = {stop}});
    CHECK(out.reason == gen::stop_reason::stop_token);
    CHECK(out.tokens == std::vector<token_id>(expected.begin(), expected.begin() + 5));
    CHECK(out.acceptance_rate() == 1.0);  // the draft is the target
  }
  SECTION("a stop string ends it with generate's tokens, text and streamed pieces") {
    const auto q8 = models::load_decoder(f.dir / "shakespeare-llama-q8_0.gguf");
    const std::string stop = "and then,";
    std::string plain_streamed, streamed;
    gen::decoder_lm plain_lm(f.model);
    const auto plain = gen::generate(plain_lm, prompt, greedy, 1,
                                     {.max_tokens = 64, .stop_strings = {stop}, .decode = gen::decoder_of(f.tokenizer),
                                      .on_text = [&](std::string_view piece) { plain_streamed += piece; }});
    REQUIRE(plain.reason == gen::stop_reason::stop_string);
    for (const std::size_t k : {1, 4}) {
      INFO("k = " << k);
      streamed.clear();
      gen::decoder_lm target(f.model), draft(q8);
      const auto out = gen::speculative_generate(
          target, draft, prompt, greedy, rng,
          {.max_tokens = 64, .draft_tokens = k, .stop_strings = {"no such text", stop},
           .decode = gen::decoder_of(f.tokenizer), .on_text = [&](std::string_view piece) { streamed += piece; }});
      CHECK(out.reason == gen::stop_reason::stop_string);
      CHECK(out.tokens == plain.tokens);
      CHECK(out.text == plain.text);
      CHECK(streamed == plain_streamed);
      CHECK(out.text.find(stop) == std::string::npos);
    }
    gen::decoder_lm target(f.model), draft(q8);
    CHECK_THROWS_AS(gen::speculative_generate(target, draft, prompt, greedy, rng, {.stop_strings = {stop}}),
                    lmkit::argument_error);  // no decode function
  }
}

namespace {

/// sum (observed - expected)^2 / expected over the cells.
double chi_square(const std::vector<double>& observed, const std::vector<double>& expected_p, double draws) {
  double chi = 0.0;
  for (std::size_t i = 0; i < observed.size(); ++i) {
    const double e = expected_p[i] * draws;
    if (e == 0.0) {
      CHECK(observed[i] == 0.0);
      continue;
    }
    chi += (observed[i] - e) * (observed[i] - e) / e;
  }
  return chi;
}

/// The distribution a chain leaves over `scores` (for the expected counts).
std::vector<double> chain_probabilities(const gen::dynamic_chain& chain, std::span<const float> scores,
                                        std::span<const token_id> history) {
  lmkit::philox rng(lmkit::seed{0});
  gen::candidates work;
  std::vector<double> p;
  gen::chain_distribution(chain, scores, history, rng, work, p);
  return p;
}

}  // namespace

TEST_CASE("speculative: sampling keeps the target's distribution (chi-square, 100k draws)", "[generate][speculative]") {
  constexpr std::size_t V = 5;
  const auto target_table = random_table(V, 11, 2.0f);
  const auto draft_table = random_table(V, 12, 2.0f);  // a different, wrong model
  const std::vector<token_id> prompt = {0};
  for (const gen::sampler_config& config : {gen::sampler_config{}, gen::sampler_config{.temperature = 0.7f, .top_k = 3}}) {
    INFO("temperature " << config.temperature << ", top_k " << config.top_k);
    const auto chain = gen::make_chain(config);
    // expected: p(a | 0) p(b | a) for the first two tokens
    std::vector<double> expected(V * V);
    const auto first = chain_probabilities(chain, target_table[0], prompt);
    for (token_id a = 0; a < V; ++a) {
      const std::vector<token_id> h = {0, a};
      const auto second = chain_probabilities(chain, target_table[a], h);
      for (token_id b = 0; b < V; ++b) expected[a * V + b] = first[a] * second[b];
    }
    table_lm target(target_table), draft(draft_table);
    lmkit::philox rng(lmkit::seed{99});
    constexpr std::size_t draws = 100000;
    std::vector<double> observed(V * V);
    std::size_t drafted = 0, accepted = 0;
    for (std::size_t i = 0; i < draws; ++i) {
      const auto out = gen::speculative_generate(target, draft, prompt, chain, rng, {.max_tokens = 2, .draft_tokens = 3});
      REQUIRE(out.tokens.size() == 2);
      ++observed[out.tokens[0] * V + out.tokens[1]];
      drafted += out.drafted;
      accepted += out.accepted;
    }
    // 24 degrees of freedom (fewer with top-k's zeros): 51.2 is the 0.1% point of chi-square(24)
    CHECK(chi_square(observed, expected, draws) < 51.2);
    // and the draft's own distribution is far from it (the test can tell them apart)
    std::vector<double> draft_expected(V * V);
    const auto dfirst = chain_probabilities(chain, draft_table[0], prompt);
    for (token_id a = 0; a < V; ++a) {
      const std::vector<token_id> h = {0, a};
      const auto second = chain_probabilities(chain, draft_table[a], h);
      for (token_id b = 0; b < V; ++b) draft_expected[a * V + b] = dfirst[a] * second[b];
    }
    for (std::size_t c = 0; c < V * V; ++c) if (draft_expected[c] == 0.0 && expected[c] > 0.0) draft_expected[c] = 1e-9;
    CHECK(chi_square(observed, draft_expected, draws) > 1000.0);
    const double rate = double(accepted) / double(drafted);
    CHECK(rate > 0.0);
    CHECK(rate < 1.0);
  }
}

// ------------------------------------------------------------------------------------------------
// 4. beam search

TEST_CASE("beam search: width 1 is greedy (llama fixture)", "[generate][beam]") {
  llama_fixture f;
  gen::decoder_lm lm(f.model);
  const auto expected = f.greedy();
  const auto beams = gen::beam_search(lm, f.prompt(), {.width = 1, .max_tokens = 24});
  REQUIRE(beams.size() == 1);
  CHECK(beams[0].tokens == std::vector<token_id>(expected.begin(), expected.begin() + 24));
  // and width 3 finds a continuation at least as likely as greedy's on this model
  const auto wide = gen::beam_search(lm, f.prompt(), {.width = 3, .max_tokens = 24, .length_penalty = 0.0f});
  REQUIRE(wide.size() == 3);
  CHECK(wide[0].logprob >= beams[0].logprob - 1e-9);
  CHECK(wide[0].score >= wide[1].score);
  CHECK(wide[1].score >= wide[2].score);
}

TEST_CASE("beam search: beats greedy where greedy is short-sighted; wide enough it is exhaustive", "[generate][beam]") {
  // token 1 is likelier first (0.6 vs 0.4) but leads to a flat distribution; 2 leads to a sure one
  auto lg = [](double p) { return static_cast<float>(std::log(p)); };
  const std::vector<std::vector<float>> table = {
      {lg(1e-6), lg(0.6), lg(0.4)},
      {lg(1.0 / 3), lg(1.0 / 3), lg(1.0 / 3)},
      {lg(0.05), lg(0.05), lg(0.9)},
  };
  table_lm lm(table);
  const std::vector<token_id> prompt = {0};
  const auto greedy = gen::beam_search(lm, prompt, {.width = 1, .max_tokens = 2, .length_penalty = 0.0f});
  const auto beams = gen::beam_search(lm, prompt, {.width = 2, .max_tokens = 2, .length_penalty = 0.0f});
  CHECK(greedy[0].tokens[0] == 1);
  CHECK(beams[0].tokens == std::vector<token_id>{2, 2});
  CHECK(beams[0].logprob == Approx(std::log(0.4 * 0.9)).epsilon(1e-5));
  CHECK(beams[0].score > greedy[0].score);

  // width = V^(T-1) keeps every prefix: the best beam is the best sequence by brute force
  constexpr std::size_t V = 4, T = 3;
  const auto random = random_table(V, 21, 2.0f);
  table_lm r(random);
  const auto all = gen::beam_search(r, prompt, {.width = V * V, .max_tokens = T, .length_penalty = 0.0f});
  double best = -1e300;
  std::vector<token_id> best_seq;
  std::vector<float> lp(V);
  for (token_id a = 0; a < V; ++a)
    for (token_id b = 0; b < V; ++b)
      for (token_id c = 0; c < V; ++c) {
        double sum = 0;
        token_id prev = 0;
        for (const token_id t : {a, b, c}) {
          gen::log_softmax(random[prev], lp);
          sum += lp[t];
          prev = t;
        }
        if (sum > best) best = sum, best_seq = {a, b, c};
      }
  CHECK(all[0].tokens == best_seq);
  CHECK(all[0].logprob == Approx(best).epsilon(1e-5));
}

TEST_CASE("beam search: stop tokens end hypotheses, scored with HF's length penalty", "[generate][beam]") {
  const auto table = random_table(6, 31, 2.0f);
  table_lm lm(table);
  std::size_t finished = 0;
  for (const float alpha : {0.0f, 1.0f, 2.0f, -1.0f}) {
    INFO("length_penalty " << alpha);
    const auto beams = gen::beam_search(lm, std::vector<token_id>{0}, {.width = 4, .max_tokens = 12, .length_penalty = alpha, .stop_tokens = {5}});
    REQUIRE(beams.size() == 4);
    for (std::size_t i = 0; i < beams.size(); ++i) {
      const auto& h = beams[i];
      CHECK(h.score == Approx(h.logprob / std::pow(double(h.tokens.size()), double(alpha))));
      finished += h.finished;
      if (h.finished) CHECK(h.tokens.back() == 5);
      else CHECK(h.tokens.size() == 12);
      CHECK(std::count(h.tokens.begin(), h.tokens.end(), token_id{5}) == (h.finished ? 1 : 0));
      if (i > 0) CHECK(beams[i - 1].score >= h.score);
    }
  }
  CHECK(finished > 0);  // the stop token did end some
  CHECK_THROWS_AS(gen::beam_search(lm, std::vector<token_id>{0}, {.width = 0}), lmkit::argument_error);
}

// ------------------------------------------------------------------------------------------------
// 6. prompting and LM-scored classification

TEST_CASE("prompts: few-shot layout and chat templates", "[generate][prompt]") {
  const gen::few_shot_prompt zero{.instruction = "Judge the review."};
  CHECK(zero.render("Cold soup.") == "Judge the review.\n\nReview: Cold soup.\nSentiment:");
  gen::few_shot_prompt two = zero;
  two.examples = {{"Lovely.", "positive"}, {"Awful.", "negative"}};
  CHECK(two.render("Fine.") ==
        "Judge the review.\n\nReview: Lovely.\nSentiment: positive\n\nReview: Awful.\nSentiment: negative\n\n"
        "Review: Fine.\nSentiment:");

  const std::vector<gen::chat_message> chat = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}};
  CHECK(gen::apply_chat_template(gen::chat_format::chatml, chat) ==
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
        "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
  CHECK(gen::apply_chat_template(gen::chat_format::llama2, chat) ==
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]");
  CHECK_THROWS_AS(gen::apply_chat_template(gen::chat_format::llama2, {{"assistant", "x"}}), lmkit::argument_error);
  CHECK_THROWS_WITH(gen::apply_chat_template(gen::chat_format::chatml, {{"robot", "x"}}), Catch::Contains("robot"));

  // Jinja templates as GGUF files carry them
  CHECK(gen::recognise_chat_template("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                                     "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}") == gen::chat_format::chatml);
  CHECK(gen::recognise_chat_template("{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% if system %}<<SYS>>{% endif %}") ==
        gen::chat_format::llama2);
  CHECK_THROWS_WITH(gen::recognise_chat_template("{{ '<start_of_turn>' + role + '\\n' }}"),
                    Catch::Contains("not recognised") && Catch::Contains("<start_of_turn>"));
}

namespace {

const std::vector<std::string> nouns = {"soup", "film", "hotel", "book", "waiter", "song", "car", "room"};
const std::vector<std::string> good = {"superb", "lovely", "brilliant", "charming"};
const std::vector<std::string> bad = {"awful", "bland", "rude", "broken"};

/// Lines "review the NOUN was CUE answer LABEL" for the (noun, cue) pairs with (n + c) even; the
/// others are held out. `swap` gives every line the other label.
std::string review_corpus(bool swap) {
  std::string text;
  for (std::size_t n = 0; n < nouns.size(); ++n)
    for (std::size_t c = 0; c < good.size(); ++c) {
      if ((n + c) % 2) continue;
      text += "review the " + nouns[n] + " was " + good[c] + " answer " + (swap ? "negative" : "positive") + "\n";
      text += "review the " + nouns[n] + " was " + bad[c] + " answer " + (swap ? "positive" : "negative") + "\n";
    }
  return text;
}

}  // namespace

TEST_CASE("classifier: an n-gram where the label always follows the cue word", "[generate][classify]") {
  const std::vector<std::string> labels = {" positive", " negative"};
  for (const bool swap : {false, true}) {
    const auto kn = word_ngram(review_corpus(swap), 3);
    gen::ngram_lm lm(kn);
    const gen::tokenize_fn encode = [&](std::string_view text) {
      std::vector<token_id> ids;
      ngram::for_each_word(text, [&](std::string_view w) { ids.push_back(kn.vocab().find(w)); });
      return ids;
    };
    for (const std::size_t k : {0, 2}) {
      gen::few_shot_prompt prompt{.input_prefix = "review ", .output_prefix = " answer", .separator = " "};
      if (k == 2) prompt.examples = {{"the soup was superb", "positive"}, {"the soup was awful", "negative"}};
      std::size_t right = 0, total = 0;
      for (std::size_t n = 0; n < nouns.size(); ++n)
        for (std::size_t c = 0; c < good.size(); ++c) {
          if ((n + c) % 2 == 0) continue;  // held out: this noun never met this cue in training
          for (const bool positive : {true, false}) {
            const std::string review = "the " + nouns[n] + " was " + (positive ? good[c] : bad[c]);
            const auto r = gen::classify_by_likelihood(lm, encode, prompt.render(review), labels, k == 2);
            REQUIRE(r.logprob.size() == 2);
            CHECK(r.tokens == std::vector<std::size_t>{1, 1});
            right += (r.best == 0) == positive;
            ++total;
          }
        }
      INFO("swapped labels " << swap << ", k = " << k);
      CHECK(total == 32);
      // the classifier follows the model: all right, or with the labels swapped in training, all wrong
      CHECK(right == (swap ? 0u : total));
    }
  }
}

TEST_CASE("classifier: continuation log-likelihoods are the model's, sharing the prompt", "[generate][classify]") {
  const auto table = random_table(7, 41, 2.0f);
  table_lm lm(table);
  gen::continuation_scorer scorer(lm);
  const std::vector<token_id> context = {0, 3, 4}, a = {1, 2}, b = {1, 5, 6};
  std::vector<float> lp(7);
  auto expected = [&](std::vector<token_id> cont) {
    double sum = 0;
    token_id prev = context.back();
    for (const token_id t : cont) {
      gen::log_softmax(table[prev], lp);
      sum += lp[t];
      prev = t;
    }
    return sum;
  };
  CHECK(scorer.logprob(context, a) == Approx(expected(a)));
  lm.run = 0;
  CHECK(scorer.logprob(context, b) == Approx(expected(b)));
  CHECK(lm.run == 3);  // the context's last token and b's first two; the rest of the context was kept
  CHECK(scorer.logprob(context, a) == Approx(expected(a)));
}

TEST_CASE("prompt_lookup_draft proposes the continuation of the latest earlier match", "[generate][speculative]") {
  gen::prompt_lookup_draft draft(10, 3);
  static_assert(gen::language_model<gen::prompt_lookup_draft>);
  auto best = [](std::span<const float> s) { return std::size_t(std::max_element(s.begin(), s.end()) - s.begin()); };
  const std::vector<token_id> text{1, 2, 3, 4, 1, 2, 3, 5, 1, 2};
  auto scores = draft.append(text);
  CHECK(best(scores) == 3);  // "1 2" last seen followed by 3 (at 4..6 the latest; 0..2 earlier)
  CHECK(std::count(scores.begin(), scores.end(), 0.0f) == 1);
  scores = draft.append(std::vector<token_id>{3});
  CHECK(best(scores) == 5);  // "1 2 3" latest followed by 5
  draft.truncate(3);         // 1 2 3
  scores = draft.append(std::vector<token_id>{9});
  CHECK(best(scores) == 9);  // no earlier 9: repeat the last token
  CHECK_THROWS_AS(draft.append(std::vector<token_id>{10}), lmkit::argument_error);
  CHECK_THROWS_AS(draft.truncate(99), lmkit::argument_error);
}
