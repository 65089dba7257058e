// Pretrained decoders (models/llama.hpp, gpt2.hpp, decoder.hpp) against the fixtures in
// ../shared/data/fixtures: logits within 1e-4 of PyTorch's at every prompt position and greedy
// tokens identical to PyTorch's (f32, f16) or to llama.cpp's (q8_0), for every file format.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lmkit/core/parallel.hpp"
#include "lmkit/io/gguf_writer.hpp"
#include "lmkit/io/llama2c_checkpoint.hpp"
#include "lmkit/io/safetensors_writer.hpp"
#include "lmkit/io/sentencepiece_model.hpp"
#include "lmkit/models/gpt_hugging_face.hpp"
#include "lmkit/models/load_decoder.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using lmkit::token_id;
using lmkit::test::shared_data;
using namespace lmkit::models;

namespace {

/// A float32 C-order .npy array (the reference logits): its shape and values.
struct npy_array {
  std::vector<std::size_t> shape;
  std::vector<float> values;
};

npy_array read_npy(const fs::path& path) {
  const std::string bytes = lmkit::test::read_file(path);
  REQUIRE(bytes.size() > 10);
  REQUIRE(bytes.compare(0, 6, "\x93NUMPY") == 0);
  const int major = static_cast<unsigned char>(bytes[6]);
  const std::size_t header_len = major == 1 ? static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8
                                            : std::size_t(static_cast<unsigned char>(bytes[8])) |
                                                  std::size_t(static_cast<unsigned char>(bytes[9])) << 8 |
                                                  std::size_t(static_cast<unsigned char>(bytes[10])) << 16;
  const std::size_t start = major == 1 ? 10 : 12;
  const std::string header = bytes.substr(start, header_len);
  REQUIRE(header.find("'<f4'") != std::string::npos);
  REQUIRE(header.find("'fortran_order': False") != std::string::npos);
  npy_array a;
  const auto open = header.find('(', header.find("'shape'"));
  const auto close = header.find(')', open);
  std::string dims = header.substr(open + 1, close - open - 1);
  std::size_t n = 1;
  for (std::size_t pos = 0; pos < dims.size();) {
    const auto comma = dims.find(',', pos);
    const std::string d = dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (d.find_first_of("0123456789") != std::string::npos) {
      a.shape.push_back(std::stoul(d));
      n *= a.shape.back();
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  REQUIRE(bytes.size() == start + header_len + n * 4);
  a.values.resize(n);
  std::memcpy(a.values.data(), bytes.data() + start + header_len, n * 4);
  return a;
}

struct reference {
  std::vector<token_id> prompt, greedy;
  npy_array logits;
};

reference read_reference(const fs::path& refs, const std::string& name) {
  const auto j = nlohmann::json::parse(lmkit::test::read_file(refs / (name + ".pytorch.json")));
  reference r;
  for (const auto& id : j["prompt_ids"]) r.prompt.push_back(id.get<token_id>());
  for (const auto& id : j["greedy_ids"]) r.greedy.push_back(id.get<token_id>());
  r.logits = read_npy(refs / (name + ".logits.npy"));
  return r;
}

float max_abs_difference(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  float m = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

std::vector<token_id> greedy(decoder_session& session, std::span<const token_id> prompt, std::size_t count) {
  std::vector<token_id> out;
  auto logits = session.append(prompt);
  for (std::size_t i = 0; i < count; ++i) {
    const auto best = static_cast<token_id>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(best);
    if (i + 1 < count) logits = session.append(best);
  }
  return out;
}

/// Logits at every prompt position within `tolerance` of PyTorch's, then 64 greedy tokens as PyTorch's.
void check_against_pytorch(const decoder& model, const fs::path& refs, float tolerance) {
  for (const std::string name : {"romeo", "citizen"}) {
    INFO("prompt " << name << ", model " << model.source());
    const reference r = read_reference(refs, name);
    const std::size_t vocab = model.config().vocab;
    REQUIRE(r.logits.shape == std::vector<std::size_t>{r.prompt.size(), vocab});
    decoder_session session(model);
    std::vector<float> logits(r.prompt.size() * vocab);
    session.append(r.prompt, logits);
    CHECK(max_abs_difference(logits, r.logits.values) < tolerance);

    decoder_session fresh(model);
    CHECK(greedy(fresh, r.prompt, r.greedy.size()) == r.greedy);
  }
}

}  // namespace

TEST_CASE("llama fixture: every file format gives PyTorch's logits and greedy tokens", "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-llama");
  for (const fs::path& file : {dir / "shakespeare-llama.bin", dir / "shakespeare-llama-f32.gguf", dir / "hf"}) {
    SECTION(file.filename().string()) {
      const decoder model = load_decoder(file);
      CHECK(model.config().family == decoder_family::llama);
      CHECK(model.config().dim == 128);
      CHECK(model.config().kv_heads == 4);
      check_against_pytorch(model, dir / "refs", 1e-4f);
    }
  }
}

TEST_CASE("gpt2 fixture: F16 safetensors give PyTorch's logits and greedy tokens", "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-gpt2");
  const decoder model = load_decoder(dir / "hf");
  CHECK(model.config().family == decoder_family::gpt2);
  CHECK(model.config().vocab == 50257);
  CHECK(model.weights().token_embedding.type == lmkit::weight_type::f16);
  check_against_pytorch(model, dir / "refs", 1e-4f);
}

// llama.cpp keeps keys and values in f16 and accumulates attention in f16; at the near ties of a
// quantised model's logits that arithmetic, not the quantisation alone, decides which token wins,
// so its greedy text is reproduced with attention_precision::llama_cpp_f16.
TEST_CASE("llama fixture: GGUF f32 and q8_0 continue as llama.cpp does", "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-llama");
  const auto tokenizer = lmkit::io::read_sentencepiece_model(dir / "tok512.model");
  for (const std::string type : {"f32", "q8_0"}) {
    const decoder model = load_decoder(dir / ("shakespeare-llama-" + type + ".gguf"));
    CHECK(name_of(model.weights().layers[0].wq.type) == type);
    for (const std::string name : {"romeo", "citizen"}) {
      INFO("prompt " << name << ", " << type);
      const reference r = read_reference(dir / "refs", name);
      std::string expected = lmkit::test::read_file(dir / "refs" / (name + ".llama-simple-" + type + ".txt"));
      // llama-simple prints the prompt's pieces from BOS ("<s> ROMEO:") and a final newline.
      REQUIRE(expected.starts_with("<s> "));
      expected = expected.substr(4);
      if (expected.ends_with('\n')) expected.pop_back();
      decoder_session session(model, 0, lmkit::serial_pool(), 512, attention_precision::llama_cpp_f16);
      std::vector<token_id> all(r.prompt.begin() + 1, r.prompt.end());
      const auto generated = greedy(session, r.prompt, r.greedy.size());
      all.insert(all.end(), generated.begin(), generated.end());
      CHECK(tokenizer.decode(all) == expected);
    }
  }
}

