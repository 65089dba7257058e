// The three kinds of model file seen through one interface (tensor_lookup: name -> tensor_ref),
// so that a model's loader is written once against names and shapes.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "lmkit/core/error.hpp"
#include "lmkit/core/weight_matrix.hpp"
#include "lmkit/io/gguf.hpp"
#include "lmkit/io/llama2c_checkpoint.hpp"
#include "lmkit/io/safetensors.hpp"
#include "lmkit/models/decoder_weights.hpp"

namespace lmkit::models {

/// GGUF: dims are written fastest-first, so they are reversed to the outermost-first order.
inline tensor_lookup gguf_lookup(std::shared_ptr<const io::gguf_file> file) {
  return [file](std::string_view name) -> std::optional<tensor_ref> {
    const io::gguf_tensor_info* t = file->find_tensor(name);
    if (!t) return std::nullopt;
    weight_type type;
    switch (t->type) {
      case io::ggml_type::f32: type = weight_type::f32; break;
      case io::ggml_type::f16: type = weight_type::f16; break;
      case io::ggml_type::bf16: type = weight_type::bf16; break;
      case io::ggml_type::q8_0: type = weight_type::q8_0; break;
      case io::ggml_type::q4_0: type = weight_type::q4_0; break;
      default:
        throw format_error(lmkit::detail::concat(file->source(), ": tensor ", name, " has ggml type ",
                                          static_cast<std::uint32_t>(t->type),
                                          ", which lmkit does not run (f32, f16, bf16, q8_0, q4_0)"));
    }
    tensor_ref r{std::string(name), type, {t->dims.rbegin(), t->dims.rend()}, file->tensor_bytes(*t)};
    return r;
  };
}

/// safetensors (one file or shards): F32, F16 and BF16 tensors.
inline tensor_lookup safetensors_lookup(std::shared_ptr<const io::sharded_safetensors> file) {
  return [file](std::string_view name) -> std::optional<tensor_ref> {
    const io::safetensors_tensor* t = file->find(name);
    if (!t) return std::nullopt;
    weight_type type;
    switch (t->dtype) {
      case io::safetensors_dtype::f32: type = weight_type::f32; break;
      case io::safetensors_dtype::f16: type = weight_type::f16; break;
      case io::safetensors_dtype::bf16: type = weight_type::bf16; break;
      default:
        throw format_error(lmkit::detail::concat(file->source(), ": tensor ", name, " is ", io::name_of(t->dtype),
                                          "; a model's weights must be F32, F16 or BF16"));
    }
    return tensor_ref{std::string(name), type, {t->shape.begin(), t->shape.end()}, t->bytes};
  };
}

/// llama2.c: every tensor is f32.
inline tensor_lookup llama2c_lookup(std::shared_ptr<const io::llama2c_checkpoint> file) {
  return [file](std::string_view name) -> std::optional<tensor_ref> {
    const io::llama2c_tensor* t = file->find(name);
    if (!t) return std::nullopt;
    return tensor_ref{std::string(name), weight_type::f32, t->shape, t->bytes};
  };
}

}  // namespace lmkit::models
