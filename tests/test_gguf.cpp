// GGUF: the fixture Llama's GGUF files read (metadata, tensor descriptions, the bytes of a tensor
// equal to the llama2.c checkpoint's), their tokenizer equal to SentencePiece's, a gpt2-type
// tokenizer written here, and damaged files refused with the place named.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lmkit/io/gguf.hpp"
#include "lmkit/io/gguf_tokenizer.hpp"
#include "lmkit/io/gguf_writer.hpp"
#include "test_support.hpp"

using lmkit::io::gguf_file;
using lmkit::text::token_id;
using lmkit::test::shared_data;

namespace {

const std::filesystem::path fixture = "fixtures/shakespeare-llama";

/// `w`'s file, as bytes.
std::string written(const lmkit::io::gguf_writer& w, const char* name) {
  const auto path = lmkit::test::temporary_folder("gguf") / name;
  w.write(path);
  return lmkit::test::read_file(path);
}

}  // namespace

TEST_CASE("the fixture's GGUF files: metadata, tensors, bytes", "[gguf]") {
  const gguf_file f32(shared_data(fixture / "shakespeare-llama-f32.gguf"));
  CHECK(f32.version() == 3);
  CHECK(f32.get_string("general.architecture") == "llama");
  CHECK(f32.get_uint("llama.embedding_length") == 128);
  CHECK(f32.get_uint("llama.attention.head_count_kv") == 4);
  CHECK(f32.get_float("llama.attention.layer_norm_rms_epsilon") == Approx(1e-5));
  CHECK(f32.get_array("tokenizer.ggml.tokens").items.size() == 512);
  CHECK(f32.tensors().size() == 39);
  const auto* embedding = f32.find_tensor("token_embd.weight");
  REQUIRE(embedding != nullptr);
  CHECK(embedding->dims == std::vector<std::uint64_t>{128, 512});
  CHECK(embedding->type == lmkit::io::ggml_type::f32);
  CHECK(embedding->bytes == 128 * 512 * 4);
  // The embedding's bytes equal those after the llama2.c checkpoint's 28-byte header.
  const std::string bin = lmkit::test::read_file(shared_data(fixture / "shakespeare-llama.bin"));
  const auto bytes = f32.tensor_bytes(*embedding);
  CHECK(std::memcmp(bytes.data(), bin.data() + 28, bytes.size()) == 0);
  CHECK_THROWS_WITH(f32.get_string("llama.block_count"), Catch::Contains("llama.block_count has type 4"));
  CHECK_THROWS_WITH(f32.get_uint("no.such.key"), Catch::Contains("no.such.key is missing"));

  const gguf_file q8(shared_data(fixture / "shakespeare-llama-q8_0.gguf"));
  const auto* wq = q8.find_tensor("blk.0.attn_q.weight");
  REQUIRE(wq != nullptr);
  CHECK(wq->type == lmkit::io::ggml_type::q8_0);
  CHECK(wq->bytes == 128 * 128 / 32 * 34);
}

TEST_CASE("the GGUF files' tokenizer is the fixture's SentencePiece tokenizer", "[gguf][sentencepiece]") {
  const auto cases = nlohmann::json::parse(lmkit::test::read_file(std::filesystem::path(LMKIT_TEST_DATA) / "sentencepiece_cases.json"));
  for (const char* name : {"shakespeare-llama-f32.gguf", "shakespeare-llama-q8_0.gguf"}) {
    const auto any = lmkit::io::tokenizer_from_gguf(gguf_file(shared_data(fixture / name)));
    REQUIRE(std::holds_alternative<lmkit::text::sentencepiece_tokenizer>(any));
    const auto& tok = std::get<lmkit::text::sentencepiece_tokenizer>(any);
    for (const std::string prompt : {"romeo", "citizen"}) {
      const auto ref = nlohmann::json::parse(lmkit::test::read_file(shared_data(fixture / "refs" / (prompt + ".pytorch.json"))));
      CHECK(tok.encode(ref["prompt"].get<std::string>(), {.add_bos = true}) == ref["prompt_ids"].get<std::vector<token_id>>());
    }
    for (const auto& c : cases) CHECK(tok.encode(c["text"].get<std::string>()) == c["ids"].get<std::vector<token_id>>());
  }
}

