// The tokenizer concept, and the character- and word-level tokenizers.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "lmkit/text/bpe_tokenizer.hpp"
#include "lmkit/text/char_tokenizer.hpp"
#include "lmkit/text/tokenizer.hpp"
#include "lmkit/text/word_tokenizer.hpp"
#include "test_support.hpp"

using lmkit::text::token_id;

static_assert(lmkit::text::tokenizer<lmkit::text::char_tokenizer>);
static_assert(lmkit::text::tokenizer<lmkit::text::word_tokenizer>);
static_assert(lmkit::text::tokenizer<lmkit::text::bpe_tokenizer>);

TEST_CASE("char tokenizer: sorted characters of the corpus, round trip, unknowns", "[tokenizer][char]") {
  using lmkit::text::char_tokenizer;
  const std::string corpus = "hello, wörld! 한국\n";
  const auto tok = char_tokenizer::from_corpus(corpus);
  CHECK(tok.vocab_size() == 14);  // \n space ! , d e h l o r w ö 한 국
  CHECK(tok.alphabet() == "\n !,dehlorwö국한");
  const auto ids = tok.encode("hold 한");
  CHECK(ids == std::vector<token_id>{6, 8, 7, 4, 1, 13});
  CHECK(tok.decode(ids) == "hold 한");
  CHECK_THROWS_WITH(tok.encode("hex"), Catch::Contains("U+78") && Catch::Contains("at byte 2"));
  CHECK_THROWS_AS(tok.encode("\xFF"), lmkit::format_error);
  CHECK_THROWS_AS(tok.decode(std::vector<token_id>{14}), lmkit::argument_error);

  const auto lenient = char_tokenizer::from_alphabet(tok.alphabet(), char_tokenizer::unknown::map_to_unk);
  CHECK(lenient.vocab_size() == 15);
  CHECK(lenient.encode("hex") == std::vector<token_id>{6, 5, 14});
  CHECK(lenient.decode(std::vector<token_id>{6, 14}) == "h\xEF\xBF\xBD");
  CHECK_THROWS_WITH(char_tokenizer::from_alphabet("abca"), Catch::Contains("appears twice"));
  CHECK(tok.special_tokens().empty());
  CHECK(lenient.special_tokens() == std::vector<lmkit::text::special_token>{{"<unk>", 14}});
}

TEST_CASE("char tokenizer: Tiny Shakespeare has nanoGPT's 65 characters", "[tokenizer][char]") {
  std::ifstream in(lmkit::test::shared_data("tinyshakespeare/input.txt"), std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  const auto tok = lmkit::text::char_tokenizer::from_corpus(s.str());
  CHECK(tok.vocab_size() == 65);
  CHECK(tok.alphabet().substr(0, 13) == "\n !$&',-.3:;?");
  CHECK(tok.decode(tok.encode(s.str())) == s.str());
}

TEST_CASE("word tokenizer: frequent words, <unk>, limits", "[tokenizer][word]") {
  using lmkit::text::word_tokenizer;
  const auto tok = word_tokenizer::from_corpus("b a c a b a\nd  e\te", {.max_words = 4});
  // Counts: a 3, b 2, e 2, c 1, d 1 -> <unk> a b e
  CHECK(tok.words() == std::vector<std::string>{"<unk>", "a", "b", "e"});
  CHECK(tok.encode("  a z\ne\n") == std::vector<token_id>{1, 0, 3});
  CHECK(tok.decode(std::vector<token_id>{1, 0, 3}) == "a <unk> e");
  const auto common = word_tokenizer::from_corpus("x x y", {.min_count = 2});
  CHECK(common.vocab_size() == 2);
  CHECK_THROWS_AS(word_tokenizer(std::vector<std::string>{"a"}), lmkit::argument_error);
  CHECK_THROWS_WITH(word_tokenizer(std::vector<std::string>{"<unk>", "a b"}), Catch::Contains("white space"));
  CHECK_THROWS_AS(tok.decode(std::vector<token_id>{4}), lmkit::argument_error);
  CHECK(tok.special_tokens() == std::vector<lmkit::text::special_token>{{"<unk>", 0}});
}
