// The sampler chain's cost per token at the vocabularies of Llama 2 (32000) and of o200k-sized
// tokenizers (200000), on random logits: a typical chain (penalties over the last 64 tokens,
// top-k 40, top-p 0.95, min-p 0.05, temperature 0.8), the same chain built at run time, greedy,
// and plain temperature sampling over the whole vocabulary (no cut: the worst case). The time per
// iteration is the time per token. The logits rotate over 4 rows so that they are not all in L1/L2,
// as a fresh row from the output layer would not be.
#include <benchmark/benchmark.h>

#include <lmkit/lmkit.hpp>
#include <map>
#include <vector>

namespace {

using namespace lmkit;

struct inputs {
  std::vector<std::vector<float>> rows;
  std::vector<token_id> history;
};

const inputs& data(std::size_t vocabulary) {
  static std::map<std::size_t, inputs> cache;
  auto& in = cache[vocabulary];
  if (in.rows.empty()) {
    philox rng(seed{17}, vocabulary);
    in.rows.resize(4);
    for (auto& row : in.rows) {
      row.resize(vocabulary);
      for (float& x : row) x = static_cast<float>(3.0 * rng.normal());
    }
    for (int i = 0; i < 256; ++i) in.history.push_back(static_cast<token_id>(rng() % vocabulary));
  }
  return in;
}

template <class Chain>
void run(benchmark::State& state, Chain chain) {
  const auto& in = data(static_cast<std::size_t>(state.range(0)));
  philox rng(seed{1});
  std::size_t i = 0;
  token_id sink = 0;
  for (auto _ : state) {
    sink ^= chain.sample(in.rows[i++ & 3], in.history, rng);
    benchmark::DoNotOptimize(sink);
  }
  state.counters["vocabulary"] = static_cast<double>(state.range(0));
}

using typical_chain = gen::sampler_chain<gen::penalties, gen::top_k, gen::top_p, gen::min_p, gen::temperature>;
const typical_chain typical{{1.1f, 0.0f, 0.0f, 64}, {40}, {0.95f}, {0.05f}, {0.8f}};
const gen::sampler_config typical_config{.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                                         .repeat_penalty = 1.1f, .penalty_last_n = 64};

void typical_compile_time(benchmark::State& state) { run(state, typical); }
void typical_run_time(benchmark::State& state) { run(state, gen::make_chain(typical_config)); }
void greedy(benchmark::State& state) { run(state, gen::sampler_chain<gen::temperature>{{0.0f}}); }
void temperature_only(benchmark::State& state) { run(state, gen::sampler_chain<gen::temperature>{{0.8f}}); }

}  // namespace

BENCHMARK(typical_compile_time)->Arg(32000)->Arg(200000)->Unit(benchmark::kMicrosecond);
BENCHMARK(typical_run_time)->Arg(32000)->Arg(200000)->Unit(benchmark::kMicrosecond);
BENCHMARK(greedy)->Arg(32000)->Arg(200000)->Unit(benchmark::kMicrosecond);
BENCHMARK(temperature_only)->Arg(32000)->Arg(200000)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