TEST_CASE("a gpt2-type GGUF tokenizer gives tiktoken's gpt2 ids", "[gguf][bpe]") {
  const auto encoder = nlohmann::json::parse(lmkit::test::read_file(shared_data("tokenizers/gpt2/encoder.json")));
  std::vector<std::string> tokens(encoder.size());
  for (const auto& [token, id] : encoder.items()) tokens[id.get<std::size_t>()] = token;
  std::vector<std::int32_t> types(tokens.size(), 1);
  types[50256] = 3;  // <|endoftext|> is a control token
  std::vector<std::string> merges;
  std::istringstream bpe(lmkit::test::read_file(shared_data("tokenizers/gpt2/vocab.bpe")));
  std::string line;
  std::getline(bpe, line);
  while (std::getline(bpe, line))
    if (!line.empty()) merges.push_back(line);
  lmkit::io::gguf_writer g;
  g.add_string("tokenizer.ggml.model", "gpt2");
  g.add_string("tokenizer.ggml.pre", "gpt-2");
  g.add_strings("tokenizer.ggml.tokens", tokens);
  g.add_numbers("tokenizer.ggml.token_type", lmkit::io::gguf_type::int32, types);
  g.add_strings("tokenizer.ggml.merges", merges);
  const std::string file = written(g, "gpt2.gguf");
  const auto any = lmkit::io::tokenizer_from_gguf(gguf_file::parse_bytes(file, "gpt2.gguf"));
  REQUIRE(std::holds_alternative<lmkit::text::bpe_tokenizer>(any));
  const auto& tok = std::get<lmkit::text::bpe_tokenizer>(any);
  for (const std::string name : {"shakespeare", "korean", "emoji", "cpp"}) {
    const auto ref = nlohmann::json::parse(lmkit::test::read_file(shared_data("tokenizers/tiktoken_refs/gpt2/" + name + ".json")));
    const std::string text = lmkit::test::read_file(shared_data("tokenizers/tiktoken_refs/gpt2/" + name + ".txt"));
    CHECK(tok.encode_ordinary(text) == ref["ids"].get<std::vector<token_id>>());
  }
  CHECK(tok.special_id("<|endoftext|>") == token_id(50256));

  lmkit::io::gguf_writer unknown;
  unknown.add_string("tokenizer.ggml.model", "bert");
  unknown.add_strings("tokenizer.ggml.tokens", {"a"});
  const std::string unknown_file = written(unknown, "bert.gguf");
  CHECK_THROWS_WITH(lmkit::io::tokenizer_from_gguf(gguf_file::parse_bytes(unknown_file, "u.gguf")),
                    Catch::Contains("u.gguf: tokenizer.ggml.model 'bert'"));
}

// llama.cpp's SentencePiece tokenizing: user-defined tokens are found in the text first (control
// ones too with parse_special), and each stretch of text between them gets its own space prefix.
TEST_CASE("a llama-type GGUF tokenizer finds user-defined tokens first, as llama.cpp does", "[gguf][sentencepiece]") {
  const std::string space = "\xE2\x96\x81";
  const std::vector<std::string> tokens{"<unk>", "<s>", "</s>", space, "a", "b", "ab", space + "a", space + "ab", "<sep>"};
  const std::vector<float> scores{0, 0, 0, -1, -2, -3, -0.3f, -0.2f, -0.1f, 0};
  const std::vector<std::int32_t> types{2, 3, 3, 1, 1, 1, 1, 1, 1, 4};
  lmkit::io::gguf_writer g;
  g.add_string("tokenizer.ggml.model", "llama");
  g.add_strings("tokenizer.ggml.tokens", tokens);
  g.add_numbers("tokenizer.ggml.scores", lmkit::io::gguf_type::float32, scores);
  g.add_numbers("tokenizer.ggml.token_type", lmkit::io::gguf_type::int32, types);
  g.add_uint32("tokenizer.ggml.unknown_token_id", 0);
  g.add_uint32("tokenizer.ggml.bos_token_id", 1);
  g.add_uint32("tokenizer.ggml.eos_token_id", 2);
  const std::string file = written(g, "user_defined.gguf");
  const auto any = lmkit::io::tokenizer_from_gguf(gguf_file::parse_bytes(file, "user_defined.gguf"));
  const auto& tok = std::get<lmkit::text::sentencepiece_tokenizer>(any);
  using ids = std::vector<token_id>;
  CHECK(tok.encode("ab<sep>ab") == ids{8, 9, 8});  // "▁ab" after <sep> too (a .model gives "ab" there)
  CHECK(tok.encode("<sep>") == ids{9});
  CHECK(tok.encode("<s>ab", {.match_added_tokens = true}) == ids{1, 8});  // parse_special
  CHECK(tok.encode("<s>ab") != ids{1, 8});                                 // else "<s>" is text
  CHECK(tok.decode(ids{8, 9, 8}) == "ab<sep> ab");
}

