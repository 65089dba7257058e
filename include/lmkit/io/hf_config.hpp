// Hugging Face transformers' config.json for the two decoder families lmkit runs ("model_type":
// "llama" or "gpt2"), read into a decoder_config with transformers' defaults for absent keys.
// Keys that change the computation in ways lmkit does not implement (rope_scaling, another
// activation) are refused by name rather than ignored.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lmkit/core/error.hpp"
#include "lmkit/core/mapped_file.hpp"
#include "lmkit/models/decoder_config.hpp"

namespace lmkit::io {

struct hf_model_config {
  models::decoder_config config;
  bool tied_output = false;  // tie_word_embeddings
  std::int64_t bos = -1, eos = -1;
};

inline hf_model_config parse_hf_config(std::string_view json_text, std::string_view source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw format_error(lmkit::detail::concat(source, ": not JSON: ", e.what()));
  }
  auto fail = [&](auto... parts) { throw format_error(lmkit::detail::concat(source, ": ", parts...)); };
  if (!j.is_object()) fail("config.json must be an object");
  auto has = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  auto size = [&](const char* key) -> std::size_t {
    if (!has(key)) fail("key ", key, " is missing");
    // Zero too is refused here: sizes are divided by (dim / heads) before validate() sees them.
    const nlohmann::json& v = j[key];
    const bool positive = v.is_number_unsigned() ? v.get<std::uint64_t>() > 0 : v.is_number_integer() && v.get<std::int64_t>() > 0;
    if (!positive) fail("key ", key, " is not a positive integer");
    return j[key].get<std::size_t>();
  };
  auto number = [&](const char* key, double fallback) -> double {
    if (!has(key)) return fallback;
    if (!j[key].is_number()) fail("key ", key, " is not a number");
    return j[key].get<double>();
  };
  auto flag = [&](const char* key, bool fallback) -> bool {
    if (!has(key)) return fallback;
    if (!j[key].is_boolean()) fail("key ", key, " is not true or false");
    return j[key].get<bool>();
  };
  auto token = [&](const char* key) -> std::int64_t { return has(key) && j[key].is_number_integer() ? j[key].get<std::int64_t>() : -1; };
  if (!has("model_type") || !j["model_type"].is_string()) fail("key model_type is missing");
  const std::string type = j["model_type"].get<std::string>();

  hf_model_config r;
  models::decoder_config& c = r.config;
  r.bos = token("bos_token_id");
  r.eos = token("eos_token_id");
  if (type == "llama" || type == "mistral") {
    c.family = models::decoder_family::llama;
    c.vocab = size("vocab_size");
    c.dim = size("hidden_size");
    c.hidden = size("intermediate_size");
    c.layers = size("num_hidden_layers");
    c.heads = size("num_attention_heads");
    c.kv_heads = has("num_key_value_heads") ? size("num_key_value_heads") : c.heads;
    c.head_dim = has("head_dim") ? size("head_dim") : c.dim / c.heads;
    c.context = size("max_position_embeddings");
    c.norm_eps = static_cast<float>(number("rms_norm_eps", 1e-6));
    c.rope_base = number("rope_theta", 10000.0);
    c.rope_dims = c.head_dim;
    // transformers' Llama rotates the two halves of each head ([i], [i + d/2]).
    c.rope = kernels::rope_style::half_rotation;
    if (has("rope_scaling")) fail("rope_scaling is set; lmkit implements plain RoPE only");
    if (has("hidden_act") && j["hidden_act"] != "silu") fail("hidden_act ", j["hidden_act"].dump(), " is not silu");
    r.tied_output = flag("tie_word_embeddings", false);
  } else if (type == "gpt2") {
    c.family = models::decoder_family::gpt2;
    c.vocab = size("vocab_size");
    c.dim = size("n_embd");
    c.layers = size("n_layer");
    c.heads = size("n_head");
    c.kv_heads = c.heads;
    c.head_dim = c.dim / c.heads;
    c.hidden = has("n_inner") ? size("n_inner") : 4 * c.dim;
    c.context = size("n_positions");
    c.norm_eps = static_cast<float>(number("layer_norm_epsilon", 1e-5));
    if (has("activation_function") && !j["activation_function"].is_string()) fail("key activation_function is not a string");
    const std::string act = has("activation_function") ? j["activation_function"].get<std::string>() : "gelu_new";
    if (act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu")
      fail("activation_function ", act, " is not GELU (gelu_new, gelu_pytorch_tanh or gelu), the ones lmkit's gpt2 runs");
    c.gelu_erf = act == "gelu";
    if (flag("scale_attn_by_inverse_layer_idx", false) || flag("reorder_and_upcast_attn", false))
      fail("scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not implemented");
    if (!flag("scale_attn_weights", true)) fail("scale_attn_weights = false is not implemented");
    r.tied_output = flag("tie_word_embeddings", true);
  } else {
    fail("model_type ", type, " is not one lmkit runs (llama, gpt2)");
  }
  // Llama's head_dim may differ from dim / heads; GPT-2's heads always split dim evenly.
  if (c.dim % c.heads != 0 && (c.family == models::decoder_family::gpt2 || !has("head_dim")))
    fail("hidden size ", c.dim, " is not a multiple of the ", c.heads, " heads");
  c.validate(source);
  return r;
}

inline hf_model_config read_hf_config(const std::filesystem::path& path) {
  const mapped_file file(path);
  return parse_hf_config({reinterpret_cast<const char*>(file.data()), file.size()}, path.string());
}

}  // namespace lmkit::io
