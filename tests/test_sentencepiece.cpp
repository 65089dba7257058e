// SentencePiece-style BPE: the fixture Llama's tokenizer read from its .model file, from llama2.c's
// tokenizer.bin and from the Hugging Face folder gives the ids of the real SentencePiece
// (spm_encode) and of the PyTorch reference prompts; decoding inverts encoding; bad files fail.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <type_traits>
#include <variant>

#include <nlohmann/json.hpp>

#include "lmkit/io/hf_tokenizer.hpp"
#include "lmkit/io/llama2c_tokenizer.hpp"
#include "lmkit/io/sentencepiece_model.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/text/tokenizer.hpp"
#include "test_support.hpp"

using lmkit::text::token_id;
using lmkit::test::shared_data;

static_assert(lmkit::text::tokenizer<lmkit::text::sentencepiece_tokenizer>);

namespace {

const std::filesystem::path fixture = "fixtures/shakespeare-llama";

std::vector<lmkit::text::sentencepiece_tokenizer> all_three() {
  std::vector<lmkit::text::sentencepiece_tokenizer> t;
  t.push_back(lmkit::io::read_sentencepiece_model(shared_data(fixture / "tok512.model")));
  t.push_back(lmkit::io::read_llama2c_tokenizer(shared_data(fixture / "tokenizer.bin")));
  t.push_back(lmkit::io::read_sentencepiece_model(shared_data(fixture / "hf/tokenizer.model")));
  return t;
}

}  // namespace

TEST_CASE("the fixture's prompts encode to the reference ids (BOS first)", "[sentencepiece]") {
  for (const auto& tok : all_three()) {
    CHECK(tok.vocab_size() == 512);
    CHECK(tok.bos_id() == token_id(1));
    CHECK(tok.eos_id() == token_id(2));
    const auto specials = tok.special_tokens();
    REQUIRE(specials.size() == 3);
    CHECK(specials[0].id == 0);
    CHECK(specials[1].id == 1);
    for (const std::string name : {"romeo", "citizen"}) {
      const auto ref = nlohmann::json::parse(lmkit::test::read_file(shared_data(fixture / "refs" / (name + ".pytorch.json"))));
      const std::string prompt = ref["prompt"];
      INFO(name);
      CHECK(tok.encode(prompt, {.add_bos = true}) == ref["prompt_ids"].get<std::vector<token_id>>());
      // The greedy continuation decodes to the reference text (it follows the prompt: no dummy space).
      const auto greedy = ref["greedy_ids"].get<std::vector<token_id>>();
      std::vector<token_id> whole = ref["prompt_ids"].get<std::vector<token_id>>();
      whole.insert(whole.end(), greedy.begin(), greedy.end());
      CHECK(tok.decode(whole) == prompt + ref["greedy_text"].get<std::string>());
    }
  }
}

TEST_CASE("ids equal SentencePiece's spm_encode on written and random lines", "[sentencepiece]") {
  const auto cases = nlohmann::json::parse(lmkit::test::read_file(std::filesystem::path(LMKIT_TEST_DATA) / "sentencepiece_cases.json"));
  REQUIRE(cases.size() > 250);
  for (const auto& tok : all_three()) {
    for (const auto& c : cases) {
      const std::string text = c["text"];
      INFO(text);
      const auto ids = tok.encode(text);
      CHECK(ids == c["ids"].get<std::vector<token_id>>());
      CHECK(tok.decode(ids) == text);
    }
  }
}

TEST_CASE("decode(encode(x)) == x for random text, newlines and bytes outside the vocabulary", "[sentencepiece]") {
  const auto tok = lmkit::io::read_llama2c_tokenizer(shared_data(fixture / "tokenizer.bin"));
  lmkit::philox rng(lmkit::seed{5});
  for (int k = 0; k < 300; ++k) {
    std::string text;
    const int n = 1 + int(rng() % 80);
    for (int i = 0; i < n; ++i) {
      const std::uint32_t r = rng();
      char32_t c = r % 3 == 0 ? char32_t(0x20 + (r >> 8) % 0x5F) : r % 3 == 1 ? U"\n \t한é😀"[(r >> 8) % 7] : char32_t((r >> 8) % 0x110000);
      if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
      lmkit::text::append_utf8(text, c);
    }
    INFO(k);
    REQUIRE(tok.decode(tok.encode(text)) == text);
  }
  CHECK(tok.encode("").empty());
  CHECK(tok.encode("\n") == std::vector<token_id>{448 /* ▁ */, 13 /* <0x0A> */});
  CHECK_THROWS_AS(tok.decode(std::vector<token_id>{512}), lmkit::argument_error);
  CHECK_THROWS_AS(tok.encode("\xC3"), lmkit::format_error);
}

