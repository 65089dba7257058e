// Byte-level BPE: ids identical to the real tiktoken (references made with OpenAI's library),
// GPT-2's own files giving the same ids, the two merge implementations agreeing, special tokens,
// decoding and bad files.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lmkit/io/gpt2_bpe.hpp"
#include "lmkit/io/hf_tokenizer.hpp"
#include "lmkit/io/tiktoken.hpp"
#include "lmkit/core/rng.hpp"
#include "test_support.hpp"

using lmkit::text::token_id;
using lmkit::test::shared_data;

namespace {

/// The tokenizers are loaded once per test process: o200k's rank file has 200k lines.
const lmkit::text::bpe_tokenizer& tiktoken(const std::string& name) {
  static std::map<std::string, lmkit::text::bpe_tokenizer> loaded;
  auto it = loaded.find(name);
  if (it == loaded.end())
    it = loaded.emplace(name, lmkit::io::load_tiktoken(shared_data("tokenizers/tiktoken/" + name + ".tiktoken"), name)).first;
  return it->second;
}

std::vector<token_id> ids_of(const nlohmann::json& j) { return j.get<std::vector<token_id>>(); }

}  // namespace

TEST_CASE("ids equal tiktoken's on the shared reference texts", "[bpe][tiktoken]") {
  const auto root = shared_data("tokenizers/tiktoken_refs");
  for (const std::string encoding : {"gpt2", "cl100k_base", "o200k_base"}) {
    const auto& tok = tiktoken(encoding);
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(root / encoding)) {
      if (entry.path().extension() != ".json") continue;
      const auto ref = nlohmann::json::parse(lmkit::test::read_file(entry.path()));
      const std::string text = lmkit::test::read_file(root / encoding / ref["text_file"].get<std::string>());
      INFO(encoding << " " << entry.path().filename().string());
      const auto expected = ids_of(ref["ids"]);
      CHECK(tok.encode_ordinary(text) == expected);
      CHECK(tok.decode(expected) == text);
      ++files;
    }
    CHECK(files >= 6);
  }
}

namespace {

struct tiktoken_case {
  std::string name, text;
  std::map<std::string, std::vector<token_id>> ids;
};

/// Texts written for these tests and seeded random texts, with the ids the real tiktoken gave
/// (tests/data/make_tiktoken_cases.js made the file).
const std::vector<tiktoken_case>& tiktoken_cases() {
  static const std::vector<tiktoken_case> cases = [] {
    std::vector<tiktoken_case> out;
    const auto j = nlohmann::json::parse(lmkit::test::read_file(std::filesystem::path(LMKIT_TEST_DATA) / "tiktoken_cases.json"));
    for (const auto& c : j) {
      tiktoken_case t{c["name"], c["text"], {}};
      for (const std::string e : {"gpt2", "cl100k_base", "o200k_base"}) t.ids[e] = ids_of(c[e]);
      out.push_back(std::move(t));
    }
    return out;
  }();
  return cases;
}

}  // namespace

TEST_CASE("ids equal tiktoken's on written and random texts", "[bpe][tiktoken]") {
  REQUIRE(tiktoken_cases().size() > 250);
  for (const std::string encoding : {"gpt2", "cl100k_base", "o200k_base"}) {
    const auto& tok = tiktoken(encoding);
    for (const auto& c : tiktoken_cases()) {
      INFO(encoding << " " << c.name);
      CHECK(tok.encode_ordinary(c.text) == c.ids.at(encoding));
    }
  }
}

TEST_CASE("GPT-2's encoder.json and vocab.bpe give tiktoken's gpt2 ids", "[bpe][gpt2]") {
  const auto tok = lmkit::io::read_gpt2_bpe(shared_data("tokenizers/gpt2/encoder.json"),
                                            shared_data("tokenizers/gpt2/vocab.bpe"));
  CHECK(tok.uses_merge_list());
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.special_id("<|endoftext|>") == token_id(50256));
  for (const auto& c : tiktoken_cases()) {
    INFO(c.name);
    const auto ids = tok.encode_ordinary(c.text);
    CHECK(ids == c.ids.at("gpt2"));
    CHECK(tok.decode(ids) == c.text);
  }
}