TEST_CASE("decoder: 1 and 2 threads give the same bits; a prompt at once or token by token the same logits",
          "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-llama");
  const decoder model = load_decoder(dir / "shakespeare-llama-f32.gguf");
  const reference r = read_reference(dir / "refs", "citizen");
  const std::size_t vocab = model.config().vocab;
  lmkit::thread_pool two(2);
  decoder_session one_thread(model, 0, lmkit::serial_pool()), two_threads(model, 0, two);
  std::vector<float> a(r.prompt.size() * vocab), b(a.size());
  one_thread.append(r.prompt, a);
  two_threads.append(r.prompt, b);
  CHECK(a == b);
  const auto la = one_thread.append(token_id{5});
  const std::vector<float> la_copy(la.begin(), la.end());
  const auto lb = two_threads.append(token_id{5});
  CHECK(std::equal(la_copy.begin(), la_copy.end(), lb.begin(), lb.end()));

  // Token by token (matrix-vector products, growing cache) against the whole prompt at once.
  decoder_session stepwise(model);
  for (std::size_t t = 0; t < r.prompt.size(); ++t) {
    const auto logits = stepwise.append(r.prompt[t]);
    CHECK(max_abs_difference(logits, std::span<const float>(a).subspan(t * vocab, vocab)) < 1e-4f);
  }
  // A prompt split into chunks smaller than itself.
  decoder_session chunked(model, 0, lmkit::serial_pool(), /*max_chunk=*/3);
  std::vector<float> c(a.size());
  chunked.append(r.prompt, c);
  CHECK(max_abs_difference(a, c) < 1e-4f);
  // truncate() rewinds: the same token at the same position gives the same logits.
  chunked.truncate(r.prompt.size() - 1);
  const auto again = chunked.append(r.prompt.back());
  CHECK(max_abs_difference(again, std::span<const float>(a).subspan((r.prompt.size() - 1) * vocab, vocab)) < 1e-4f);
}