TEST_CASE("a model without byte fallback makes one <unk> of a run of unknown characters", "[sentencepiece]") {
  using lmkit::text::piece_type;
  std::vector<lmkit::text::sentencepiece_piece> pieces{
      {"<unk>", 0, piece_type::unknown}, {"<s>", 0, piece_type::control}, {"</s>", 0, piece_type::control},
      {"\xE2\x96\x81" "a", -1, piece_type::normal}, {"\xE2\x96\x81", -2, piece_type::normal}, {"a", -3, piece_type::normal},
      {"b", -4, piece_type::normal}};
  const lmkit::text::sentencepiece_tokenizer tok(pieces, {.byte_fallback = false, .unk_id = 0, .bos_id = 1, .eos_id = 2});
  CHECK(tok.encode("a xyz b") == std::vector<token_id>{3, 4, 0, 4, 6});
  CHECK(tok.decode(std::vector<token_id>{3, 4, 0}) == "a  \xE2\x81\x87 ");
  CHECK(tok.encode("ab", {.add_bos = true, .add_eos = true}) == std::vector<token_id>{1, 3, 6, 2});

  // A piece that spans the start of a word ("b▁") makes the whole text one merge.
  pieces.push_back({"b\xE2\x96\x81", -0.5f, piece_type::normal});
  lmkit::text::sentencepiece_options no_bos;
  no_bos.byte_fallback = false;
  no_bos.unk_id = 0;
  const lmkit::text::sentencepiece_tokenizer spanning(pieces, no_bos);
  CHECK_THROWS_WITH(spanning.encode("a", {.add_bos = true}), Catch::Contains("no BOS token"));
  pieces.push_back({"ab", std::nanf(""), piece_type::normal});
  CHECK_THROWS_WITH(lmkit::text::sentencepiece_tokenizer(pieces, no_bos), Catch::Contains("piece 8 has score NaN"));
  CHECK(spanning.encode("ab ab") == std::vector<token_id>{3, 7, 5, 6});
  CHECK(spanning.decode(spanning.encode("ab ab")) == "ab ab");
}

TEST_CASE("bad SentencePiece and llama2.c files are errors naming the file", "[sentencepiece][files]") {
  const std::string model = lmkit::test::read_file(shared_data(fixture / "tok512.model"));
  CHECK_THROWS_WITH(lmkit::io::parse_sentencepiece_model(model.substr(0, model.size() / 2), "m.model"),
                    Catch::Contains("m.model") && Catch::Contains("past the end"));
  CHECK_THROWS_WITH(lmkit::io::parse_sentencepiece_model(std::string("\x0A\x05\x0A\x01", 4), "m.model"),
                    Catch::Contains("m.model"));
  CHECK_THROWS_WITH(lmkit::io::parse_sentencepiece_model("", "m.model"), Catch::Contains("not BPE"));
  const std::string bin = lmkit::test::read_file(shared_data(fixture / "tokenizer.bin"));
  CHECK_THROWS_WITH(lmkit::io::parse_llama2c_tokenizer(bin.substr(0, bin.size() - 3), "t.bin"),
                    Catch::Contains("t.bin: piece 511"));
  CHECK_THROWS_WITH(lmkit::io::parse_llama2c_tokenizer(bin.substr(0, 2), "t.bin"), Catch::Contains("header"));
  std::string huge = bin;
  huge[4 + 4] = '\x7F';  // piece 0's length
  CHECK_THROWS_WITH(lmkit::io::parse_llama2c_tokenizer(huge, "t.bin"), Catch::Contains("t.bin: piece 0 has length"));
}

