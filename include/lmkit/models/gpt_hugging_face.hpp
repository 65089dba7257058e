// models::gpt and a Hugging Face GPT-2 folder (config.json + model.safetensors), both ways: a
// pretrained GPT-2 becomes a trainable model here (to fine-tune it), and a model trained here is
// written as transformers' GPT2LMHeadModel.from_pretrained reads it (and lmkit's decoder:
// `generate --model FOLDER`).
//
//   models::gpt<> model = models::load_hugging_face_gpt("gpt2-folder");   // then train as usual
//   models::save_hugging_face_gpt(model, "out-folder");
//
// The tensor names are already Hugging Face's ("transformer.h.0.attn.c_attn.weight"); what differs
// is the layout: GPT-2's Conv1D layers (c_attn, c_proj, c_fc) store their weight [in, out], lmkit's
// linear layers [out, in]. A model without biases (nanoGPT's bias=False) is written with zero
// biases, which compute the same function. GELU's erf form is activation_function "gelu", its tanh
// form "gelu_new". The output layer is tied to the token embedding on both sides.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lmkit/core/atomic_file.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/io/hf_config.hpp"
#include "lmkit/io/safetensors.hpp"
#include "lmkit/io/safetensors_writer.hpp"
#include "lmkit/models/gpt.hpp"

