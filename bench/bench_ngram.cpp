// n-gram models on Penn Treebank (../shared/data/ptb), for comparison with KenLM's figures in
// ../shared/BASELINES.md (KenLM is not a Debian package, so it cannot run beside us here):
// 5-gram estimation wall time (in memory, and within a memory budget as lmplz -S), query throughput in words/s from an ARPA-loaded and a mapped binary
// model (1 thread, and all threads over a batch of sentences), and load times.
//
//   build/bench/bench_ngram            (peak memory of the whole run is printed at exit)
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <lmkit/core/parallel.hpp>
#include <lmkit/io/arpa.hpp>
#include <lmkit/io/ngram_binary.hpp>
#include <lmkit/models/ngram/kneser_ney.hpp>

namespace {

using namespace lmkit;

std::filesystem::path data_dir() {
  const char* root = std::getenv("LMKIT_SHARED_DATA");
  return std::filesystem::path(root && *root ? root : LMKIT_DEFAULT_SHARED_DATA) / "ptb";
}

// PTB's <unk> renamed to a plain word, as for KenLM's figures (lmplz refuses <unk> in training text).
std::vector<std::string> ptb_lines(const char* name, int repeat = 1) {
  std::ifstream in(data_dir() / name);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    for (std::size_t p; (p = line.find("<unk>")) != std::string::npos;) line.replace(p, 5, "<ptbunk>");
    lines.push_back(line);
  }
  std::vector<std::string> out;
  for (int r = 0; r < repeat; ++r) out.insert(out.end(), lines.begin(), lines.end());
  return out;
}

ngram::ngram_model build(std::size_t order) {
  ngram::kneser_ney_counter counter(order);
  for (const auto& line : ptb_lines("ptb.train.txt")) counter.add_line(line);
  return ngram::estimate_kneser_ney(std::move(counter));
}

const std::filesystem::path& model_file(const char* extension) {
  static const auto dir = std::filesystem::temp_directory_path() / "lmkit-bench-ngram";
  static const auto arpa = dir / "ptb5.arpa", binary = dir / "ptb5.bin";
  static const bool made = [] {
    std::filesystem::create_directories(dir);
    const auto model = build(5);
    io::write_arpa(model, arpa);
    io::write_ngram_binary(model, binary);
    return true;
  }();
  (void)made;
  return std::string_view(extension) == "arpa" ? arpa : binary;
}

bool have_data(benchmark::State& state) {
  if (std::filesystem::exists(data_dir() / "ptb.train.txt")) return true;
  state.SkipWithError("../shared/data/ptb is not here");
  return false;
}

void estimate_ptb(benchmark::State& state) {
  if (!have_data(state)) return;
  const auto order = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(build(order));
}

/// A stream that discards what it is given (to time writing ARPA text without a disk).
struct discard_buffer : std::streambuf {
  int_type overflow(int_type c) override { return c; }
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

/// PTB 5-gram, text in and ARPA text out, as lmplz runs: in memory (memory = 0) or within a
/// budget of `memory` MiB, sorting in temporary files.
void estimate_ptb_arpa(benchmark::State& state) {
  if (!have_data(state)) return;
  std::string text;
  for (const auto& line : ptb_lines("ptb.train.txt")) text += line + '\n';
  const auto memory = static_cast<std::size_t>(state.range(0)) << 20;
  for (auto _ : state) {
    std::istringstream lines(text);
    discard_buffer sink;
    std::ostream out(&sink);
    if (memory == 0) {
      io::write_arpa(ngram::estimate_kneser_ney(lines, 5), out);
    } else {
      io::write_arpa_estimated_externally(lines, out, 5, {}, {memory, std::filesystem::temp_directory_path()},
                                          [](const ngram::external_estimate_stage&) {});
    }
  }
}

void load(benchmark::State& state, const char* extension) {
  if (!have_data(state)) return;
  const auto& path = model_file(extension);
  for (auto _ : state) benchmark::DoNotOptimize(io::load_ngram_model(path));
}

/// PTB test x10 (824,300 tokens with </s>), as in KenLM's figure; threads split the sentences.
void query(benchmark::State& state, const char* extension) {
  if (!have_data(state)) return;
  const auto model = io::load_ngram_model(model_file(extension));
  const auto lines = ptb_lines("ptb.test.txt", 10);
  const thread_pool pool(static_cast<int>(state.range(0)));
  std::size_t tokens = 0;
  for (auto _ : state) {
    const auto total = pool.reduce(
        lines.size(), 256, ngram::text_score{},
        [&](std::size_t begin, std::size_t end) {
          ngram::text_score s;
          for (std::size_t i = begin; i < end; ++i) s += model.score_sentence(lines[i]);
          return s;
        },
        [](ngram::text_score a, const ngram::text_score& b) { return a += b; });
    tokens = total.tokens;
    benchmark::DoNotOptimize(total.total_log_prob);
  }
  state.counters["words/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(estimate_ptb)->Arg(3)->Arg(5)->ArgName("order")->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
BENCHMARK(estimate_ptb_arpa)->Arg(0)->Arg(64)->Arg(1024)->ArgName("memory_MiB")->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
BENCHMARK_CAPTURE(load, arpa, "arpa")->Unit(benchmark::kMillisecond)->Iterations(2)->UseRealTime();
BENCHMARK_CAPTURE(load, binary, "bin")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(query, arpa, "arpa")->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(query, binary, "bin")->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak resident memory of the run: %.0f MiB\n", usage.ru_maxrss / 1024.0);
}