TEST_CASE("the heap and the scan merge every piece alike", "[bpe][merge]") {
  for (const std::string encoding : {"gpt2", "o200k_base"}) {
    const auto& tok = tiktoken(encoding);
    const auto& vocab = tok.vocabulary();
    lmkit::text::token_id byte_ids[256];
    for (int b = 0; b < 256; ++b) byte_ids[b] = vocab.find(std::string(1, char(b)));
    auto rank_of = [&](const lmkit::text::bpe_pair& p) {
      const token_id id = vocab.find(p.bytes);
      return id == lmkit::text::token_bytes_table::none ? lmkit::text::bpe_candidate{} : lmkit::text::bpe_candidate{id, id};
    };
    lmkit::text::bpe_workspace w;
    std::size_t pieces = 0;
    for (const auto& c : tiktoken_cases()) {
      lmkit::text::for_each_piece(tok.pattern(), c.text, [&](std::string_view piece) {
        std::vector<token_id> by_heap, by_scan;
        lmkit::text::bpe_merge(piece, byte_ids, rank_of, w, by_heap, 0);
        lmkit::text::bpe_merge(piece, byte_ids, rank_of, w, by_scan, std::size_t(-1));
        INFO(encoding << " " << c.name);
        CHECK(by_heap == by_scan);
        ++pieces;
      });
    }
    CHECK(pieces > 1000);
  }
}

