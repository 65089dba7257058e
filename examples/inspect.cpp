// inspect: what a model file holds — its metadata and its tensors (name, type, shape, bytes).
//
//   inspect FILE [--all]
//
// GGUF files, safetensors files (or a Hugging Face folder / index), and llama2.c checkpoints. Long
// metadata arrays (a tokenizer's vocabulary) are shown by their first items unless --all.
#include <cstdio>
#include <filesystem>
#include <string>
#include <variant>

#include <lmkit/io/gguf.hpp>
#include <lmkit/io/llama2c_checkpoint.hpp>
#include <lmkit/io/safetensors.hpp>
#include <lmkit/models/load_decoder.hpp>

#include "cli_main.hpp"

namespace {

using namespace lmkit;

std::string shape_text(const auto& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string value_text(const io::gguf_value& v, bool all) {
  if (const auto* s = std::get_if<std::string>(&v.value)) return '"' + (s->size() > 80 && !all ? s->substr(0, 80) + "..." : *s) + '"';
  if (const auto* u = std::get_if<std::uint64_t>(&v.value)) return std::to_string(*u);
  if (const auto* i = std::get_if<std::int64_t>(&v.value)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v.value)) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.9g", *d);
    return buffer;
  }
  if (const auto* b = std::get_if<bool>(&v.value)) return *b ? "true" : "false";
  if (const auto* a = std::get_if<std::shared_ptr<io::gguf_array>>(&v.value)) {
    const auto& items = (*a)->items;
    std::string s = "array of " + std::to_string(items.size()) + " [";
    const std::size_t shown = all ? items.size() : std::min<std::size_t>(items.size(), 8);
    for (std::size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + value_text(items[i], all);
    return s + (shown < items.size() ? ", ...]" : "]");
  }
  return "?";
}

const char* ggml_type_name(io::ggml_type t) {
  switch (t) {
    case io::ggml_type::f32: return "f32";
    case io::ggml_type::f16: return "f16";
    case io::ggml_type::bf16: return "bf16";
    case io::ggml_type::q4_0: return "q4_0";
    case io::ggml_type::q4_1: return "q4_1";
    case io::ggml_type::q5_0: return "q5_0";
    case io::ggml_type::q5_1: return "q5_1";
    case io::ggml_type::q8_0: return "q8_0";
    case io::ggml_type::q8_1: return "q8_1";
    case io::ggml_type::q2_k: return "q2_K";
    case io::ggml_type::q3_k: return "q3_K";
    case io::ggml_type::q4_k: return "q4_K";
    case io::ggml_type::q5_k: return "q5_K";
    case io::ggml_type::q6_k: return "q6_K";
    case io::ggml_type::q8_k: return "q8_K";
  }
  return "?";
}

void inspect_gguf(const std::filesystem::path& path, bool all) {
  const io::gguf_file f(path);
  std::printf("%s: GGUF version %u, alignment %llu, %zu metadata keys, %zu tensors\n", path.c_str(), f.version(),
              static_cast<unsigned long long>(f.alignment()), f.metadata().size(), f.tensors().size());
  for (const auto& [key, value] : f.metadata()) std::printf("  %s = %s\n", key.c_str(), value_text(value, all).c_str());
  std::uint64_t total = 0;
  for (const auto& t : f.tensors()) {
    // ggml order (a row's length first) shown outermost first, as the other formats are.
    const std::vector<std::uint64_t> dims(t.dims.rbegin(), t.dims.rend());
    std::printf("  tensor %-40s %-5s %-16s %12llu bytes at %llu\n", t.name.c_str(), ggml_type_name(t.type),
                shape_text(dims).c_str(), static_cast<unsigned long long>(t.bytes),
                static_cast<unsigned long long>(t.offset));
    total += t.bytes;
  }
  std::printf("  %llu bytes of tensors\n", static_cast<unsigned long long>(total));
}

void inspect_safetensors(const std::filesystem::path& path) {
  const io::sharded_safetensors s = io::open_safetensors(path);
  std::printf("%s: safetensors, %zu shard(s), %zu tensors\n", s.source().c_str(), s.shards().size(), s.size());
  for (const auto& [key, value] : s.metadata()) std::printf("  %s = %s\n", key.c_str(), value.c_str());
  const auto folder = std::filesystem::is_directory(path) ? path : path.parent_path();
  if (std::filesystem::exists(folder / "config.json")) {
    const auto hf = io::read_hf_config(folder / "config.json");
    const auto& c = hf.config;
    std::printf("  config.json: %s, vocab %zu, dim %zu, layers %zu, heads %zu (kv %zu), hidden %zu, context %zu%s\n",
                std::string(models::name_of(c.family)).c_str(), c.vocab, c.dim, c.layers, c.heads, c.kv_heads, c.hidden,
                c.context, hf.tied_output ? ", tied output" : "");
  }
  std::uint64_t total = 0;
  for (const auto& name : s.names()) {
    const auto& t = s.at(name);
    std::printf("  tensor %-50s %-4s %-16s %12zu bytes\n", name.c_str(), std::string(io::name_of(t.dtype)).c_str(),
                shape_text(t.shape).c_str(), t.bytes.size());
    total += t.bytes.size();
  }
  std::printf("  %llu bytes of tensors\n", static_cast<unsigned long long>(total));
}

void inspect_llama2c(const std::filesystem::path& path) {
  const io::llama2c_checkpoint c(path);
  const auto& h = c.header();
  std::printf("%s: llama2.c checkpoint, dim %d, hidden %d, layers %d, heads %d (kv %d), vocab %zu (%s classifier), "
              "seq_len %d\n",
              path.c_str(), h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab(),
              h.shared_classifier() ? "shared" : "separate", h.seq_len);
  for (const auto& [name, t] : c.tensors())
    std::printf("  tensor %-28s f32  %-16s %12zu bytes\n", name.c_str(), shape_text(t.shape).c_str(), t.bytes.size());
}

int run(int argc, char** argv) {
  std::string file;
  bool all = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::puts("usage: inspect FILE [--all]\n  Lists the metadata and tensors of a GGUF file, a safetensors file or\n"
                "  Hugging Face folder, or a llama2.c checkpoint. --all prints long arrays whole.");
      return 0;
    }
    if (a == "--all") all = true;
    else file = a;
  }
  if (file.empty()) {
    std::fputs("usage: inspect FILE [--all]\n", stderr);
    return 2;
  }
  switch (models::detect_model_format(file)) {
    case models::model_format::gguf: inspect_gguf(file, all); break;
    case models::model_format::hugging_face: inspect_safetensors(file); break;
    case models::model_format::llama2c: inspect_llama2c(file); break;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return lmkit::cli::run_tool("inspect", run, argc, argv); }
