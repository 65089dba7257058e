// The GPT-2 family (Radford et al. 2019): learned positions, pre-norm layer norms with biases,
// GELU (tanh form), biases on every linear layer, output tied to the token embedding. Loaded from
// Hugging Face safetensors (+ config.json), whose Conv1D layers store weights [in, out]: those are
// transposed once at load into lmkit's [out, in] (the only copy a model makes), or from a gpt2 GGUF,
// whose matrices are already [out, in] and are viewed in place.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "lmkit/io/gguf.hpp"
#include "lmkit/io/hf_config.hpp"
#include "lmkit/io/safetensors.hpp"
#include "lmkit/models/decoder.hpp"
#include "lmkit/models/tensor_sources.hpp"

namespace lmkit::models::gpt2 {

/// A Hugging Face GPT-2: a folder with config.json and model.safetensors (or its index), or the
/// path of either file inside it. Names with or without the "transformer." prefix (both exist).
inline decoder from_hf(const std::filesystem::path& path) {
  const std::filesystem::path folder = std::filesystem::is_directory(path) ? path : path.parent_path();
  const io::hf_model_config hf = io::read_hf_config(folder / "config.json");
  const decoder_config& c = hf.config;
  require<format_error>(c.family == decoder_family::gpt2, (folder / "config.json").string(), ": model_type is not gpt2");
  auto file = std::make_shared<const io::sharded_safetensors>(
      io::open_safetensors(std::filesystem::is_directory(path) || path.filename() == "config.json" ? folder : path));
  decoder_weights w;
  w.files.push_back(file);
  const weight_loader load(safetensors_lookup(file), file->source(), w);
  const std::string p = file->contains("transformer.wte.weight") ? "transformer." : "";
  w.token_embedding = load.matrix(p + "wte.weight", c.vocab, c.dim);
  w.position_embedding = load.matrix(p + "wpe.weight", c.context, c.dim);
  for (std::size_t l = 0; l < c.layers; ++l) {
    const std::string h = p + "h." + std::to_string(l) + ".";
    decoder_layer_weights& lw = w.layers.emplace_back();
    lw.attn_norm = load.vector(h + "ln_1.weight", c.dim);
    lw.attn_norm_bias = load.vector(h + "ln_1.bias", c.dim);
    // c_attn: one [dim, 3 dim] Conv1D whose outputs are q, k, v one after the other.
    const weight_matrix qkv = load.transposed_matrix(h + "attn.c_attn.weight", 3 * c.dim, c.dim);
    lw.wq = weight_loader::row_slice(qkv, 0, c.dim);
    lw.wk = weight_loader::row_slice(qkv, c.dim, c.dim);
    lw.wv = weight_loader::row_slice(qkv, 2 * c.dim, c.dim);
    const std::span<const float> bqkv = load.vector(h + "attn.c_attn.bias", 3 * c.dim);
    lw.bq = bqkv.subspan(0, c.dim);
    lw.bk = bqkv.subspan(c.dim, c.dim);
    lw.bv = bqkv.subspan(2 * c.dim, c.dim);
    lw.wo = load.transposed_matrix(h + "attn.c_proj.weight", c.dim, c.dim);
    lw.bo = load.vector(h + "attn.c_proj.bias", c.dim);
    lw.ffn_norm = load.vector(h + "ln_2.weight", c.dim);
    lw.ffn_norm_bias = load.vector(h + "ln_2.bias", c.dim);
    lw.w_up = load.transposed_matrix(h + "mlp.c_fc.weight", c.hidden, c.dim);
    lw.b_up = load.vector(h + "mlp.c_fc.bias", c.hidden);
    lw.w_down = load.transposed_matrix(h + "mlp.c_proj.weight", c.dim, c.hidden);
    lw.b_down = load.vector(h + "mlp.c_proj.bias", c.dim);
  }
  w.final_norm = load.vector(p + "ln_f.weight", c.dim);
  w.final_norm_bias = load.vector(p + "ln_f.bias", c.dim);
  // lm_head is nn.Linear ([vocab, dim], not Conv1D); usually absent because tied.
  w.output = load.optional_matrix("lm_head.weight", c.vocab, c.dim).value_or(w.token_embedding);
  return decoder(c, std::move(w), file->source());
}

/// A gpt2-architecture GGUF file (general.architecture = "gpt2").
inline decoder from_gguf(std::shared_ptr<const io::gguf_file> file) {
  const io::gguf_file& g = *file;
  const std::string arch = g.contains("general.architecture") ? g.get_string("general.architecture") : "";
  require<format_error>(arch == "gpt2", g.source(), ": general.architecture is '", arch, "', not gpt2");
  decoder_config c;
  c.family = decoder_family::gpt2;
  c.dim = g.get_uint("gpt2.embedding_length");
  c.layers = g.get_uint("gpt2.block_count");
  c.hidden = g.get_uint("gpt2.feed_forward_length");
  c.heads = c.kv_heads = g.get_uint("gpt2.attention.head_count");
  require<format_error>(c.heads > 0, g.source(), ": gpt2.attention.head_count is 0");
  c.head_dim = c.dim / c.heads;
  c.context = g.get_uint("gpt2.context_length");
  c.norm_eps = static_cast<float>(g.get_float("gpt2.attention.layer_norm_epsilon"));
  const io::gguf_tensor_info* embedding = g.find_tensor("token_embd.weight");
  require<format_error>(embedding && embedding->dims.size() == 2, g.source(), ": tensor token_embd.weight is missing");
  c.vocab = embedding->dims[1];
  c.validate(g.source());
  decoder_weights w;
  w.files.push_back(file);
  const weight_loader load(gguf_lookup(file), g.source(), w);
  w.token_embedding = load.matrix("token_embd.weight", c.vocab, c.dim);
  w.position_embedding = load.matrix("position_embd.weight", c.context, c.dim);
  for (std::size_t l = 0; l < c.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    decoder_layer_weights& lw = w.layers.emplace_back();
    lw.attn_norm = load.vector(b + "attn_norm.weight", c.dim);
    lw.attn_norm_bias = load.vector(b + "attn_norm.bias", c.dim);
    const weight_matrix qkv = load.matrix(b + "attn_qkv.weight", 3 * c.dim, c.dim);
    lw.wq = weight_loader::row_slice(qkv, 0, c.dim);
    lw.wk = weight_loader::row_slice(qkv, c.dim, c.dim);
    lw.wv = weight_loader::row_slice(qkv, 2 * c.dim, c.dim);
    const std::span<const float> bqkv = load.vector(b + "attn_qkv.bias", 3 * c.dim);
    lw.bq = bqkv.subspan(0, c.dim);
    lw.bk = bqkv.subspan(c.dim, c.dim);
    lw.bv = bqkv.subspan(2 * c.dim, c.dim);
    lw.wo = load.matrix(b + "attn_output.weight", c.dim, c.dim);
    lw.bo = load.vector(b + "attn_output.bias", c.dim);
    lw.ffn_norm = load.vector(b + "ffn_norm.weight", c.dim);
    lw.ffn_norm_bias = load.vector(b + "ffn_norm.bias", c.dim);
    lw.w_up = load.matrix(b + "ffn_up.weight", c.hidden, c.dim);
    lw.b_up = load.vector(b + "ffn_up.bias", c.hidden);
    lw.w_down = load.matrix(b + "ffn_down.weight", c.dim, c.hidden);
    lw.b_down = load.vector(b + "ffn_down.bias", c.dim);
  }
  w.final_norm = load.vector("output_norm.weight", c.dim);
  w.final_norm_bias = load.vector("output_norm.bias", c.dim);
  w.output = load.optional_matrix("output.weight", c.vocab, c.dim).value_or(w.token_embedding);
  return decoder(c, std::move(w), g.source());
}

}  // namespace lmkit::models::gpt2
