// Inference speed of a Llama of the "stories110M" shape (dim 768, 12 layers, 12 heads, hidden 2048,
// vocab 32000, untied output) with random weights made here, in f32, f16, q8_0 and q4_0, on 1 and 2
// threads — the rows llama.cpp's llama-bench reports in ../shared/BASELINES.md:
//   prompt: 128 tokens from an empty cache (logits of the last one), tokens/s;
//   decode: 64 tokens one at a time from an empty cache, tokens/s and GB/s of weights read,
// next to a STREAM-style triad in the same run (the decode roofline: tokens/s <= GB/s / weight bytes).
#include <benchmark/benchmark.h>

#include "triad.hpp"

#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <lmkit/lmkit.hpp>
#include <lmkit/io/gguf_writer.hpp>
#include <lmkit/models/decoder.hpp>
#include <lmkit/models/load_decoder.hpp>

namespace {

using namespace lmkit;
using lmkit::models::decoder;
using lmkit::models::decoder_config;

decoder_config stories110m() {
  decoder_config c;
  c.family = models::decoder_family::llama;
  c.vocab = 32000;
  c.dim = 768;
  c.layers = 12;
  c.heads = c.kv_heads = 12;
  c.head_dim = 64;
  c.hidden = 2048;
  c.context = 1024;
  c.rope_dims = 64;
  return c;
}

/// Uniform values in [-scale, scale) from a counter hash: fast and the same on every run.
void fill_random(std::span<float> out, std::uint64_t stream, float scale) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint64_t z = (stream << 40) + i + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    out[i] = (static_cast<float>(z >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * scale;
  }
}

/// A random matrix [rows, cols] stored as `type` in the weights' own storage.
weight_matrix random_matrix(models::decoder_weights& w, weight_type type, std::size_t rows, std::size_t cols,
                            std::uint64_t stream) {
  std::vector<float> values(rows * cols);
  fill_random(values, stream, 0.05f);
  auto& bytes = w.owned_bytes.emplace_back(rows * row_bytes(type, cols));
  switch (type) {
    case weight_type::f32: std::memcpy(bytes.data(), values.data(), bytes.size()); break;
    case weight_type::f16:
      kernels::convert(values, std::span<f16>(reinterpret_cast<f16*>(bytes.data()), values.size()));
      break;
    case weight_type::bf16:
      kernels::convert(values, std::span<bf16>(reinterpret_cast<bf16*>(bytes.data()), values.size()));
      break;
    case weight_type::q8_0:
      kernels::quantize_q8_0(values, {reinterpret_cast<block_q8_0*>(bytes.data()), values.size() / 32});
      break;
    case weight_type::q4_0:
      kernels::quantize_q4_0(values, {reinterpret_cast<block_q4_0*>(bytes.data()), values.size() / 32});
      break;
  }
  return {type, bytes.data(), rows, cols};
}

decoder make_model(weight_type type) {
  const decoder_config c = stories110m();
  models::decoder_weights w;
  std::uint64_t stream = 1;
  auto ones = [&](std::size_t n) -> std::span<const float> { return w.owned_floats.emplace_back(n, 1.0f); };
  w.token_embedding = random_matrix(w, type, c.vocab, c.dim, stream++);
  for (std::size_t l = 0; l < c.layers; ++l) {
    auto& lw = w.layers.emplace_back();
    lw.attn_norm = ones(c.dim);
    lw.ffn_norm = ones(c.dim);
    lw.wq = random_matrix(w, type, c.q_width(), c.dim, stream++);
    lw.wk = random_matrix(w, type, c.kv_width(), c.dim, stream++);
    lw.wv = random_matrix(w, type, c.kv_width(), c.dim, stream++);
    lw.wo = random_matrix(w, type, c.dim, c.q_width(), stream++);
    lw.w_gate = random_matrix(w, type, c.hidden, c.dim, stream++);
    lw.w_up = random_matrix(w, type, c.hidden, c.dim, stream++);
    lw.w_down = random_matrix(w, type, c.dim, c.hidden, stream++);
  }
  w.final_norm = ones(c.dim);
  w.output = random_matrix(w, type, c.vocab, c.dim, stream++);
  return decoder(c, std::move(w), std::string("random stories110M ") + std::string(name_of(type)));
}

/// One model per weight type, made on first use and kept: making the f32 one takes seconds.
const decoder& model(weight_type type) {
  static std::map<weight_type, std::unique_ptr<decoder>> models;
  auto& m = models[type];
  if (!m) m = std::make_unique<decoder>(make_model(type));
  return *m;
}

weight_type type_of(std::int64_t arg) { return static_cast<weight_type>(arg); }

void prompt(benchmark::State& state) {
  const decoder& m = model(type_of(state.range(0)));
  const thread_pool pool(static_cast<int>(state.range(1)));
  models::decoder_session session(m, 256, pool);
  std::vector<token_id> tokens(128);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<token_id>((i * 7919) % 32000);
  session.append(tokens);  // warm: pages of the weights faulted in, buffers touched
  for (auto _ : state) {
    session.reset();
    benchmark::DoNotOptimize(session.append(tokens).data());
  }
  state.SetLabel(std::string(name_of(m.weights().output.type)));
  state.counters["tok/s"] = benchmark::Counter(double(tokens.size()), benchmark::Counter::kIsIterationInvariantRate);
}

void decode(benchmark::State& state) {
  const decoder& m = model(type_of(state.range(0)));
  const thread_pool pool(static_cast<int>(state.range(1)));
  models::decoder_session session(m, 256, pool);
  constexpr std::size_t steps = 64;
  for (std::size_t i = 0; i < steps; ++i) session.append(static_cast<token_id>(i));  // warm
  for (auto _ : state) {
    session.reset();
    for (std::size_t i = 0; i < steps; ++i) benchmark::DoNotOptimize(session.append(static_cast<token_id>(i * 31)).data());
  }
  state.SetLabel(std::string(name_of(m.weights().output.type)));
  state.counters["tok/s"] = benchmark::Counter(double(steps), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] = benchmark::Counter(double(steps) * double(m.weights().decode_bytes()) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}


/// A field of /proc/self/status in MiB ("RssAnon", "RssFile").
double status_mib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(field + ":")) {
      std::istringstream fields(line.substr(field.size() + 1));
      double kib = 0;
      fields >> kib;
      return kib / 1024.0;
    }
  return -1;
}