TEST_CASE("decoder: a full context, an unknown token and a too-long context are clear errors", "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-llama");
  const decoder model = load_decoder(dir / "shakespeare-llama.bin");
  decoder_session session(model, 8);
  const std::vector<token_id> six{1, 2, 3, 4, 5, 6};
  session.append(six);
  CHECK_THROWS_WITH(session.append(six), Catch::Contains("context is full") && Catch::Contains("8"));
  CHECK(session.position() == 6);  // a refused append changes nothing
  CHECK_THROWS_WITH(session.append(token_id{512}), Catch::Contains("token 512") && Catch::Contains("vocabulary"));
  CHECK_THROWS_AS(decoder_session(model, 257), lmkit::argument_error);
}

namespace {

fs::path temp_dir(const std::string& name) {
  const fs::path p = lmkit::test::temporary_folder("decoder_" + name);
  fs::create_directories(p);
  return p;
}

void write_bytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A damaged copy of a Hugging Face folder, in temporary folder `name`: the tensors of `original`
/// without `drop`, `reshape`'s two dimensions swapped (the same bytes), and `config_text` as config.json.
fs::path rewritten_folder(const lmkit::io::sharded_safetensors& original, const std::string& name, const std::string& drop,
                          const std::string& reshape, const std::string& config_text) {
  const fs::path out = temp_dir(name);
  lmkit::io::safetensors_writer writer;
  for (const auto& n : original.names()) {
    if (n == drop) continue;
    const auto& t = original.at(n);
    std::vector<std::uint64_t> shape = t.shape;
    if (n == reshape) shape = {shape[1], shape[0]};
    writer.add(n, t.dtype, shape, t.bytes);
  }
  writer.write(out / "model.safetensors");
  write_bytes(out / "config.json", config_text);
  return out;
}

}  // namespace

TEST_CASE("llama2.c checkpoints: a damaged file is a format_error naming what and where", "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-llama");
  const std::string bytes = lmkit::test::read_file(dir / "shakespeare-llama.bin");
  const fs::path tmp = temp_dir("llama2c");
  write_bytes(tmp / "truncated.bin", std::string_view(bytes).substr(0, bytes.size() - 100));
  CHECK_THROWS_WITH(load_decoder(tmp / "truncated.bin"), Catch::Contains("truncated") && Catch::Contains("output"));
  write_bytes(tmp / "header.bin", std::string_view(bytes).substr(0, 20));
  CHECK_THROWS_WITH(load_decoder(tmp / "header.bin"), Catch::Contains("28-byte header"));
  std::string absurd = bytes;
  const std::int32_t layers = 1 << 30;
  std::memcpy(absurd.data() + 8, &layers, 4);
  write_bytes(tmp / "absurd.bin", absurd);
  CHECK_THROWS_WITH(load_decoder(tmp / "absurd.bin"), Catch::Contains("n_layers"));
  write_bytes(tmp / "extra.bin", bytes + "xxxx");
  CHECK_THROWS_WITH(load_decoder(tmp / "extra.bin"), Catch::Contains("bytes after the last tensor"));
}