namespace lmkit::models {

namespace detail {
/// Whether `name` is the weight of one of GPT-2's Conv1D layers, stored [in, out].
inline bool is_conv1d_weight(std::string_view name) {
  return name.ends_with("attn.c_attn.weight") || name.ends_with("attn.c_proj.weight") || name.ends_with("mlp.c_fc.weight") ||
         name.ends_with("mlp.c_proj.weight");
}
}  // namespace detail

/// The gpt_config of a Hugging Face GPT-2 config.json (`source` names it in errors): biases
/// everywhere, the GELU its activation_function names, no dropout unless given. An untied output
/// layer is refused (the trainable GPT ties it).
inline gpt_config gpt_config_from_hugging_face(const io::hf_model_config& hf, std::string_view source, float dropout = 0.0f) {
  const decoder_config& d = hf.config;
  require<format_error>(d.family == decoder_family::gpt2, source, ": model_type is not gpt2");
  require<format_error>(hf.tied_output, source, ": tie_word_embeddings is false; the trainable GPT ties its output layer to wte");
  return {.vocab = d.vocab,
          .context = d.context,
          .layers = d.layers,
          .heads = d.heads,
          .dim = d.dim,
          .hidden = d.hidden,
          .bias = nn::bias::yes,
          .activation = d.gelu_erf ? nn::activation::gelu_erf : nn::activation::gelu_tanh,
          .norm_eps = d.norm_eps,
          .dropout = dropout};
}

/// The gpt_config of a Hugging Face GPT-2 folder (its config.json).
inline gpt_config gpt_config_from_hugging_face(const std::filesystem::path& folder, float dropout = 0.0f) {
  const std::filesystem::path json = folder / "config.json";
  return gpt_config_from_hugging_face(io::read_hf_config(json), json.string(), dropout);
}

/// Copies the weights of a Hugging Face GPT-2 folder (F32, F16 or BF16; one file or shards; names
/// with or without "transformer.") into `model`, whose config must be the folder's. A missing or
/// mis-shaped tensor is a format_error naming it.
template <gpt_config C>
void load_hugging_face_weights(gpt<C>& model, const std::filesystem::path& folder) {
  const io::sharded_safetensors file = io::open_safetensors(folder);
  const std::string prefix = file.contains("transformer.wte.weight") ? "transformer." : "";
  std::vector<float> stored;
  model.visit_parameters([&](std::string_view name, nn::parameter& p) {
    const std::string key = prefix + std::string(name.substr(std::string_view("transformer.").size()));
    const io::safetensors_tensor* t = file.find(key);
    require<format_error>(t != nullptr, file.source(), ": tensor ", key, " is missing");
    const bool conv1d = detail::is_conv1d_weight(name);
    std::vector<std::uint64_t> want(p.shape().begin(), p.shape().end());
    if (conv1d) std::swap(want[0], want[1]);
    require<format_error>(t->shape == want, file.source(), ": tensor ", key, " has shape ",
                          io::shape_text(t->shape), ", the model wants ", io::shape_text(want));
    if (!conv1d) {
      io::to_floats(*t, p.value());
      return;
    }
    stored.resize(p.size());
    io::to_floats(*t, stored);
    const std::size_t out = p.shape()[0], in = p.shape()[1];
    float* w = p.value().data();
    for (std::size_t i = 0; i < in; ++i)
      for (std::size_t o = 0; o < out; ++o) w[o * in + i] = stored[i * out + o];
  });
  // A tied file has no lm_head, or one equal to wte; another output layer cannot be kept.
  if (const io::safetensors_tensor* head = file.find("lm_head.weight")) {
    const io::safetensors_tensor& wte = file.at(prefix + "wte.weight");
    require<format_error>(head->shape == wte.shape && io::to_floats(*head) == io::to_floats(wte), file.source(),
                          ": lm_head.weight differs from wte.weight; the trainable GPT ties them");
  }
}

/// A trainable GPT with the config and weights of a Hugging Face GPT-2 folder.
inline gpt<> load_hugging_face_gpt(const std::filesystem::path& folder, float dropout = 0.0f) {
  gpt<> model(gpt_config_from_hugging_face(folder, dropout));
  load_hugging_face_weights(model, folder);
  return model;
}

/// Writes `model` as a Hugging Face GPT-2 folder: config.json and model.safetensors (F32, with the
/// "format": "pt" metadata transformers asks for), each written atomically; the folder is made if
/// needed.
template <gpt_config C>
void save_hugging_face_gpt(gpt<C>& model, const std::filesystem::path& folder) {
  const gpt_config& c = model.config();
  require<argument_error>(c.activation != nn::activation::silu, "save_hugging_face_gpt: GPT-2 has no SiLU MLP");
  std::map<std::string, nn::parameter*, std::less<>> params;
  model.visit_parameters([&](std::string_view name, nn::parameter& p) { params.emplace(std::string(name), &p); });
  io::safetensors_writer w;
  std::vector<std::vector<float>> copies;  // transposed weights and zero biases, alive until written
  // `shape`: that of a bias the model lacks (written as zeros); the model's own tensors keep theirs.
  auto add = [&](const std::string& name, std::vector<std::uint64_t> shape) {
    const auto it = params.find(name);
    if (it == params.end()) {  // a bias the model does not have: zero
      require<argument_error>(name.ends_with(".bias") && shape.size() == 1, "save_hugging_face_gpt: the model has no ", name);
      w.add(name, shape, copies.emplace_back(shape[0], 0.0f));
      return;
    }
    const nn::parameter& p = *it->second;
    if (!detail::is_conv1d_weight(name)) {
      w.add(name, std::vector<std::uint64_t>(p.shape().begin(), p.shape().end()), p.value());
      return;
    }
    const std::size_t out = p.shape()[0], in = p.shape()[1];
    std::vector<float>& t = copies.emplace_back(out * in);
    const float* v = p.value().data();
    for (std::size_t o = 0; o < out; ++o)
      for (std::size_t i = 0; i < in; ++i) t[i * out + o] = v[o * in + i];
    w.add(name, {in, out}, t);
  };
  copies.reserve(8 * c.layers + 4);
  const std::uint64_t dim = c.dim, hidden = c.hidden_width();
  add("transformer.wte.weight", {c.vocab, dim});
  add("transformer.wpe.weight", {c.context, dim});
  for (std::size_t l = 0; l < c.layers; ++l) {
    const std::string h = "transformer.h." + std::to_string(l) + ".";
    add(h + "ln_1.weight", {dim});
    add(h + "ln_1.bias", {dim});
    add(h + "attn.c_attn.weight", {});
    add(h + "attn.c_attn.bias", {3 * dim});
    add(h + "attn.c_proj.weight", {});
    add(h + "attn.c_proj.bias", {dim});
    add(h + "ln_2.weight", {dim});
    add(h + "ln_2.bias", {dim});
    add(h + "mlp.c_fc.weight", {});
    add(h + "mlp.c_fc.bias", {hidden});
    add(h + "mlp.c_proj.weight", {});
    add(h + "mlp.c_proj.bias", {dim});
  }
  add("transformer.ln_f.weight", {dim});
  add("transformer.ln_f.bias", {dim});
  w.add_metadata("format", "pt");

  const nlohmann::json config = {
      {"architectures", {"GPT2LMHeadModel"}},
      {"model_type", "gpt2"},
      {"vocab_size", c.vocab},
      {"n_positions", c.context},
      {"n_ctx", c.context},
      {"n_embd", c.dim},
      {"n_layer", c.layers},
      {"n_head", c.heads},
      {"n_inner", hidden},
      {"activation_function", c.activation == nn::activation::gelu_erf ? "gelu" : "gelu_new"},
      {"resid_pdrop", c.dropout},
      {"embd_pdrop", c.dropout},
      {"attn_pdrop", c.dropout},
      {"layer_norm_epsilon", c.norm_eps},
      {"initializer_range", 0.02},
      {"scale_attn_weights", true},
      {"tie_word_embeddings", true},
      {"torch_dtype", "float32"}};
  std::filesystem::create_directories(folder);
  w.write(folder / "model.safetensors");
  write_file_atomically(folder / "config.json", config.dump(2) + "\n");
}

}  // namespace lmkit::models