TEST_CASE("the pieces cover the text and follow the pattern's rules", "[bpe][pretokenizer]") {
  using lmkit::text::split_pattern;
  auto pieces = [](split_pattern p, std::string_view text) {
    std::vector<std::string> out;
    lmkit::text::for_each_piece(p, text, [&](std::string_view s) { out.emplace_back(s); });
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(pieces(split_pattern::gpt2, "Hello  world's 123") == V{"Hello", " ", " world", "'s", " 123"});
  CHECK(pieces(split_pattern::cl100k_base, "Hello  world'S 12345") == V{"Hello", " ", " world", "'S", " ", "123", "45"});
  CHECK(pieces(split_pattern::cl100k_base, "a\r\n\r\n  b") == V{"a", "\r\n\r\n", " ", " b"});
  CHECK(pieces(split_pattern::o200k_base, "HelloWorld ABCdef") == V{"Hello", "World", " ABCdef"});
  CHECK(pieces(split_pattern::o200k_base, "path/to\n") == V{"path", "/to", "\n"});
  CHECK(lmkit::text::split_pattern_from_regex(lmkit::text::regex_of(split_pattern::o200k_base)) == split_pattern::o200k_base);
  CHECK_FALSE(lmkit::text::split_pattern_from_regex("\\w+").has_value());
}

namespace {

/// Random valid UTF-8: code points from every plane (no surrogates), weighted toward ASCII.
std::string random_utf8(lmkit::philox& rng, std::size_t code_points) {
  std::string s;
  for (std::size_t i = 0; i < code_points; ++i) {
    const std::uint32_t r = rng();
    char32_t c;
    switch (r % 4) {
      case 0: c = char32_t(r >> 8) % 0x80; break;
      case 1: c = char32_t(r >> 8) % 0x800; break;
      case 2: c = char32_t(r >> 8) % 0x10000; break;
      default: c = char32_t(r >> 8) % 0x110000; break;
    }
    if (c >= 0xD800 && c <= 0xDFFF) c -= 0x1000;
    lmkit::text::append_utf8(s, c);
  }
  return s;
}

}  // namespace

TEST_CASE("decode(encode(x)) == x for random valid UTF-8", "[bpe][property]") {
  lmkit::philox rng(lmkit::seed{42});
  for (const std::string encoding : {"gpt2", "cl100k_base", "o200k_base"}) {
    const auto& tok = tiktoken(encoding);
    for (int k = 0; k < 200; ++k) {
      const std::string text = random_utf8(rng, 1 + rng() % 300);
      REQUIRE(lmkit::text::check_utf8(text));
      const auto ids = tok.encode_ordinary(text);
      REQUIRE(tok.decode(ids) == text);
      for (const token_id id : ids) REQUIRE(id < tok.vocab_size());
    }
  }
}

TEST_CASE("a batch on two threads gives each text's own ids", "[bpe][batch]") {
  const auto& tok = tiktoken("cl100k_base");
  std::vector<std::string_view> texts;
  for (const auto& c : tiktoken_cases()) texts.push_back(c.text);
  const lmkit::thread_pool two(2);
  const auto batch = tok.encode_batch(texts, two);
  REQUIRE(batch.size() == texts.size());
  for (std::size_t k = 0; k < texts.size(); ++k) CHECK(batch[k] == tiktoken_cases()[k].ids.at("cl100k_base"));
  const std::string_view bad[] = {"fine", "\xC3("};
  CHECK_THROWS_WITH(tok.encode_batch(bad, two), Catch::Contains("text 1 of the batch: invalid UTF-8 at byte 0"));
}

TEST_CASE("special tokens are refused, allowed or ordinary on request", "[bpe][special]") {
  const auto& tok = tiktoken("cl100k_base");
  const std::string text = "hi<|endoftext|>there<|fim_prefix|>";
  CHECK_THROWS_AS(tok.encode(text), lmkit::argument_error);
  CHECK_THROWS_WITH(tok.encode(text), Catch::Contains("<|endoftext|>") && Catch::Contains("at byte 2"));
  const auto all = tok.encode(text, lmkit::text::allowed_special::all());
  CHECK(std::count(all.begin(), all.end(), 100257) == 1);
  CHECK(std::count(all.begin(), all.end(), 100258) == 1);
  CHECK(tok.decode(all) == text);
  // Allowing one still refuses the other.
  CHECK_THROWS_WITH(tok.encode(text, lmkit::text::allowed_special::only({"<|endoftext|>"})), Catch::Contains("<|fim_prefix|>"));
  const auto ordinary = tok.encode_ordinary(text);
  CHECK(std::count(ordinary.begin(), ordinary.end(), 100257) == 0);
  CHECK(tok.decode(ordinary) == text);
  CHECK(tok.vocab_size() == 100277);
  CHECK_THROWS_AS(tok.token_bytes(100261), lmkit::argument_error);  // a gap in cl100k's ids
  CHECK_THROWS_WITH(tok.decode(std::vector<token_id>{5, 100277}), Catch::Contains("token id 100277"));
}

TEST_CASE("invalid UTF-8 is an error naming the byte; NUL bytes are text", "[bpe][utf8]") {
  const auto& tok = tiktoken("gpt2");
  const std::pair<std::string, std::string> bad[] = {
      {"ab\x80", "continuation byte"},          {"\xC0\xAF", "overlong"},
      {"x\xE0\x80\xAF", "overlong"},            {"\xED\xA0\x80", "surrogate"},
      {"\xF4\x90\x80\x80", "above U+10FFFF"},   {"abc\xE2\x82", "cut off"},
      {"\xFF", "never used"},                   {"\xC3(", "not followed by a continuation"},
  };
  for (const auto& [text, why] : bad) {
    INFO(why);
    CHECK_THROWS_AS(tok.encode_ordinary(text), lmkit::format_error);
    CHECK_THROWS_WITH(tok.encode_ordinary(text), Catch::Contains(why) && Catch::Contains("invalid UTF-8 at byte"));
  }
  const std::string with_nul("a\0b\0\0c", 6);
  CHECK(tok.decode(tok.encode_ordinary(with_nul)) == with_nul);
  // decode_text mends what a cut token sequence leaves half a character of.
  const auto ids = tok.encode_ordinary("\xF0\x9F\xA6\x8E");  // a lizard: several byte tokens in gpt2
  REQUIRE(ids.size() > 1);
  CHECK(tok.decode_text(std::vector<token_id>(ids.begin(), ids.end() - 1)) == "\xEF\xBF\xBD");
}

TEST_CASE("a one-megabyte piece is merged (heap path) and round-trips", "[bpe][long]") {
  const auto& tok = tiktoken("o200k_base");
  std::string blob;
  lmkit::philox rng(lmkit::seed{7});
  const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  for (int i = 0; i < (1 << 20); ++i) blob += alphabet[rng() % alphabet.size()];
  const auto ids = tok.encode_ordinary(blob);
  CHECK(ids.size() > blob.size() / 8);
  CHECK(tok.decode(ids) == blob);
}

TEST_CASE("bad rank files are errors with the line", "[bpe][files]") {
  using lmkit::io::parse_tiktoken_ranks;
  CHECK_THROWS_WITH(parse_tiktoken_ranks("IQ== 0\nIg== 0\n", "r"), Catch::Contains("r:2: rank 0 appears twice"));
  CHECK_THROWS_WITH(parse_tiktoken_ranks("IQ== 0\nIQ== 1\n", "r"), Catch::Contains("r:2:") && Catch::Contains("same bytes"));
  CHECK_THROWS_WITH(parse_tiktoken_ranks("IQ== 0\nI!== 1\n", "r"), Catch::Contains("r:2: token is not valid base64"));
  CHECK_THROWS_WITH(parse_tiktoken_ranks("IQ= 0\n", "r"), Catch::Contains("r:1: token is not valid base64"));
  CHECK_THROWS_WITH(parse_tiktoken_ranks("IR== 0\n", "r"), Catch::Contains("non-zero bits"));
  CHECK_THROWS_WITH(parse_tiktoken_ranks("IQ==\n", "r"), Catch::Contains("r:1: expected 'BASE64 RANK'"));
  CHECK_THROWS_WITH(parse_tiktoken_ranks("IQ== -3\n", "r"), Catch::Contains("r:1: rank '-3'"));
  CHECK_THROWS_WITH(parse_tiktoken_ranks("IQ== 12x\n", "r"), Catch::Contains("r:1: rank '12x'"));
  CHECK_THROWS_WITH(parse_tiktoken_ranks("\n\n", "r"), Catch::Contains("no tokens"));
  // A rank far beyond the file's tokens is refused before it sizes any array (found by libFuzzer).
  CHECK_THROWS_WITH(parse_tiktoken_ranks("IQ== 0\nIg== 4000000000\n", "r"), Catch::Contains("r:2:") && Catch::Contains("dense"));
  const auto table = parse_tiktoken_ranks("IQ== 0\r\nIiM= 7\n", "r");
  CHECK(table.find("\"#") == 7);
  // A byte-level tokenizer needs every byte.
  CHECK_THROWS_WITH(lmkit::text::bpe_tokenizer(table, lmkit::text::split_pattern::gpt2),
                    Catch::Contains("no token for byte 0"));
  CHECK_THROWS_AS(lmkit::io::tiktoken_encoding_named("p50k_base"), lmkit::argument_error);
  CHECK_THROWS_WITH(lmkit::io::parse_tiktoken_encoding_json(R"({"pat_str": "\\w+"})", "e.json"),
                    Catch::Contains("e.json: pre-tokenising pattern"));
  const auto enc = lmkit::io::parse_tiktoken_encoding_json(
      lmkit::test::read_file(shared_data("tokenizers/tiktoken/cl100k_base.json")), "cl100k_base.json");
  CHECK(enc.pattern == lmkit::text::split_pattern::cl100k_base);
  CHECK(enc.specials.size() == 5);
}

TEST_CASE("bad GPT-2 files are errors naming the file", "[bpe][files]") {
  const std::string encoder = R"({"a": 0, "b": 1, "ab": 2})";
  CHECK_THROWS_WITH(lmkit::io::parse_gpt2_bpe("{", "", "enc.json", "m.bpe"), Catch::Contains("enc.json: not valid JSON"));
  CHECK_THROWS_WITH(lmkit::io::parse_gpt2_bpe(encoder, "#version: 0.2\na c\n", "enc.json", "m.bpe"),
                    Catch::Contains("m.bpe:2: 'c' is not in enc.json"));
  CHECK_THROWS_WITH(lmkit::io::parse_gpt2_bpe(encoder, "#version: 0.2\nab\n", "enc.json", "m.bpe"),
                    Catch::Contains("m.bpe:2: expected 'LEFT RIGHT'"));
  CHECK_THROWS_WITH(lmkit::io::parse_gpt2_bpe(R"({"\u0000": 0})", "", "enc.json", "m.bpe"),
                    Catch::Contains("does not stand for a byte"));
}

namespace {

/// GPT-2's files written as a Hugging Face tokenizer.json, the way its converter writes them.
nlohmann::json gpt2_as_tokenizer_json(bool merges_as_pairs, bool split_then_byte_level) {
  auto encoder = nlohmann::json::parse(lmkit::test::read_file(shared_data("tokenizers/gpt2/encoder.json")));
  std::istringstream bpe(lmkit::test::read_file(shared_data("tokenizers/gpt2/vocab.bpe")));
  nlohmann::json merges = nlohmann::json::array();
  std::string line;
  std::getline(bpe, line);  // #version
  while (std::getline(bpe, line)) {
    if (line.empty()) continue;
    const auto space = line.find(' ');
    if (merges_as_pairs)
      merges.push_back({line.substr(0, space), line.substr(space + 1)});
    else
      merges.push_back(line);
  }
  nlohmann::json j;
  j["version"] = "1.0";
  j["added_tokens"] = {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}};
  j["normalizer"] = nullptr;
  if (split_then_byte_level) {
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"},
                             {"pattern", {{"Regex", std::string(lmkit::text::regex_of(lmkit::text::split_pattern::gpt2))}}},
                             {"behavior", "Isolated"},
                             {"invert", false}},
                            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  } else {
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  }
  j["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
                {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", encoder},
                {"merges", merges}};
  return j;
}

}  // namespace