TEST_CASE("Hugging Face files: missing or mis-shaped tensors and bad config.json are named", "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-llama/hf");
  const auto original = lmkit::io::open_safetensors(dir);
  const std::string config = lmkit::test::read_file(dir / "config.json");
  auto rewrite = [&](const std::string& name, const std::string& drop, const std::string& reshape,
                     const std::string& config_text) { return rewritten_folder(original, name, drop, reshape, config_text); };
  CHECK_THROWS_WITH(load_decoder(rewrite("missing", "model.layers.2.mlp.up_proj.weight", "", config)),
                    Catch::Contains("model.layers.2.mlp.up_proj.weight is missing"));
  CHECK_THROWS_WITH(load_decoder(rewrite("misshaped", "", "model.layers.1.self_attn.k_proj.weight", config)),
                    Catch::Contains("model.layers.1.self_attn.k_proj.weight has shape [128, 64]") &&
                        Catch::Contains("[64, 128]"));
  std::string bad = config;
  bad.replace(bad.find("\"num_attention_heads\": 8"), 24, "\"num_attention_heads\": 3");
  CHECK_THROWS_WITH(load_decoder(rewrite("heads", "", "", bad)), Catch::Contains("not a multiple"));
  CHECK_THROWS_WITH(load_decoder(rewrite("json", "", "", "{ \"model_type\": ")), Catch::Contains("not JSON"));
  std::string other = config;
  other.replace(other.find("\"llama\""), 7, "\"bert\"");
  CHECK_THROWS_WITH(load_decoder(rewrite("type", "", "", other)), Catch::Contains("bert"));
}

TEST_CASE("config.json: sizes of zero, keys of the wrong type and uneven heads are format errors", "[decoder]") {
  using lmkit::io::parse_hf_config;
  const nlohmann::json gpt2 = {{"model_type", "gpt2"}, {"vocab_size", 65}, {"n_positions", 64}, {"n_embd", 16},
                               {"n_layer", 2}, {"n_head", 4}};
  const nlohmann::json llama = {{"model_type", "llama"}, {"vocab_size", 32}, {"hidden_size", 16}, {"intermediate_size", 40},
                                {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"max_position_embeddings", 32}};
  auto parse = [](const nlohmann::json& j) { return parse_hf_config(j.dump(), "cfg/config.json"); };
  auto with = [](nlohmann::json j, const char* key, const nlohmann::json& value) {
    j[key] = value;
    return j;
  };
  const auto good = parse(gpt2).config;
  CHECK((good.dim == 16 && good.heads == 4 && good.head_dim == 4 && good.hidden == 64 && !good.gelu_erf));
  CHECK(parse(llama).config.head_dim == 4);
  // Zero heads were divided by before the sizes were checked (a crash, not an error).
  CHECK_THROWS_WITH(parse(with(gpt2, "n_head", 0)), Catch::Contains("cfg/config.json: key n_head is not a positive integer"));
  CHECK_THROWS_WITH(parse(with(llama, "num_attention_heads", 0)), Catch::Contains("num_attention_heads is not a positive"));
  CHECK_THROWS_WITH(parse(with(gpt2, "n_layer", -2)), Catch::Contains("n_layer is not a positive"));
  CHECK_THROWS_WITH(parse(with(gpt2, "n_embd", 16.5)), Catch::Contains("n_embd is not a positive"));
  CHECK_THROWS_AS(parse(with(gpt2, "activation_function", 3)), lmkit::format_error);  // was nlohmann's type_error
  CHECK(parse(with(gpt2, "activation_function", "gelu")).config.gelu_erf);
  // GPT-2's heads split n_embd evenly whatever head_dim says; Llama may set its own head_dim.
  CHECK_THROWS_WITH(parse(with(with(gpt2, "n_head", 3), "head_dim", 5)), Catch::Contains("not a multiple of the 3 heads"));
  const auto own = parse(with(with(llama, "num_attention_heads", 3), "head_dim", 8)).config;
  CHECK((own.heads == 3 && own.head_dim == 8));
}

TEST_CASE("GGUF files: a truncated file and a tensor of an unknown type are named", "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-llama");
  const std::string bytes = lmkit::test::read_file(dir / "shakespeare-llama-f32.gguf");
  const fs::path tmp = temp_dir("gguf");
  write_bytes(tmp / "truncated.gguf", std::string_view(bytes).substr(0, bytes.size() / 2));
  CHECK_THROWS_AS(load_decoder(tmp / "truncated.gguf"), lmkit::format_error);
  write_bytes(tmp / "short.gguf", std::string_view(bytes).substr(0, 100));
  CHECK_THROWS_AS(load_decoder(tmp / "short.gguf"), lmkit::format_error);
}

