// Writes seed inputs for the fuzz targets: a small Kneser-Ney model (from a synthetic corpus) as
// ARPA text and in the binary format; a small BPE vocabulary as a tiktoken rank file and as GPT-2's
// encoder.json + vocab.bpe; texts for the encoder.  make_seeds OUTPUT_DIR
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lmkit/io/gguf_writer.hpp"
#include "lmkit/kernels/kernels.hpp"
#include "lmkit/io/safetensors_writer.hpp"
#include "lmkit/text/byte_unicode.hpp"
#include "lmkit/text/pretokenizer.hpp"
#include "small_bpe.hpp"

#include "lmkit/core/rng.hpp"
#include "lmkit/io/arpa.hpp"
#include "lmkit/io/ngram_binary.hpp"
#include "lmkit/models/ngram/kneser_ney.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  // Zipf-like words so that every order sees counts 1 to 4 (the discounts need them).
  lmkit::philox rng(lmkit::seed{3});
  std::ostringstream corpus;
  for (int line = 0; line < 300; ++line) {
    const int words = 1 + static_cast<int>(rng() % 8);
    for (int w = 0; w < words; ++w) {
      const double u = rng.uniform_double();
      corpus << (w ? " " : "") << "w" << static_cast<int>(400 * u * u * u * u);
    }
    corpus << "\n";
  }
  std::istringstream lines(corpus.str());
  const auto model = lmkit::ngram::estimate_kneser_ney(lines, 3);
  lmkit::io::write_arpa(model, dir / "small.arpa");
  lmkit::io::write_ngram_binary(model, dir / "small.bin");

  std::ofstream(dir / "small.tiktoken", std::ios::binary) << lmkit::fuzz::small_bpe_rank_file();
  // GPT-2's files: each longer token is made by the first split whose halves are tokens.
  const auto tokens = lmkit::fuzz::small_bpe_tokens();
  nlohmann::json encoder = nlohmann::json::object();
  std::string merges = "#version: 0.2\n";
  for (std::size_t id = 0; id < tokens.size(); ++id) {
    encoder[lmkit::text::bytes_to_printable(tokens[id])] = id;
    for (std::size_t cut = 1; cut < tokens[id].size(); ++cut) {
      const std::string left = tokens[id].substr(0, cut), right = tokens[id].substr(cut);
      if (std::find(tokens.begin(), tokens.end(), left) != tokens.end() &&
          std::find(tokens.begin(), tokens.end(), right) != tokens.end()) {
        merges += lmkit::text::bytes_to_printable(left) + " " + lmkit::text::bytes_to_printable(right) + "\n";
        break;
      }
    }
  }
  std::ofstream(dir / "gpt2.pair", std::ios::binary) << encoder.dump() << '\0' << merges;
  // The same vocabulary as a Hugging Face tokenizer.json with a Split + ByteLevel pre-tokenizer.
  nlohmann::json merge_list = nlohmann::json::array();
  std::istringstream merge_lines(merges);
  std::string merge_line;
  std::getline(merge_lines, merge_line);  // #version
  while (std::getline(merge_lines, merge_line)) merge_list.push_back(merge_line);
  nlohmann::json hf = {
      {"added_tokens", {{{"id", tokens.size()}, {"content", "<|end|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", std::string(lmkit::text::regex_of(lmkit::text::split_pattern::cl100k_base))}}},
           {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"model", {{"type", "BPE"}, {"byte_fallback", false}, {"ignore_merges", true}, {"vocab", encoder}, {"merges", merge_list}}}};
  std::ofstream(dir / "tokenizer.json", std::ios::binary) << hf.dump(1);
  // GGUF: a SentencePiece-type tokenizer (the same vocabulary as pieces, "▁" for spaces, byte
  // pieces) with two small tensors, and a gpt2-type tokenizer.
  {
    lmkit::io::gguf_writer w;
    std::vector<std::string> pieces{"<unk>", "<s>", "</s>"};
    std::vector<float> scores(3, 0.0f);
    std::vector<int> types{2, 3, 3};
    for (int b = 0; b < 256; ++b) {
      const char* digits = "0123456789ABCDEF";
      pieces.push_back(std::string("<0x") + digits[b >> 4] + digits[b & 15] + ">");
      scores.push_back(0.0f);
      types.push_back(6);
    }
    for (const auto& t : tokens) {
      if (t.size() == 1 || lmkit::text::check_utf8(t).offset != lmkit::text::utf8_check::npos) continue;
      std::string piece;
      for (const char c : t) piece += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
      pieces.push_back(piece);
      scores.push_back(-float(pieces.size()));
      types.push_back(1);
    }
    for (const char* c : {"\xE2\x96\x81", "a", "b", "e", "h", "t", "n", "d"}) {
      pieces.push_back(c);
      scores.push_back(-1000.0f);
      types.push_back(1);
    }
    for (const char* c : {"th", "the", "<sep>"}) {  // user-defined: matched whole, the longest first
      pieces.push_back(c);
      scores.push_back(0.0f);
      types.push_back(4);
    }
    w.add_string("general.architecture", "llama");
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_strings("tokenizer.ggml.tokens", pieces);
    w.add_numbers("tokenizer.ggml.scores", lmkit::io::gguf_type::float32, scores);
    w.add_numbers("tokenizer.ggml.token_type", lmkit::io::gguf_type::int32, types);
    w.add_uint32("tokenizer.ggml.bos_token_id", 1);
    w.add_uint32("tokenizer.ggml.eos_token_id", 2);
    const std::vector<float> weights{1, 2, 3, 4, 5, 6, 7, 8};
    w.add_tensor("output_norm.weight", {8}, lmkit::io::ggml_type::f32, std::as_bytes(std::span(weights)));
    const std::vector<std::byte> block(34, std::byte{1});
    w.add_tensor("blk.0.attn_q.weight", {32}, lmkit::io::ggml_type::q8_0, block);
    w.write(dir / "llama.gguf");
  }
  {
    lmkit::io::gguf_writer w;
    std::vector<std::string> printable;
    for (const auto& t : tokens) printable.push_back(lmkit::text::bytes_to_printable(t));
    std::vector<std::string> merge_lines;
    std::istringstream lines(merges);
    std::string line;
    std::getline(lines, line);
    while (std::getline(lines, line)) merge_lines.push_back(line);
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", "llama-bpe");
    w.add_strings("tokenizer.ggml.tokens", printable);
    w.add_strings("tokenizer.ggml.merges", merge_lines);
    w.write(dir / "gpt2.gguf");
  }
  // Tiny models for the decoder loaders: a Llama GGUF (f32 and q8_0 matrices, grouped-query heads),
  // a GPT-2 GGUF (fused qkv, biases) and a llama2.c checkpoint, with small random weights.
  {
    const std::size_t dim = 32, hidden = 64, vocab = 16, context = 8, layers = 2, heads = 4, kv_heads = 2;
    lmkit::philox weights_rng(lmkit::seed{11});
    auto random = [&](std::size_t n) {
      std::vector<float> v(n);
      for (auto& x : v) x = static_cast<float>(weights_rng.uniform_double() - 0.5) * 0.2f;
      return v;
    };
    auto add_f32 = [&](lmkit::io::gguf_writer& w, const std::string& name, std::vector<std::uint64_t> dims) {
      std::uint64_t n = 1;
      for (auto d : dims) n *= d;
      const auto v = random(n);
      w.add_tensor(name, std::move(dims), lmkit::io::ggml_type::f32, std::as_bytes(std::span(v)));
    };
    auto add_q8 = [&](lmkit::io::gguf_writer& w, const std::string& name, std::vector<std::uint64_t> dims) {
      const auto v = random(dims[0] * dims[1]);
      std::vector<lmkit::block_q8_0> blocks(v.size() / 32);
      lmkit::kernels::quantize_q8_0(v, blocks);
      w.add_tensor(name, std::move(dims), lmkit::io::ggml_type::q8_0, std::as_bytes(std::span(blocks)));
    };
    {
      lmkit::io::gguf_writer w;
      w.add_string("general.architecture", "llama");
      w.add_uint32("llama.embedding_length", dim);
      w.add_uint32("llama.block_count", layers);
      w.add_uint32("llama.feed_forward_length", hidden);
      w.add_uint32("llama.attention.head_count", heads);
      w.add_uint32("llama.attention.head_count_kv", kv_heads);
      w.add_uint32("llama.context_length", context);
      w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
      add_q8(w, "token_embd.weight", {dim, vocab});
      for (std::size_t l = 0; l < layers; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        add_f32(w, b + "attn_norm.weight", {dim});
        add_q8(w, b + "attn_q.weight", {dim, dim});
        add_f32(w, b + "attn_k.weight", {dim, dim / heads * kv_heads});
        add_q8(w, b + "attn_v.weight", {dim, dim / heads * kv_heads});
        add_f32(w, b + "attn_output.weight", {dim, dim});
        add_f32(w, b + "ffn_norm.weight", {dim});
        add_q8(w, b + "ffn_gate.weight", {dim, hidden});
        add_f32(w, b + "ffn_up.weight", {dim, hidden});
        add_q8(w, b + "ffn_down.weight", {hidden, dim});
      }
      add_f32(w, "output_norm.weight", {dim});
      w.write(dir / "tiny-llama.gguf");
    }
    {
      lmkit::io::gguf_writer w;
      w.add_string("general.architecture", "gpt2");
      w.add_uint32("gpt2.embedding_length", dim);
      w.add_uint32("gpt2.block_count", 1);
      w.add_uint32("gpt2.feed_forward_length", hidden);
      w.add_uint32("gpt2.attention.head_count", heads);
      w.add_uint32("gpt2.context_length", context);
      w.add_float32("gpt2.attention.layer_norm_epsilon", 1e-5f);
      add_f32(w, "token_embd.weight", {dim, vocab});
      add_f32(w, "position_embd.weight", {dim, context});
      for (const char* n : {"attn_norm", "ffn_norm"}) {
        add_f32(w, std::string("blk.0.") + n + ".weight", {dim});
        add_f32(w, std::string("blk.0.") + n + ".bias", {dim});
      }
      add_q8(w, "blk.0.attn_qkv.weight", {dim, 3 * dim});
      add_f32(w, "blk.0.attn_qkv.bias", {3 * dim});
      add_f32(w, "blk.0.attn_output.weight", {dim, dim});
      add_f32(w, "blk.0.attn_output.bias", {dim});
      add_f32(w, "blk.0.ffn_up.weight", {dim, hidden});
      add_f32(w, "blk.0.ffn_up.bias", {hidden});
      add_q8(w, "blk.0.ffn_down.weight", {hidden, dim});
      add_f32(w, "blk.0.ffn_down.bias", {dim});
      add_f32(w, "output_norm.weight", {dim});
      add_f32(w, "output_norm.bias", {dim});
      w.write(dir / "tiny-gpt2.gguf");
    }
    {
      // llama2.c: header, then every tensor in run.c's order (here all random, one shared classifier).
      const std::int32_t header[7] = {std::int32_t(dim), std::int32_t(hidden), 1, std::int32_t(heads),
                                      std::int32_t(kv_heads), std::int32_t(vocab), std::int32_t(context)};
      const std::size_t kv = dim / heads * kv_heads;
      const std::size_t floats = vocab * dim + dim + 2 * dim * dim + 2 * kv * dim + dim + 3 * hidden * dim + dim +
                                 2 * context * (dim / heads / 2);
      const auto v = random(floats);
      std::ofstream out(dir / "tiny-llama2c.bin", std::ios::binary);
      out.write(reinterpret_cast<const char*>(header), sizeof header);
      out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
    }
  }
  // safetensors: a small file of several dtypes (an empty tensor and a scalar among them) and an index.
  {
    lmkit::io::safetensors_writer w;
    const std::vector<float> weights{1, -2, 0.5f, 3, 4, 5};
    w.add("model.layers.0.weight", {2, 3}, weights);
    const std::vector<std::uint16_t> halves{0x3C00, 0xC000, 0x3555, 0x7BFF};
    w.add("model.norm.weight", lmkit::io::safetensors_dtype::f16, {4}, std::as_bytes(std::span(halves)));
    w.add("lm_head.weight", lmkit::io::safetensors_dtype::bf16, {2, 2}, std::as_bytes(std::span(halves)));
    const std::vector<std::int64_t> ids{7, -1};
    w.add("ids", lmkit::io::safetensors_dtype::i64, {2}, std::as_bytes(std::span(ids)));
    const std::vector<std::uint8_t> mask{1, 0, 1};
    w.add("mask", lmkit::io::safetensors_dtype::boolean, {3}, std::as_bytes(std::span(mask)));
    w.add("empty", lmkit::io::safetensors_dtype::f32, {0, 4}, {});
    w.add("scale", lmkit::io::safetensors_dtype::f32, {}, std::as_bytes(std::span(weights).first(1)));
    w.add_metadata("format", "pt");
    w.write(dir / "small.safetensors");
    const nlohmann::json index = {{"metadata", {{"total_size", 64}}},
                                  {"weight_map", {{"model.layers.0.weight", "model-00001-of-00002.safetensors"},
                                                  {"lm_head.weight", "model-00002-of-00002.safetensors"}}}};
    std::ofstream(dir / "model.safetensors.index.json", std::ios::binary) << index.dump(2);
  }
  // Hugging Face config.json files: a small GPT-2 (nanoGPT's shape, erf GELU) and a Llama with
  // grouped-query heads and its own head_dim.
  {
    const nlohmann::json gpt2 = {{"model_type", "gpt2"}, {"vocab_size", 65}, {"n_positions", 64}, {"n_embd", 16},
                                 {"n_layer", 2}, {"n_head", 4}, {"n_inner", nullptr}, {"activation_function", "gelu"},
                                 {"layer_norm_epsilon", 1e-5}, {"tie_word_embeddings", true}, {"bos_token_id", 0},
                                 {"eos_token_id", 0}, {"scale_attn_weights", true}};
    std::ofstream(dir / "gpt2-config.json", std::ios::binary) << gpt2.dump(2);
    const nlohmann::json llama = {{"model_type", "llama"}, {"vocab_size", 32}, {"hidden_size", 16},
                                  {"intermediate_size", 40}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                                  {"num_key_value_heads", 2}, {"head_dim", 8}, {"max_position_embeddings", 32},
                                  {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0}, {"hidden_act", "silu"},
                                  {"tie_word_embeddings", false}, {"bos_token_id", 1}, {"eos_token_id", 2}};
    std::ofstream(dir / "llama-config.json", std::ios::binary) << llama.dump(2);
  }
  // Encoder inputs: the first byte picks the pattern.
  const std::string text = "The theory's 12345 and  ababab\r\n\t\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 <|end|> ====x  \n\n";
  for (char pattern = 0; pattern < 3; ++pattern)
    std::ofstream(dir / ("text" + std::to_string(int(pattern)) + ".txt"), std::ios::binary) << pattern << text;
  return 0;
}