TEST_CASE("a Hugging Face tokenizer.json of GPT-2 gives tiktoken's gpt2 ids", "[bpe][hf]") {
  for (const bool pairs : {false, true}) {
    for (const bool split : {false, true}) {
      const auto tok = lmkit::io::parse_hf_tokenizer_json(gpt2_as_tokenizer_json(pairs, split).dump(), "tokenizer.json");
      CHECK(tok.vocab_size() == 50257);
      CHECK(tok.special_id("<|endoftext|>") == token_id(50256));
      for (const auto& c : tiktoken_cases()) {
        INFO(c.name << " pairs=" << pairs << " split=" << split);
        CHECK(tok.encode_ordinary(c.text) == c.ids.at("gpt2"));
      }
      const auto with_special = tok.encode("a<|endoftext|>b", lmkit::text::allowed_special::all());
      CHECK(with_special == std::vector<token_id>{64, 50256, 65});
    }
  }
}

TEST_CASE("special tokens are valid UTF-8, and lstrip/rstrip take the white space beside them", "[bpe][special]") {
  lmkit::text::token_bytes_table ranks;
  for (int b = 0; b < 256; ++b) ranks.add(std::string(1, char(b)), token_id(b));
  CHECK_THROWS_WITH(lmkit::text::bpe_tokenizer(ranks, lmkit::text::split_pattern::gpt2, {{"\xE2\x96", 300}}),
                    Catch::Contains("invalid UTF-8"));
  const lmkit::text::bpe_tokenizer stripping(std::move(ranks), lmkit::text::split_pattern::gpt2,
                                             {{"<l>", 300, true, false}, {"<r>", 301, false, true}});
  using ids = std::vector<token_id>;
  // "a \u3000<l>" loses the white space before <l> (U+3000 too); "<r> \t b" the white space after <r>.
  CHECK(stripping.encode("a \u3000<l>b", lmkit::text::allowed_special::all()) == ids{'a', 300, 'b'});
  CHECK(stripping.encode("a<r> \t b", lmkit::text::allowed_special::all()) == ids{'a', 301, 'b'});
  CHECK(stripping.encode("a <l> b", lmkit::text::allowed_special::all()) == ids{'a', 300, ' ', 'b'});
}