TEST_CASE("quantising the f32 GGUF gives llama-quantize's Q8_0 bytes for every matrix", "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-llama");
  const lmkit::io::gguf_file f32(dir / "shakespeare-llama-f32.gguf"), q8(dir / "shakespeare-llama-q8_0.gguf");
  std::size_t compared = 0;
  for (const auto& t : f32.tensors()) {
    const auto* ref = q8.find_tensor(t.name);
    REQUIRE(ref);
    if (ref->type != lmkit::io::ggml_type::q8_0) continue;
    INFO("tensor " << t.name);
    const auto bytes = f32.tensor_bytes(t);
    std::vector<float> values(t.elements());
    std::memcpy(values.data(), bytes.data(), bytes.size());
    std::vector<lmkit::block_q8_0> blocks(values.size() / 32);
    lmkit::kernels::quantize_q8_0(values, blocks);
    const auto expected = q8.tensor_bytes(*ref);
    REQUIRE(expected.size() == blocks.size() * sizeof(lmkit::block_q8_0));
    CHECK(std::memcmp(expected.data(), blocks.data(), expected.size()) == 0);
    ++compared;
  }
  CHECK(compared == 30);  // every matrix: 7 per layer, the embedding and the output
}

TEST_CASE("a Hugging Face model in two shards with model.safetensors.index.json loads as the single file",
          "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-llama/hf");
  const auto original = lmkit::io::open_safetensors(dir);
  const fs::path out = temp_dir("sharded");
  lmkit::io::safetensors_writer first, second;
  nlohmann::json map;
  std::size_t i = 0;
  for (const auto& n : original.names()) {
    const auto& t = original.at(n);
    const bool in_first = i++ % 2 == 0;
    (in_first ? first : second).add(n, t.dtype, t.shape, t.bytes);
    map[n] = in_first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  first.write(out / "model-00001-of-00002.safetensors");
  second.write(out / "model-00002-of-00002.safetensors");
  write_bytes(out / "model.safetensors.index.json", nlohmann::json{{"metadata", {}}, {"weight_map", map}}.dump());
  fs::copy_file(dir / "config.json", out / "config.json", fs::copy_options::overwrite_existing);

  const decoder sharded = load_decoder(out), single = load_decoder(dir);
  const std::vector<token_id> prompt{1, 383, 479, 489, 478, 479, 471};
  decoder_session a(sharded), b(single);
  const auto la = a.append(prompt);
  const std::vector<float> copy(la.begin(), la.end());
  const auto lb = b.append(prompt);
  CHECK(std::equal(copy.begin(), copy.end(), lb.begin(), lb.end()));
}

TEST_CASE("decoder: recorded attention weights are distributions over the positions so far", "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-llama");
  const decoder model = load_decoder(dir / "shakespeare-llama.bin");
  const std::vector<token_id> prompt{1, 383, 479, 489, 478, 479, 471};
  decoder_session plain(model), recording(model);
  recording.record_attention(true);
  CHECK_THROWS_WITH(recording.attention_weights(0, 0), Catch::Contains("no attention weights"));
  const auto a = plain.append(prompt);
  const std::vector<float> expected(a.begin(), a.end());
  const auto b = recording.append(prompt);
  CHECK(std::equal(expected.begin(), expected.end(), b.begin(), b.end()));  // recording changes nothing
  for (std::size_t l = 0; l < model.config().layers; ++l)
    for (std::size_t h = 0; h < model.config().heads; ++h) {
      const auto w = recording.attention_weights(l, h);
      REQUIRE(w.size() == prompt.size());
      double sum = 0.0;
      for (float x : w) {
        CHECK(x >= 0.0f);
        sum += x;
      }
      CHECK(std::abs(sum - 1.0) < 1e-5);
    }
  recording.append(token_id{13});
  CHECK(recording.attention_weights(3, 7).size() == prompt.size() + 1);
  // The first position attends only to itself.
  decoder_session first(model);
  first.record_attention(true);
  first.append(token_id{1});
  CHECK(first.attention_weights(2, 5)[0] == 1.0f);
  CHECK_THROWS_AS(first.attention_weights(4, 0), lmkit::argument_error);
  decoder_session f16(model, 0, lmkit::serial_pool(), 512, attention_precision::llama_cpp_f16);
  CHECK_THROWS_AS(f16.record_attention(true), lmkit::argument_error);
}

