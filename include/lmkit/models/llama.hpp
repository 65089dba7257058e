// The Llama family (Touvron et al. 2023; also TinyLlama, llama2.c's stories models, Mistral-shaped
// models without sliding windows): RMS norm, rotary positions, SwiGLU, grouped-query attention.
// Loaded from any of its three usual files, each mapped and viewed in place:
//
//   GGUF (llama.cpp)          q/k rows interleaved for RoPE on pairs (2i, 2i+1); keys "llama.*"
//   Hugging Face safetensors  with config.json beside it; q/k rows permuted for rotate-half RoPE
//   llama2.c legacy .bin      f32, pairs (2i, 2i+1), RMS epsilon 1e-5, RoPE base 10000
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "lmkit/io/gguf.hpp"
#include "lmkit/io/hf_config.hpp"
#include "lmkit/io/llama2c_checkpoint.hpp"
#include "lmkit/io/safetensors.hpp"
#include "lmkit/models/decoder.hpp"
#include "lmkit/models/tensor_sources.hpp"

namespace lmkit::models::llama {

namespace detail {

/// The tensor names of one file layout.
struct names {
  std::string embedding, final_norm, output;
  std::string (*layer)(std::size_t layer, std::string_view what);  // what: attn_norm, q, k, v, o, ffn_norm, gate, up, down
};

inline std::string gguf_layer_name(std::size_t l, std::string_view what) {
  const std::string p = "blk." + std::to_string(l) + ".";
  if (what == "q") return p + "attn_q.weight";
  if (what == "k") return p + "attn_k.weight";
  if (what == "v") return p + "attn_v.weight";
  if (what == "o") return p + "attn_output.weight";
  if (what == "attn_norm") return p + "attn_norm.weight";
  if (what == "ffn_norm") return p + "ffn_norm.weight";
  return p + "ffn_" + std::string(what) + ".weight";  // gate, up, down
}

inline std::string hf_layer_name(std::size_t l, std::string_view what) {
  const std::string p = "model.layers." + std::to_string(l) + ".";
  if (what == "attn_norm") return p + "input_layernorm.weight";
  if (what == "ffn_norm") return p + "post_attention_layernorm.weight";
  if (what.size() == 1) return p + "self_attn." + std::string(what) + "_proj.weight";  // q, k, v, o
  return p + "mlp." + std::string(what) + "_proj.weight";
}

inline std::string llama2c_layer_name(std::size_t l, std::string_view what) {
  const std::string p = "layers." + std::to_string(l) + ".";
  if (what == "attn_norm") return p + "attention_norm";
  if (what == "ffn_norm") return p + "ffn_norm";
  if (what == "q") return p + "wq";
  if (what == "k") return p + "wk";
  if (what == "v") return p + "wv";
  if (what == "o") return p + "wo";
  if (what == "gate") return p + "w1";
  if (what == "down") return p + "w2";
  return p + "w3";  // up
}

/// Builds the weights of `c` from a file with the layout `n`. A missing output layer means the
/// output is tied to the token embedding.
inline decoder build(const decoder_config& c, const names& n, tensor_lookup lookup, std::shared_ptr<const void> file,
                     const std::string& source) {
  c.validate(source);
  decoder_weights w;
  w.files.push_back(std::move(file));
  const weight_loader load(std::move(lookup), source, w);
  w.token_embedding = load.matrix(n.embedding, c.vocab, c.dim);
  for (std::size_t l = 0; l < c.layers; ++l) {
    decoder_layer_weights& lw = w.layers.emplace_back();
    auto name = [&](std::string_view what) { return n.layer(l, what); };
    lw.attn_norm = load.vector(name("attn_norm"), c.dim);
    lw.wq = load.matrix(name("q"), c.q_width(), c.dim);
    lw.wk = load.matrix(name("k"), c.kv_width(), c.dim);
    lw.wv = load.matrix(name("v"), c.kv_width(), c.dim);
    lw.wo = load.matrix(name("o"), c.dim, c.q_width());
    // Attention biases (Qwen-like files, HF attention_bias = true) when the file has them.
    auto bias_name = [&](std::string_view what) {
      std::string s = name(what);
      return s.ends_with(".weight") ? s.substr(0, s.size() - 7) + ".bias" : s + ".bias";
    };
    lw.bq = load.optional_vector(bias_name("q"), c.q_width());
    lw.bk = load.optional_vector(bias_name("k"), c.kv_width());
    lw.bv = load.optional_vector(bias_name("v"), c.kv_width());
    lw.bo = load.optional_vector(bias_name("o"), c.dim);
    lw.ffn_norm = load.vector(name("ffn_norm"), c.dim);
    lw.w_gate = load.matrix(name("gate"), c.hidden, c.dim);
    lw.w_up = load.matrix(name("up"), c.hidden, c.dim);
    lw.w_down = load.matrix(name("down"), c.dim, c.hidden);
  }
  w.final_norm = load.vector(n.final_norm, c.dim);
  w.output = load.optional_matrix(n.output, c.vocab, c.dim).value_or(w.token_embedding);
  return decoder(c, std::move(w), source);
}

}  // namespace detail

/// A Llama-architecture GGUF file (general.architecture = "llama").
inline decoder from_gguf(std::shared_ptr<const io::gguf_file> file) {
  const io::gguf_file& g = *file;
  const std::string arch = g.architecture();
  require<format_error>(arch == "llama", g.source(), ": general.architecture is '", arch, "', not llama");
  decoder_config c;
  c.family = decoder_family::llama;
  c.dim = g.get_uint("llama.embedding_length");
  c.layers = g.get_uint("llama.block_count");
  c.hidden = g.get_uint("llama.feed_forward_length");
  c.heads = g.get_uint("llama.attention.head_count");
  c.kv_heads = g.contains("llama.attention.head_count_kv") ? g.get_uint("llama.attention.head_count_kv") : c.heads;
  c.context = g.get_uint("llama.context_length");
  require<format_error>(c.heads > 0, g.source(), ": llama.attention.head_count is 0");
  c.head_dim = g.contains("llama.attention.key_length") ? g.get_uint("llama.attention.key_length") : c.dim / c.heads;
  c.norm_eps = static_cast<float>(g.get_float("llama.attention.layer_norm_rms_epsilon"));
  c.rope_base = g.contains("llama.rope.freq_base") ? g.get_float("llama.rope.freq_base") : 10000.0;
  c.rope_dims = g.contains("llama.rope.dimension_count") ? g.get_uint("llama.rope.dimension_count") : c.head_dim;
  require<format_error>(c.rope_dims == c.head_dim, g.source(), ": llama.rope.dimension_count ", c.rope_dims,
                        " rotates part of each head of ", c.head_dim, "; lmkit rotates whole heads");
  c.rope = kernels::rope_style::adjacent_pairs;
  const io::gguf_tensor_info* embedding = g.find_tensor("token_embd.weight");
  require<format_error>(embedding && embedding->dims.size() == 2, g.source(), ": tensor token_embd.weight is missing");
  c.vocab = embedding->dims[1];
  static const detail::names names{"token_embd.weight", "output_norm.weight", "output.weight", &detail::gguf_layer_name};
  return detail::build(c, names, gguf_lookup(file), file, g.source());
}

/// A Hugging Face Llama: a folder with config.json and model.safetensors (or its index), or the
/// path of either file inside it.
inline decoder from_hf(const std::filesystem::path& path) {
  const std::filesystem::path folder = std::filesystem::is_directory(path) ? path : path.parent_path();
  const io::hf_model_config hf = io::read_hf_config(folder / "config.json");
  require<format_error>(hf.config.family == decoder_family::llama, (folder / "config.json").string(),
                        ": model_type is not llama");
  auto file = std::make_shared<const io::sharded_safetensors>(
      io::open_safetensors(std::filesystem::is_directory(path) || path.filename() == "config.json" ? folder : path));
  static const detail::names names{"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                                   &detail::hf_layer_name};
  return detail::build(hf.config, names, safetensors_lookup(file), file, file->source());
}

/// A llama2.c legacy checkpoint, parsed (io::llama2c_checkpoint keeps its bytes alive when it
/// mapped them; parse_bytes' caller keeps them alive otherwise).
inline decoder from_llama2c(std::shared_ptr<const io::llama2c_checkpoint> file) {
  const io::llama2c_header& h = file->header();
  decoder_config c;
  c.family = decoder_family::llama;
  c.vocab = h.vocab();
  c.dim = static_cast<std::size_t>(h.dim);
  c.hidden = static_cast<std::size_t>(h.hidden_dim);
  c.layers = static_cast<std::size_t>(h.n_layers);
  c.heads = static_cast<std::size_t>(h.n_heads);
  c.kv_heads = static_cast<std::size_t>(h.n_kv_heads);
  c.head_dim = c.dim / c.heads;
  c.context = static_cast<std::size_t>(h.seq_len);
  c.norm_eps = 1e-5f;  // run.c's rmsnorm
  c.rope_base = 10000.0;
  c.rope_dims = c.head_dim;
  c.rope = kernels::rope_style::adjacent_pairs;
  static const detail::names names{"tok_embeddings", "norm", "output", &detail::llama2c_layer_name};
  std::shared_ptr<const void> keep = file->keep_alive();
  return detail::build(c, names, llama2c_lookup(file), keep, file->source());
}

/// A llama2.c legacy checkpoint file.
inline decoder from_llama2c(const std::filesystem::path& path) {
  return from_llama2c(std::make_shared<const io::llama2c_checkpoint>(path));
}

}  // namespace lmkit::models::llama