/// The f32 model written as a GGUF file, loaded by load_decoder (mapped) and decoding: how much of
/// the resident memory is the mapped file and how much is the process's own (anonymous) memory.
void mapped_f32_memory(benchmark::State& state) {
  const decoder_config c = stories110m();
  const auto path = std::filesystem::temp_directory_path() / "lmkit-bench-stories110m-f32.gguf";
  {
    io::gguf_writer w;
    w.add_string("general.architecture", "llama");
    w.add_uint32("llama.embedding_length", c.dim);
    w.add_uint32("llama.block_count", c.layers);
    w.add_uint32("llama.feed_forward_length", c.hidden);
    w.add_uint32("llama.attention.head_count", c.heads);
    w.add_uint32("llama.context_length", c.context);
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    std::uint64_t stream = 100;
    auto add = [&](const std::string& name, std::size_t rows, std::size_t cols) {
      std::vector<float> v(rows * cols);
      fill_random(v, stream++, rows == 1 ? 1.0f : 0.05f);
      std::vector<std::uint64_t> dims{cols};
      if (rows > 1) dims.push_back(rows);
      w.add_tensor(name, dims, io::ggml_type::f32, std::as_bytes(std::span(v)));
    };
    add("token_embd.weight", c.vocab, c.dim);
    for (std::size_t l = 0; l < c.layers; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      add(b + "attn_norm.weight", 1, c.dim);
      add(b + "attn_q.weight", c.dim, c.dim);
      add(b + "attn_k.weight", c.dim, c.dim);
      add(b + "attn_v.weight", c.dim, c.dim);
      add(b + "attn_output.weight", c.dim, c.dim);
      add(b + "ffn_norm.weight", 1, c.dim);
      add(b + "ffn_gate.weight", c.hidden, c.dim);
      add(b + "ffn_up.weight", c.hidden, c.dim);
      add(b + "ffn_down.weight", c.dim, c.hidden);
    }
    add("output_norm.weight", 1, c.dim);
    add("output.weight", c.vocab, c.dim);
    w.write(path);
  }
  const double anon_before = status_mib("RssAnon");
  {
    const decoder m = models::load_decoder(path);
    const thread_pool pool(1);
    models::decoder_session session(m, 256, pool);
    for (auto _ : state)
      for (token_id t = 0; t < 16; ++t) benchmark::DoNotOptimize(session.append(t).data());
    state.counters["file_MiB"] = double(std::filesystem::file_size(path)) / (1 << 20);
    state.counters["RssFile_MiB"] = status_mib("RssFile");
    state.counters["RssAnon_growth_MiB"] = status_mib("RssAnon") - anon_before;
    state.counters["kv_cache_MiB"] = double(session.cache().bytes()) / (1 << 20);
  }
  std::filesystem::remove(path);
}

void all_types(benchmark::internal::Benchmark* b) {
  b->ArgNames({"type", "threads"});
  for (auto t : {weight_type::f32, weight_type::f16, weight_type::q8_0, weight_type::q4_0})
    for (int threads : {1, 2}) b->Args({static_cast<std::int64_t>(t), threads});
}

}  // namespace

BENCHMARK(lmkit::bench::triad)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(prompt)->Apply(all_types)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(decode)->Apply(all_types)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(mapped_f32_memory)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