namespace {

/// The GPT-2 fixture written as a gpt2 GGUF from the weights its HF load produced ([out, in], f16
/// matrices, f32 vectors); `retype` names a tensor written as Q4_1 instead (to test a refusal).
void write_gpt2_gguf(const decoder& hf, const fs::path& path, const std::string& retype = "") {
  const auto& c = hf.config();
  const auto& w = hf.weights();
  lmkit::io::gguf_writer out;
  out.add_string("general.architecture", "gpt2");
  out.add_uint32("gpt2.embedding_length", static_cast<std::uint32_t>(c.dim));
  out.add_uint32("gpt2.block_count", static_cast<std::uint32_t>(c.layers));
  out.add_uint32("gpt2.feed_forward_length", static_cast<std::uint32_t>(c.hidden));
  out.add_uint32("gpt2.attention.head_count", static_cast<std::uint32_t>(c.heads));
  out.add_uint32("gpt2.context_length", static_cast<std::uint32_t>(c.context));
  out.add_float32("gpt2.attention.layer_norm_epsilon", c.norm_eps);
  auto matrix = [&](const std::string& name, const lmkit::weight_matrix& m, std::size_t rows) {
    REQUIRE(m.type == lmkit::weight_type::f16);
    const auto* bytes = static_cast<const std::byte*>(m.data);
    auto type = lmkit::io::ggml_type::f16;
    std::vector<std::byte> data(bytes, bytes + rows * m.cols * 2);
    if (name == retype) {  // Q4_1: a ggml type lmkit does not run, of the right size
      type = lmkit::io::ggml_type::q4_1;
      data.assign(rows * m.cols / 32 * 20, std::byte{0});
    }
    out.add_tensor(name, {m.cols, rows}, type, data);
  };
  auto vector = [&](const std::string& name, std::span<const float> v) {
    out.add_tensor(name, {v.size()}, lmkit::io::ggml_type::f32, std::as_bytes(v));
  };
  matrix("token_embd.weight", w.token_embedding, c.vocab);
  matrix("position_embd.weight", w.position_embedding, c.context);
  for (std::size_t l = 0; l < c.layers; ++l) {
    const auto& lw = w.layers[l];
    const std::string b = "blk." + std::to_string(l) + ".";
    vector(b + "attn_norm.weight", lw.attn_norm);
    vector(b + "attn_norm.bias", lw.attn_norm_bias);
    matrix(b + "attn_qkv.weight", lw.wq, 3 * c.dim);  // q, k, v rows are one buffer
    std::vector<float> qkv_bias(lw.bq.begin(), lw.bq.end());
    qkv_bias.insert(qkv_bias.end(), lw.bk.begin(), lw.bk.end());
    qkv_bias.insert(qkv_bias.end(), lw.bv.begin(), lw.bv.end());
    vector(b + "attn_qkv.bias", qkv_bias);
    matrix(b + "attn_output.weight", lw.wo, c.dim);
    vector(b + "attn_output.bias", lw.bo);
    vector(b + "ffn_norm.weight", lw.ffn_norm);
    vector(b + "ffn_norm.bias", lw.ffn_norm_bias);
    matrix(b + "ffn_up.weight", lw.w_up, c.hidden);
    vector(b + "ffn_up.bias", lw.b_up);
    matrix(b + "ffn_down.weight", lw.w_down, c.dim);
    vector(b + "ffn_down.bias", lw.b_down);
  }
  vector("output_norm.weight", w.final_norm);
  vector("output_norm.bias", w.final_norm_bias);
  out.write(path);
}

}  // namespace