namespace {

/// The fixture's SentencePiece model written as a Hugging Face tokenizer.json, the way Hugging
/// Face's Llama converter writes one: the pieces as the vocabulary, and for each piece (best score
/// first) every split into two pieces as a merge.
nlohmann::json llama_tokenizer_json(bool metaspace_pre_tokenizer) {
  const auto spm = lmkit::io::read_sentencepiece_model(shared_data(fixture / "tok512.model"));
  const auto& pieces = spm.pieces();
  nlohmann::json vocab = nlohmann::json::object();
  std::map<std::string, std::size_t> id_of;
  for (std::size_t id = 0; id < pieces.size(); ++id) {
    vocab[pieces[id].text] = id;
    id_of[pieces[id].text] = id;
  }
  std::vector<std::size_t> by_score;
  for (std::size_t id = 0; id < pieces.size(); ++id)
    if (pieces[id].type == lmkit::text::piece_type::normal) by_score.push_back(id);
  std::stable_sort(by_score.begin(), by_score.end(), [&](auto a, auto b) { return pieces[a].score > pieces[b].score; });
  nlohmann::json merges = nlohmann::json::array();
  for (const auto id : by_score) {
    const std::string& p = pieces[id].text;
    for (std::size_t cut = 1; cut < p.size(); ++cut) {
      const auto l = id_of.find(p.substr(0, cut)), r = id_of.find(p.substr(cut));
      if (l != id_of.end() && r != id_of.end() && pieces[l->second].type == lmkit::text::piece_type::normal &&
          pieces[r->second].type == lmkit::text::piece_type::normal)
        merges.push_back(p.substr(0, cut) + " " + p.substr(cut));
    }
  }
  nlohmann::json j;
  j["added_tokens"] = {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                       {{"id", 1}, {"content", "<s>"}, {"special", true}},
                       {{"id", 2}, {"content", "</s>"}, {"special", true}}};
  if (metaspace_pre_tokenizer) {
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", false}};
  } else {
    j["normalizer"] = {{"type", "Sequence"},
                       {"normalizers",
                        {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                         {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}};
    j["pre_tokenizer"] = nullptr;
  }
  j["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"fuse_unk", true},
                {"byte_fallback", true}, {"vocab", vocab}, {"merges", merges}};
  return j;
}

}  // namespace

TEST_CASE("a SentencePiece-style tokenizer.json gives SentencePiece's ids", "[sentencepiece][hf]") {
  const auto cases = nlohmann::json::parse(lmkit::test::read_file(std::filesystem::path(LMKIT_TEST_DATA) / "sentencepiece_cases.json"));
  for (const bool metaspace : {false, true}) {
    const auto any = lmkit::io::parse_hf_tokenizer(llama_tokenizer_json(metaspace).dump(), "tokenizer.json");
    REQUIRE(std::holds_alternative<lmkit::text::sentencepiece_tokenizer>(any));
    const auto& tok = std::get<lmkit::text::sentencepiece_tokenizer>(any);
    CHECK(tok.bos_id() == token_id(1));
    CHECK(tok.unk_id() == token_id(0));
    const auto ref = nlohmann::json::parse(lmkit::test::read_file(shared_data(fixture / "refs/citizen.pytorch.json")));
    CHECK(tok.encode(ref["prompt"].get<std::string>(), {.add_bos = true}) == ref["prompt_ids"].get<std::vector<token_id>>());
    for (const auto& c : cases) {
      const std::string text = c["text"];
      // Hugging Face's Metaspace puts no "▁" before text that starts with a space (SentencePiece
      // does): such lines are checked against Hugging Face's own ids in hf_added_tokens_cases.json.
      if (metaspace && text.starts_with(' ')) continue;
      INFO(text << " metaspace=" << metaspace);
      CHECK(tok.encode(text) == c["ids"].get<std::vector<token_id>>());
    }
  }
  auto bad = llama_tokenizer_json(false);
  bad["normalizer"]["normalizers"].push_back({{"type", "Lowercase"}});
  CHECK_THROWS_WITH(lmkit::io::parse_hf_tokenizer(bad.dump(), "t.json"), Catch::Contains("normalizer step 'Lowercase'"));
  bad = llama_tokenizer_json(true);
  bad["model"]["merges"].push_back("zz qq");
  CHECK_THROWS_WITH(lmkit::io::parse_hf_tokenizer(bad.dump(), "t.json"), Catch::Contains("not in the vocabulary"));
}

TEST_CASE("user-defined pieces, whitespace as a suffix and the ends of the text, as SentencePiece has them",
          "[sentencepiece]") {
  using lmkit::text::piece_type;
  using ids = std::vector<token_id>;
  const std::string space = "\xE2\x96\x81";
  std::vector<lmkit::text::sentencepiece_piece> pieces{
      {"<unk>", 0, piece_type::unknown}, {"<s>", 0, piece_type::control}, {"</s>", 0, piece_type::control},
      {space, -1, piece_type::normal},   {"a", -2, piece_type::normal},   {"b", -3, piece_type::normal},
      {"ab", -0.1f, piece_type::normal}, {space + "a", -0.5f, piece_type::normal},
      {"<sep>", 0, piece_type::user_defined}, {"<sep>a", 5, piece_type::normal},  // 8, 9
      {"xy", 0, piece_type::user_defined}, {"xyz", 0, piece_type::user_defined},   // 10, 11
      {"ab" + space, 1, piece_type::normal}};                                       // 12
  lmkit::text::sentencepiece_options llama{.byte_fallback = false, .unk_id = 0, .bos_id = 1, .eos_id = 2};
  const lmkit::text::sentencepiece_tokenizer tok(pieces, llama);
  // <sep> is taken whole and never merged, though "<sep>a" is a piece that outscores all others.
  CHECK(tok.encode("ab<sep>ab") == ids{3, 6, 8, 6});
  CHECK(tok.encode("<sep>a") == ids{3, 8, 4});
  // The longest user-defined piece wins.
  CHECK(tok.encode("xyzxy") == ids{3, 11, 10});
  CHECK(tok.decode(ids{3, 11, 10}) == "xyzxy");

  // Whitespace as a suffix: the dummy "▁" goes after the text, and decoding keeps it.
  lmkit::text::sentencepiece_options suffix = llama;
  suffix.whitespace_as_suffix = true;
  const lmkit::text::sentencepiece_tokenizer suffixed(pieces, suffix);
  CHECK(suffixed.encode("ab ab") == ids{12, 12});
  CHECK(suffixed.decode(ids{12, 12}) == "ab ab ");

  // remove_extra_whitespaces strips the end after escaping: a "▁" of the text's own goes as well.
  lmkit::text::sentencepiece_options tidy = llama;
  tidy.remove_extra_whitespaces = true;
  const lmkit::text::sentencepiece_tokenizer tidied(pieces, tidy);
  CHECK(tidied.encode("  a" + space + "  ") == ids{7});
  CHECK(tok.encode("a" + space) == ids{7, 3});
  // Decoding: while nothing is written, leading "▁"s go (once with the dummy prefix alone, from
  // every piece when extra whitespace is removed); an <unk> first keeps its spaces.
  CHECK(tok.decode(ids{3, 7}) == " a");
  CHECK(tidied.decode(ids{3, 7}) == "a");
  CHECK(tok.decode(ids{1, 7}) == "a");
  CHECK(tok.decode(ids{0, 7}) == " \xE2\x81\x87  a");
}

namespace {

/// Runs a shell command; false when it fails.
bool run(const std::string& command) { return std::system(command.c_str()) == 0; }

/// Lines of `path`, without their newlines.
std::vector<std::string> lines_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<token_id> ids_of_line(const std::string& line) {
  std::istringstream in(line);
  std::vector<token_id> ids;
  for (token_id id; in >> id;) ids.push_back(id);
  return ids;
}

/// Random text for SentencePiece: words and spaces in runs, the models' user-defined symbols,
/// literal "▁", tabs, and code points from every plane; no newlines (spm_encode reads lines).
std::string random_sentencepiece_line(lmkit::philox& rng) {
  static const char* const parts[] = {"the", "king", "Hello", "ROMEO:", " ", "  ", "   ", "\t", "foo", "bar", "<sep>",
                                      "foobar", "ab", "abc", "abcd", "<a>", "<a><b>", "12345", "3.14", "naïve",
                                      "日本語", "한국어", "😀", "e\u0301", "\u3000", "'s", "\u2581", "\u2581\u2581",
                                      "<s>", "<unk>", "\u00a0", "x", "...", "caf\u00e9"};
  std::string line;
  const int n = 1 + int(rng() % 24);
  for (int i = 0; i < n; ++i) {
    const std::uint32_t r = rng();
    if (r % 5 != 0) {
      line += parts[(r >> 8) % std::size(parts)];
      continue;
    }
    char32_t c = char32_t((r >> 8) % 4 == 0 ? 0x20 + (r >> 10) % 0x5F : (r >> 10) % 0x30000);
    if ((c >= 0xD800 && c <= 0xDFFF) || c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0)) c = 'y';
    lmkit::text::append_utf8(line, c);
  }
  return line;
}

}  // namespace

// SentencePiece's own trainer makes BPE models of each option lmkit reads (byte fallback or <unk>,
// dummy prefix or none, extra whitespace removed or kept, whitespace as a suffix, user-defined
// symbols that overlap, pieces across spaces); its encoder and decoder are the reference. Needs
// Debian's sentencepiece package (spm_train, spm_encode, spm_decode), else skipped.
TEST_CASE("trained model variants encode and decode as spm_encode and spm_decode do", "[sentencepiece][spm]") {
  if (!run("command -v spm_train >/dev/null && command -v spm_encode >/dev/null && command -v spm_decode >/dev/null"))
    lmkit::test::skip_test("Debian's sentencepiece (spm_train, spm_encode, spm_decode) is not installed");
  const auto dir = std::filesystem::path(LMKIT_TEST_TMPDIR) / "spm_variants";
  std::filesystem::create_directories(dir);
  lmkit::philox rng(lmkit::seed{29});
  {
    // A corpus of made-up words (so that merges exist) and the random lines' characters.
    std::ofstream corpus(dir / "corpus.txt");
    const char* const syllables[] = {"ka", "ro", "me", "the", "in", "gs", "ou", "ar", "sh", "ll", "é", "日本", "語", "한"};
    for (int line = 0; line < 6000; ++line) {
      for (int word = 1 + int(rng() % 12); word > 0; --word) {
        for (int s = 1 + int(rng() % 3); s > 0; --s) corpus << syllables[rng() % std::size(syllables)];
        corpus << (rng() % 9 == 0 ? "  " : " ");
      }
      corpus << (line % 7 == 0 ? random_sentencepiece_line(rng) : "") << "\n";
    }
  }
  struct variant {
    const char* name;
    const char* flags;
  };
  const variant variants[] = {
      {"llama_like", "--byte_fallback=true --remove_extra_whitespaces=false"},
      {"unk_default_whitespace", "--byte_fallback=false --character_coverage=0.995"},
      {"no_dummy_prefix", "--byte_fallback=true --add_dummy_prefix=false --remove_extra_whitespaces=false"},
      {"user_defined", "--byte_fallback=true --user_defined_symbols='foo,bar,<sep>,ab,abc,<a>,<a><b>'"},
      {"suffix", "--byte_fallback=true --treat_whitespace_as_suffix=true"},
      {"suffix_no_prefix", "--byte_fallback=false --treat_whitespace_as_suffix=true --add_dummy_prefix=false "
                           "--remove_extra_whitespaces=false --user_defined_symbols=foo,bar"},
      {"across_spaces", "--byte_fallback=true --split_by_whitespace=false --allow_whitespace_only_pieces=true "
                        "--remove_extra_whitespaces=false"},
      {"ids_moved", "--byte_fallback=false --unk_id=3 --bos_id=0 --eos_id=1 --pad_id=2 --character_coverage=0.99"},
  };
  std::vector<std::string> lines;
  {
    std::ofstream out(dir / "lines.txt");
    for (const char* edge : {"", " ", "   ", "\u2581", " \u2581 ", "  a  ", "foo", "foo\u2581", "\u2581foo", "a<sep>b"}) {
      lines.emplace_back(edge);
      out << edge << "\n";
    }
    while (lines.size() < 300) {
      lines.push_back(random_sentencepiece_line(rng));
      out << lines.back() << "\n";
    }
  }
  const std::string d = "'" + dir.string() + "'";
  for (const variant& v : variants) {
    INFO(v.name);
    const std::string model = d + "/" + v.name;
    REQUIRE(run("spm_train --input=" + d + "/corpus.txt --model_prefix=" + model + " --model_type=bpe --vocab_size=3000 "
                "--hard_vocab_limit=false --normalization_rule_name=identity --minloglevel=2 " + v.flags + " >/dev/null 2>&1"));
    REQUIRE(run("spm_encode --model=" + model + ".model --output_format=id < " + d + "/lines.txt > " + model + ".ids"));
    REQUIRE(run("spm_decode --model=" + model + ".model --input_format=id < " + model + ".ids > " + model + ".decoded"));
    const auto tok = lmkit::io::read_sentencepiece_model(dir / (std::string(v.name) + ".model"));
    const auto ids = lines_of(dir / (std::string(v.name) + ".ids"));
    const auto decoded = lines_of(dir / (std::string(v.name) + ".decoded"));
    REQUIRE(ids.size() == lines.size());
    REQUIRE(decoded.size() == lines.size());
    std::size_t same_ids = 0, same_text = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      INFO("line " << i << ": '" << lines[i] << "'");
      const auto expected = ids_of_line(ids[i]);
      CHECK(tok.encode(lines[i]) == expected);
      CHECK(tok.decode(expected) == decoded[i]);
      same_ids += tok.encode(lines[i]) == expected;
      same_text += tok.decode(expected) == decoded[i];
    }
    CHECK(same_ids == lines.size());
    CHECK(same_text == lines.size());
  }
}