TEST_CASE("damaged GGUF files are format errors naming the place", "[gguf][files]") {
  const std::string good = lmkit::test::read_file(shared_data(fixture / "shakespeare-llama-q8_0.gguf"));
  // Cut anywhere: never a crash, always a format_error (a cut inside the tensor data shows up as a
  // tensor running past the end).
  for (std::size_t cut : {std::size_t(0), std::size_t(3), std::size_t(10), std::size_t(24), std::size_t(100),
                          std::size_t(5000), good.size() / 2, good.size() - 1}) {
    INFO(cut);
    CHECK_THROWS_AS(gguf_file::parse_bytes(std::string_view(good).substr(0, cut), "cut.gguf"), lmkit::format_error);
  }
  std::string bad = good;
  bad[0] = 'X';
  CHECK_THROWS_WITH(gguf_file::parse_bytes(bad, "b.gguf"), Catch::Contains("no 'GGUF' magic"));
  bad = good;
  bad[4] = 1;
  CHECK_THROWS_WITH(gguf_file::parse_bytes(bad, "b.gguf"), Catch::Contains("GGUF version 1"));
  bad = good;
  bad[23] = 0x7F;  // metadata count near 2^63
  CHECK_THROWS_WITH(gguf_file::parse_bytes(bad, "b.gguf"), Catch::Contains("metadata entries cannot fit"));
  lmkit::io::gguf_writer g;
  g.add_strings("a.key", {"x"});
  std::string lying = written(g, "lying.gguf");
  lying[24 + 8 + 5 + 4 + 4] = 0x7F;  // the array's element count
  CHECK_THROWS_WITH(gguf_file::parse_bytes(lying, "l.gguf"), Catch::Contains("a.key: array of"));
}

TEST_CASE("gguf_writer's files read back with every value type and tensor", "[gguf][writer]") {
  lmkit::io::gguf_writer w;
  using lmkit::io::gguf_type;
  w.add_string("general.architecture", "llama");
  w.add_uint32("llama.block_count", 7);
  w.add_float32("llama.rope.freq_base", 500000.0f);
  w.add_bool("tokenizer.ggml.add_space_prefix", false);
  w.add("some.int8", {gguf_type::int8, std::int64_t(-5)});
  w.add("some.uint64", {gguf_type::uint64, std::uint64_t(1) << 40});
  w.add("some.float64", {gguf_type::float64, 0.125});
  w.add_strings("some.strings", {"a", "", "\xED\x95\x9C"});
  w.add_numbers("some.ints", gguf_type::int32, std::vector<int>{-1, 0, 7});
  w.add_uint32("general.alignment", 64);
  std::vector<float> values{1.5f, -2.0f, 3.25f, 0.0f, 8.0f, 9.0f};
  w.add_tensor("a.weight", {3, 2}, lmkit::io::ggml_type::f32, std::as_bytes(std::span(values)));
  std::vector<std::byte> block(34, std::byte{7});
  w.add_tensor("b.weight", {32}, lmkit::io::ggml_type::q8_0, block);
  CHECK_THROWS_AS(w.add_tensor("c", {31}, lmkit::io::ggml_type::q8_0, block), lmkit::argument_error);
  const auto path = lmkit::test::temporary_folder("gguf") / "written.gguf";
  w.write(path);

  const gguf_file f(path);
  CHECK(f.alignment() == 64);
  CHECK(f.get_string("general.architecture") == "llama");
  CHECK(f.get_uint("llama.block_count") == 7);
  CHECK(f.get_float("llama.rope.freq_base") == 500000.0);
  CHECK(f.get_bool("tokenizer.ggml.add_space_prefix") == false);
  CHECK(std::get<std::int64_t>(f.at("some.int8").value) == -5);
  CHECK(f.get_uint("some.uint64") == (std::uint64_t(1) << 40));
  CHECK(f.get_float("some.float64") == 0.125);
  CHECK(std::get<std::string>(f.get_array("some.strings").items[2].value) == "\xED\x95\x9C");
  CHECK(std::get<std::int64_t>(f.get_array("some.ints").items[0].value) == -1);
  const auto* a = f.find_tensor("a.weight");
  REQUIRE(a != nullptr);
  CHECK(a->dims == std::vector<std::uint64_t>{3, 2});
  const auto bytes = f.tensor_bytes(*a);
  CHECK(std::memcmp(bytes.data(), values.data(), bytes.size()) == 0);
  const auto* b = f.find_tensor("b.weight");
  REQUIRE(b != nullptr);
  CHECK(b->offset % 64 == 0);
  CHECK(f.tensor_bytes(*b)[33] == std::byte{7});
  CHECK(f.architecture() == "llama");

  lmkit::io::gguf_writer unnamed;  // a file that does not say its architecture
  unnamed.add_uint32("llama.block_count", 1);
  unnamed.write(path);
  CHECK(gguf_file(path).architecture().empty());
}