TEST_CASE("gpt2 GGUF: the fixture written as GGUF gives the Hugging Face load's logits bit for bit", "[decoder]") {
  const fs::path dir = shared_data("fixtures/shakespeare-gpt2");
  const decoder hf = load_decoder(dir / "hf");
  const fs::path tmp = temp_dir("gpt2_gguf");
  write_gpt2_gguf(hf, tmp / "gpt2.gguf");
  const decoder gguf = load_decoder(tmp / "gpt2.gguf");
  CHECK(gguf.config().family == decoder_family::gpt2);
  CHECK(gguf.weights().output.data == gguf.weights().token_embedding.data);  // tied: no output.weight
  const reference r = read_reference(dir / "refs", "citizen");
  const std::size_t vocab = hf.config().vocab;
  std::vector<float> a(r.prompt.size() * vocab), b(a.size());
  decoder_session(hf).append(r.prompt, a);
  decoder_session(gguf).append(r.prompt, b);
  CHECK(a == b);
  CHECK(max_abs_difference(b, r.logits.values) < 1e-4f);

  // A tensor of a type lmkit does not run is refused by name.
  write_gpt2_gguf(hf, tmp / "k-quant.gguf", "blk.1.ffn_up.weight");
  CHECK_THROWS_WITH(load_decoder(tmp / "k-quant.gguf"),
                    Catch::Contains("blk.1.ffn_up.weight") && Catch::Contains("does not run"));
}

TEST_CASE("gpt2 fixture as a trainable models::gpt: PyTorch's logits; written back as Hugging Face files, the same model",
          "[decoder][hugging_face]") {
  const fs::path dir = shared_data("fixtures/shakespeare-gpt2");
  gpt<> model = load_hugging_face_gpt(dir / "hf");
  CHECK(model.config().bias == lmkit::nn::bias::yes);
  CHECK(model.config().activation == lmkit::nn::activation::gelu_tanh);
  CHECK(model.config().hidden_width() == 4 * model.config().dim);
  // The training forward (not the decoder's) over each prompt, against PyTorch's logits.
  const lmkit::nn::run_context eval{&lmkit::serial_pool(), false};
  for (const std::string name : {"romeo", "citizen"}) {
    INFO("prompt " << name);
    const reference r = read_reference(dir / "refs", name);
    const lmkit::nn::const_matrix logits = model.logits(r.prompt, {1, r.prompt.size()}, eval);
    CHECK(max_abs_difference(logits.span(), r.logits.values) < 1e-4f);
  }

  // Written as Hugging Face files and read back by the decoder and by the trainable model: the
  // fixture's parameters (f16 values, widened) and logits survive.
  const fs::path out = temp_dir("gpt_hf_roundtrip");
  save_hugging_face_gpt(model, out);
  const reference romeo = read_reference(dir / "refs", "romeo");
  const decoder reloaded = load_decoder(out);
  decoder_session session(reloaded);
  std::vector<float> logits(romeo.prompt.size() * reloaded.config().vocab);
  session.append(romeo.prompt, logits);
  CHECK(max_abs_difference(logits, romeo.logits.values) < 1e-4f);
  gpt<> again = load_hugging_face_gpt(out);
  std::vector<std::vector<float>> a, b;
  model.visit_parameters([&](std::string_view, lmkit::nn::parameter& p) { a.emplace_back(p.value().begin(), p.value().end()); });
  again.visit_parameters([&](std::string_view, lmkit::nn::parameter& p) { b.emplace_back(p.value().begin(), p.value().end()); });
  REQUIRE(a.size() == b.size());
  std::size_t differing = 0;  // counted, not compared as vectors: Catch would print millions of floats
  for (std::size_t k = 0; k < a.size(); ++k) differing += a[k] != b[k];
  CHECK(differing == 0);
}

