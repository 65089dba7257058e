// The GPT-2 family (Radford et al. 2019): learned positions, pre-norm layer norms with biases,
// GELU (tanh form), biases on every linear layer, output tied to the token embedding. Loaded from
// Hugging Face safetensors (+ config.json), whose Conv1D layers store weights [in, out]: those are
// transposed once at load into lmkit's [out, in] (the only copy a model makes), or from a gpt2 GGUF,
// whose matrices are already [out, in] and are viewed in place.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "lmkit/io/gguf.hpp"
#include "lmkit/io/hf_config.hpp"
#include "lmkit/io/safetensors.hpp"
#include "lmkit/models/decoder.hpp"
#include "lmkit/models/tensor_sources.hpp"

namespace lmkit::models::gpt2 {

namespace detail {

/// The tensor names of one file layout, without their ".weight" / ".bias": `layer(l, what)` for
/// what = ln_1, qkv, attn_out, ln_2, up, down. `conv1d`: the layers' matrices are stored [in, out]
/// (Hugging Face's Conv1D) and are transposed once at load; otherwise they are viewed in place.
struct names {
  std::string token_embedding, position_embedding, final_norm, output;
  std::function<std::string(std::size_t layer, std::string_view what)> layer;
  bool conv1d = false;
};

/// Builds the weights of `c` from a file with the layout `n`. A missing output layer means the
/// output is tied to the token embedding (GPT-2's own files have none).
inline decoder build(const decoder_config& c, const names& n, tensor_lookup lookup, std::shared_ptr<const void> file,
                     const std::string& source) {
  c.validate(source);
  decoder_weights w;
  w.files.push_back(std::move(file));
  const weight_loader load(std::move(lookup), source, w);
  auto matrix = [&](const std::string& name, std::size_t rows, std::size_t cols) {
    return n.conv1d ? load.transposed_matrix(name + ".weight", rows, cols) : load.matrix(name + ".weight", rows, cols);
  };
  w.token_embedding = load.matrix(n.token_embedding + ".weight", c.vocab, c.dim);
  w.position_embedding = load.matrix(n.position_embedding + ".weight", c.context, c.dim);
  for (std::size_t l = 0; l < c.layers; ++l) {
    decoder_layer_weights& lw = w.layers.emplace_back();
    auto name = [&](std::string_view what) { return n.layer(l, what); };
    lw.attn_norm = load.vector(name("ln_1") + ".weight", c.dim);
    lw.attn_norm_bias = load.vector(name("ln_1") + ".bias", c.dim);
    // One [3 dim, dim] matrix whose outputs are q, k, v one after the other.
    const weight_matrix qkv = matrix(name("qkv"), 3 * c.dim, c.dim);
    lw.wq = weight_loader::row_slice(qkv, 0, c.dim);
    lw.wk = weight_loader::row_slice(qkv, c.dim, c.dim);
    lw.wv = weight_loader::row_slice(qkv, 2 * c.dim, c.dim);
    const std::span<const float> bqkv = load.vector(name("qkv") + ".bias", 3 * c.dim);
    lw.bq = bqkv.subspan(0, c.dim);
    lw.bk = bqkv.subspan(c.dim, c.dim);
    lw.bv = bqkv.subspan(2 * c.dim, c.dim);
    lw.wo = matrix(name("attn_out"), c.dim, c.dim);
    lw.bo = load.vector(name("attn_out") + ".bias", c.dim);
    lw.ffn_norm = load.vector(name("ln_2") + ".weight", c.dim);
    lw.ffn_norm_bias = load.vector(name("ln_2") + ".bias", c.dim);
    lw.w_up = matrix(name("up"), c.hidden, c.dim);
    lw.b_up = load.vector(name("up") + ".bias", c.hidden);
    lw.w_down = matrix(name("down"), c.dim, c.hidden);
    lw.b_down = load.vector(name("down") + ".bias", c.dim);
  }
  w.final_norm = load.vector(n.final_norm + ".weight", c.dim);
  w.final_norm_bias = load.vector(n.final_norm + ".bias", c.dim);
  // An output layer is an nn.Linear ([vocab, dim]) even in a Conv1D file.
  w.output = load.optional_matrix(n.output + ".weight", c.vocab, c.dim).value_or(w.token_embedding);
  return decoder(c, std::move(w), source);
}

}  // namespace detail

/// A Hugging Face GPT-2: a folder with config.json and model.safetensors (or its index), or the
/// path of either file inside it. Names with or without the "transformer." prefix (both exist).
inline decoder from_hf(const std::filesystem::path& path) {
  const std::filesystem::path folder = std::filesystem::is_directory(path) ? path : path.parent_path();
  const io::hf_model_config hf = io::read_hf_config(folder / "config.json");
  require<format_error>(hf.config.family == decoder_family::gpt2, (folder / "config.json").string(),
                        ": model_type is not gpt2");
  auto file = std::make_shared<const io::sharded_safetensors>(
      io::open_safetensors(std::filesystem::is_directory(path) || path.filename() == "config.json" ? folder : path));
  const std::string p = file->contains("transformer.wte.weight") ? "transformer." : "";
  const detail::names n{
      .token_embedding = p + "wte",
      .position_embedding = p + "wpe",
      .final_norm = p + "ln_f",
      .output = "lm_head",
      .layer = [p](std::size_t l, std::string_view what) {
        const std::string h = p + "h." + std::to_string(l) + ".";
        if (what == "qkv") return h + "attn.c_attn";
        if (what == "attn_out") return h + "attn.c_proj";
        if (what == "up") return h + "mlp.c_fc";
        if (what == "down") return h + "mlp.c_proj";
        return h + std::string(what);  // ln_1, ln_2
      },
      .conv1d = true};
  return detail::build(hf.config, n, safetensors_lookup(file), file, file->source());
}

/// A gpt2-architecture GGUF file (general.architecture = "gpt2").
inline decoder from_gguf(std::shared_ptr<const io::gguf_file> file) {
  const io::gguf_file& g = *file;
  const std::string arch = g.architecture();
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
  const detail::names n{
      .token_embedding = "token_embd",
      .position_embedding = "position_embd",
      .final_norm = "output_norm",
      .output = "output",
      .layer = [](std::size_t l, std::string_view what) {
        const std::string b = "blk." + std::to_string(l) + ".";
        if (what == "ln_1") return b + "attn_norm";
        if (what == "ln_2") return b + "ffn_norm";
        if (what == "qkv") return b + "attn_qkv";
        if (what == "attn_out") return b + "attn_output";
        return b + "ffn_" + std::string(what);  // up, down
      },
      .conv1d = false};
  return detail::build(c, n, gguf_lookup(file), file, g.source());
}

}  // namespace lmkit::models::gpt2