TEST_CASE("tokenizer.json parts lmkit does not implement are named", "[bpe][hf]") {
  auto j = gpt2_as_tokenizer_json(false, false);
  auto error_of = [](const nlohmann::json& variant) {
    try {
      lmkit::io::parse_hf_tokenizer_json(variant.dump(), "t.json");
    } catch (const lmkit::format_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto with = [&](const char* pointer, nlohmann::json value) {
    auto v = j;
    v[nlohmann::json::json_pointer(pointer)] = std::move(value);
    return v;
  };
  CHECK_THAT(error_of(with("/normalizer", {{"type", "NFC"}})), Catch::Contains("normalizer 'NFC'"));
  CHECK_THAT(error_of(with("/pre_tokenizer", {{"type", "Metaspace"}})), Catch::Contains("pre_tokenizer 'Metaspace'"));
  CHECK_THAT(error_of(with("/model/type", "WordPiece")), Catch::Contains("model type 'WordPiece'"));
  CHECK_THAT(error_of(with("/model/merges/3", "Ġ zzzq")), Catch::Contains("merge 3: 'zzzq' is not in the vocabulary"));
  CHECK_THAT(error_of(with("/model/merges/3", 7)), Catch::Contains("merge 3 is neither"));
  CHECK_THAT(error_of(with("/model/byte_fallback", "yes")), Catch::Contains("byte_fallback must be true or false"));
  CHECK_THAT(error_of(with("/pre_tokenizer/add_prefix_space", true)), Catch::Contains("add_prefix_space"));
  CHECK_THAT(error_of(with("/model/vocab", 3)), Catch::Contains("model.vocab"));
  CHECK_THAT(error_of(nlohmann::json::parse("[1]")), Catch::Contains("no \"model\" object"));
  CHECK_THROWS_WITH(lmkit::io::parse_hf_tokenizer_json("{", "t.json"), Catch::Contains("t.json: not valid JSON"));
}