TEST_CASE("a nanoGPT-style GPT (no biases, GELU's erf form) trained here runs as Hugging Face GPT-2 files",
          "[decoder][hugging_face]") {
  const gpt_config c{.vocab = 40, .context = 16, .layers = 2, .heads = 2, .dim = 32};
  gpt<> model(c);
  model.init(lmkit::seed{5});
  // A few steps away from the initialisation, so that every tensor is its own.
  model.visit_parameters([](std::string_view, lmkit::nn::parameter& p) {
    lmkit::philox rng(lmkit::seed{p.size()});
    for (float& v : p.value()) v += 0.05f * static_cast<float>(rng.normal());
  });
  const fs::path out = temp_dir("gpt_hf_nanogpt");
  save_hugging_face_gpt(model, out);
  const auto config = nlohmann::json::parse(lmkit::test::read_file(out / "config.json"));
  CHECK(config["activation_function"] == "gelu");
  CHECK(config["n_inner"] == 128);
  CHECK(lmkit::io::safetensors_file(out / "model.safetensors").metadata().at("format") == "pt");
  // Conv1D's [in, out]: c_fc of a 32-wide model with 128 hidden units is stored [32, 128].
  CHECK(lmkit::io::safetensors_file(out / "model.safetensors").at("transformer.h.0.mlp.c_fc.weight").shape ==
        std::vector<std::uint64_t>{32, 128});

  const std::vector<token_id> prompt = {1, 7, 3, 39, 0, 12, 12, 5, 30};
  const lmkit::nn::const_matrix ours = model.logits(prompt, {1, prompt.size()}, {&lmkit::serial_pool(), false});
  const std::vector<float> expected(ours.data(), ours.data() + ours.size());
  const decoder reloaded = load_decoder(out);
  CHECK(reloaded.config().gelu_erf);
  decoder_session session(reloaded);
  std::vector<float> logits(prompt.size() * c.vocab);
  session.append(prompt, logits);
  CHECK(max_abs_difference(logits, expected) < 1e-5f);
  // Read back as a trainable model it has biases (zero) and the same function.
  gpt<> again = load_hugging_face_gpt(out);
  CHECK(again.config().bias == lmkit::nn::bias::yes);
  const lmkit::nn::const_matrix theirs = again.logits(prompt, {1, prompt.size()}, {&lmkit::serial_pool(), false});
  CHECK(max_abs_difference(theirs.span(), expected) < 1e-5f);

  // A file that lacks a tensor, or has it in lmkit's [out, in] instead of Conv1D's [in, out], is named.
  const auto original = lmkit::io::open_safetensors(out);
  const std::string config_text = lmkit::test::read_file(out / "config.json");
  auto rewrite = [&](const std::string& name, const std::string& drop, const std::string& transpose) {
    return rewritten_folder(original, name, drop, transpose, config_text);
  };
  CHECK_THROWS_WITH(load_hugging_face_gpt(rewrite("gpt_hf_missing", "transformer.h.1.ln_2.bias", "")),
                    Catch::Contains("transformer.h.1.ln_2.bias is missing"));
  CHECK_THROWS_WITH(load_hugging_face_gpt(rewrite("gpt_hf_transposed", "", "transformer.h.0.mlp.c_fc.weight")),
                    Catch::Contains("transformer.h.0.mlp.c_fc.weight has shape [128, 32], the model wants [32, 128]"));
  // An output layer of its own (an lm_head that is not wte) cannot live in the tied trainable GPT.
  const fs::path untied = temp_dir("gpt_hf_untied");
  lmkit::io::safetensors_writer writer;
  for (const auto& n : original.names()) writer.add(n, original.at(n).dtype, original.at(n).shape, original.at(n).bytes);
  const std::vector<float> head(c.vocab * c.dim, 0.5f);
  writer.add("lm_head.weight", {c.vocab, c.dim}, head);
  writer.write(untied / "model.safetensors");
  write_bytes(untied / "config.json", config_text);
  CHECK_THROWS_WITH(load_hugging_face_gpt(untied), Catch::Contains("lm_head.weight differs from wte.weight"));
  // So is a config that says the output layer is not tied.
  std::string untied_config = config_text;
  const auto tied = untied_config.find("\"tie_word_embeddings\": true");
  REQUIRE(tied != std::string::npos);
  untied_config.replace(tied, 27, "\"tie_word_embeddings\": false");
  CHECK_THROWS_WITH(load_hugging_face_gpt(rewritten_folder(original, "gpt_hf_untied_config", "", "", untied_config)),
                    Catch::Contains("tie_word_embeddings is false"));
  // GPT-2 has no SiLU feed-forward: such a model is not written as one.
  gpt<> silu({.vocab = 40, .context = 16, .layers = 1, .heads = 2, .dim = 32, .activation = lmkit::nn::activation::silu});
  CHECK_THROWS_WITH(save_hugging_face_gpt(silu, temp_dir("gpt_hf_silu")), Catch::Contains("SiLU"));
}