// Hugging Face's encode finds the added tokens first (the earliest, the longest there; lstrip and
// rstrip taking the white space beside them), then normalises and merges the text between them
// apart: a Prepend normalizer puts "▁" before every stretch, Metaspace before the first ("first")
// or every one ("always") unless it starts with a space. The reference ids are Hugging Face's own
// (tests/data/make_hf_tokenizer_cases.js ran its tokenizers library).
TEST_CASE("tokenizer.json files with added tokens give Hugging Face's ids", "[sentencepiece][hf]") {
  const auto data = nlohmann::json::parse(lmkit::test::read_file(std::filesystem::path(LMKIT_TEST_DATA) / "hf_tokenizer_cases.json"));
  REQUIRE(data["tokenizers"].size() == 4);
  REQUIRE(data["cases"].size() == 200);
  for (const auto& [name, json] : data["tokenizers"].items()) {
    const auto any = lmkit::io::parse_hf_tokenizer(json.dump(), name + ".json");
    std::size_t same = 0;
    for (const auto& c : data["cases"]) {
      const std::string text = c["text"];
      INFO(name << ": '" << text << "'");
      const auto expected = c["ids"][name].get<std::vector<token_id>>();
      const auto ids = std::visit(
          [&](const auto& tok) {
            if constexpr (std::is_same_v<std::decay_t<decltype(tok)>, lmkit::text::sentencepiece_tokenizer>)
              return tok.encode(text, {.match_added_tokens = true});
            else
              return tok.encode(text, lmkit::text::allowed_special::all());
          },
          any);
      CHECK(ids == expected);
      same += ids == expected;
    }
    CHECK(same == data["cases"].size());
  }
  // Without being asked to, a SentencePiece-style tokenizer reads "<s>" as text, as SentencePiece does.
  const auto prepend = lmkit::io::parse_hf_tokenizer(data["tokenizers"]["sentencepiece_prepend"].dump(), "t.json");
  const auto& tok = std::get<lmkit::text::sentencepiece_tokenizer>(prepend);
  CHECK(tok.encode("<s>") != std::vector<token_id>{1});
  CHECK(tok.encode("<s>", {.match_added_tokens = true}) == std::vector<token_id>{1});
  // Bad added tokens are errors naming the token, in both kinds of file.
  for (const std::string kind : {"sentencepiece_prepend", "byte_level"}) {
    auto single_word = data["tokenizers"][kind];
    single_word["added_tokens"][3]["single_word"] = true;
    CHECK_THROWS_WITH(lmkit::io::parse_hf_tokenizer(single_word.dump(), "t.json"), Catch::Contains("single_word is not implemented"));
  }
  auto empty = data["tokenizers"]["sentencepiece_prepend"];
  empty["added_tokens"][3]["content"] = "";
  CHECK_THROWS_WITH(lmkit::io::parse_hf_tokenizer(empty.dump(), "t.json"), Catch::Contains("has no content"));
  auto gap = data["tokenizers"]["sentencepiece_prepend"];
  gap["added_tokens"].back()["id"] = gap["added_tokens"].back()["id"].get<std::size_t>() + 5;
  CHECK_THROWS_WITH(lmkit::io::parse_hf_tokenizer(gap.dump(), "t.json"),
                    Catch::Contains("is neither in the vocabulary nor an added token"));
  // Added tokens given to the tokenizer directly: an id past its pieces, empty or invalid UTF-8 text.
  lmkit::text::sentencepiece_options options = tok.options();
  options.added_tokens = {{"<x>", token_id(tok.vocab_size())}};
  CHECK_THROWS_WITH(lmkit::text::sentencepiece_tokenizer(tok.pieces(), options), Catch::Contains("past the"));
  options.added_tokens = {{"", 1}};
  CHECK_THROWS_WITH(lmkit::text::sentencepiece_tokenizer(tok.pieces(), options), Catch::Contains("has no text"));
  options.added_tokens = {{"\xC3", 1}};
  CHECK_THROWS_WITH(lmkit::text::sentencepiece_tokenizer(tok.pieces(), options), Catch::Contains("invalid UTF-8"));
}
