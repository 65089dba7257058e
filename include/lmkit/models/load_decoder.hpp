// One entry point for a pretrained decoder in any file lmkit reads: the format is recognised from
// the file (GGUF's magic; a Hugging Face folder's config.json; otherwise a llama2.c checkpoint), the
// family from its metadata.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "lmkit/core/error.hpp"
#include "lmkit/io/gguf.hpp"
#include "lmkit/io/hf_config.hpp"
#include "lmkit/models/decoder.hpp"
#include "lmkit/models/gpt2.hpp"
#include "lmkit/models/llama.hpp"

namespace lmkit::models {

enum class model_format { gguf, hugging_face, llama2c };

/// What `path` holds, judged by its first bytes and its folder.
inline model_format detect_model_format(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) throw io_error(lmkit::detail::concat(path.string(), ": no such file or folder"));
  if (fs::is_directory(path) || path.filename() == "config.json" || path.extension() == ".safetensors" ||
      path.filename() == "model.safetensors.index.json")
    return model_format::hugging_face;
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) return model_format::gguf;
  return model_format::llama2c;
}

inline decoder load_decoder(const std::filesystem::path& path) {
  switch (detect_model_format(path)) {
    case model_format::gguf: {
      auto file = std::make_shared<const io::gguf_file>(path);
      const std::string arch = file->architecture();
      if (arch == "gpt2") return gpt2::from_gguf(file);
      if (arch == "llama") return llama::from_gguf(file);
      throw format_error(lmkit::detail::concat(path.string(), ": general.architecture '", arch,
                                        "' is not one lmkit runs (llama, gpt2)"));
    }
    case model_format::hugging_face: {
      const auto folder = std::filesystem::is_directory(path) ? path : path.parent_path();
      const io::hf_model_config hf = io::read_hf_config(folder / "config.json");
      return hf.config.family == decoder_family::gpt2 ? gpt2::from_hf(path) : llama::from_hf(path);
    }
    case model_format::llama2c: return llama::from_llama2c(path);
  }
  throw format_error("load_decoder: unknown format");
}

}  // namespace lmkit::models
