// Speculative decoding against plain decoding, in the same run: the llama fixture (918k parameters,
// ../shared/data/fixtures/shakespeare-llama) continues a repetitive prompt (a line the model itself
// loops on, said three times) greedily for 96 tokens,
//   - plainly (gen::generate, temperature 0): one target call per token;
//   - with a draft n-gram (order 4, Kneser-Ney over token ids) estimated from the prompt's own
//     tokens at the start of each run (its estimate is inside the timing), k = 2, 4, 8;
//   - with the same model quantised to q8_0 as the draft, k = 4.
// Greedy speculative output equals plain greedy output (checked here on every run). Counters:
// tokens/s, acceptance rate (draft tokens kept / proposed), target passes per token, and speedup =
// plain's time / this one's (plain runs first). Time per iteration = one whole generation.
//
// The target here is tiny, so a draft is not much cheaper than it: the figures show the machinery's
// overheads (an n-gram's scores over the vocabulary, the sampler chain on p and q, the rewinds)
// as much as the gain. With a large target the same acceptance rate buys more.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <lmkit/gen/generate.hpp>
#include <lmkit/gen/language_model.hpp>
#include <lmkit/gen/prompt_lookup.hpp>
#include <lmkit/gen/sampler_config.hpp>
#include <lmkit/gen/speculative.hpp>
#include <lmkit/io/sentencepiece_model.hpp>
#include <lmkit/models/load_decoder.hpp>

namespace {

using namespace lmkit;
constexpr std::size_t generated = 96;

std::filesystem::path fixture() {
  const char* root = std::getenv("LMKIT_SHARED_DATA");
  return std::filesystem::path(root && *root ? root : LMKIT_DEFAULT_SHARED_DATA) / "fixtures" / "shakespeare-llama";
}

struct setup {
  models::decoder target = models::load_decoder(fixture() / "shakespeare-llama-f32.gguf");
  models::decoder q8 = models::load_decoder(fixture() / "shakespeare-llama-q8_0.gguf");
  std::vector<token_id> prompt;
  std::vector<token_id> plain;  // the plain greedy output, to check the others against
  double plain_seconds = 0.0;   // per generation, measured by the plain benchmark
  setup() {
    const auto tok = io::read_sentencepiece_model(fixture() / "tok512.model");
    // The loop the model falls into by itself after its greedy "ROMEO:" text, said three times.
    std::string text = "ROMEO:\n";
    for (int i = 0; i < 3; ++i) text += "And therefore, and then, and therefore,\n";
    prompt = tok.encode(text, {.add_bos = true});
  }
};

setup& data() {
  static setup s;
  return s;
}

void plain(benchmark::State& state) {
  auto& d = data();
  gen::decoder_lm lm(d.target, 0);
  auto chain = gen::make_chain({.temperature = 0.0f});
  philox rng(seed{1});
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const auto out = gen::generate(lm, d.prompt, chain, rng, {.max_tokens = generated});
    d.plain = out.tokens;
    benchmark::DoNotOptimize(d.plain.data());
  }
  d.plain_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(state.iterations());
  state.counters["tokens/s"] = benchmark::Counter(double(generated), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["passes/token"] = 1.0;
}

/// `run_once()` makes the draft if need be and generates once; returns the result.
template <class RunOnce>
void report(benchmark::State& state, RunOnce run_once) {
  auto& d = data();
  if (d.plain.empty()) {
    state.SkipWithError("run the plain benchmark first (it gives the reference output)");
    return;
  }
  gen::speculative_result last;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    last = run_once();
    benchmark::DoNotOptimize(last.tokens.data());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(state.iterations());
  if (last.tokens != d.plain) state.SkipWithError("speculative greedy output differs from plain greedy output");
  state.counters["tokens/s"] = benchmark::Counter(double(generated), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["acceptance"] = last.acceptance_rate();
  state.counters["passes/token"] = double(last.rounds) / double(generated);
  state.counters["speedup"] = d.plain_seconds / seconds;
}

/// The draft: an n-gram of the prompt's tokens, estimated inside the timing (as a user would).
void ngram_draft(benchmark::State& state) {
  auto& d = data();
  gen::decoder_lm target(d.target, 0);
  auto chain = gen::make_chain({.temperature = 0.0f});
  philox rng(seed{1});
  const auto k = static_cast<std::size_t>(state.range(0));
  report(state, [&] {
    const auto kn = gen::estimate_token_ngram(std::vector<std::vector<token_id>>{d.prompt}, 4);
    auto draft = gen::ngram_lm::over_token_ids(kn, d.target.config().vocab);
    return gen::speculative_generate(target, draft, d.prompt, chain, rng, {.max_tokens = generated, .draft_tokens = k});
  });
}

/// The draft: prompt lookup over the history (no model at all).
void lookup_draft(benchmark::State& state) {
  auto& d = data();
  gen::decoder_lm target(d.target, 0);
  auto chain = gen::make_chain({.temperature = 0.0f});
  philox rng(seed{1});
  const auto k = static_cast<std::size_t>(state.range(0));
  report(state, [&] {
    gen::prompt_lookup_draft draft(d.target.config().vocab);
    return gen::speculative_generate(target, draft, d.prompt, chain, rng, {.max_tokens = generated, .draft_tokens = k});
  });
}

/// The draft: the same model quantised to q8_0.
void q8_0_draft(benchmark::State& state) {
  auto& d = data();
  gen::decoder_lm target(d.target, 0), draft(d.q8, 0);
  auto chain = gen::make_chain({.temperature = 0.0f});
  philox rng(seed{1});
  const auto k = static_cast<std::size_t>(state.range(0));
  report(state, [&] {
    return gen::speculative_generate(target, draft, d.prompt, chain, rng, {.max_tokens = generated, .draft_tokens = k});
  });
}

}  // namespace

BENCHMARK(plain)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(ngram_draft)->Arg(2)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(lookup_draft)->Arg(2)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(q8_0_draft)->Arg(4)->Unit(benchmark::kMillisecond)->MinTime(1.0);

BENCHMARK_MAIN();
