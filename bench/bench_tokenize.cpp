// Byte-level BPE encoding speed, for comparison with the real tiktoken run in the same sitting
// (bench/run_tokenize.sh runs both): MB/s and tokens/s on one thread over Tiny Shakespeare and
// over Korean prose, and a batch of lines on all threads; and BPE training's MB/s of corpus.
//
//   build/bench/bench_tokenize                       (needs ../shared/data)
//   build/bench/bench_tokenize --write-korean FILE   (the Korean text, for the peer to read)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <lmkit/core/parallel.hpp>
#include <lmkit/core/rng.hpp>
#include <lmkit/io/tiktoken.hpp>
#include <lmkit/text/bpe_trainer.hpp>

namespace {

using namespace lmkit;

std::filesystem::path data_dir() {
  const char* root = std::getenv("LMKIT_SHARED_DATA");
  return std::filesystem::path(root && *root ? root : LMKIT_DEFAULT_SHARED_DATA);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw io_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// About one megabyte of Korean-like prose. Real Korean text cannot be shipped, so a seeded
/// generator writes it: a lexicon of 20,000 words of one to four common syllables, drawn with
/// Zipf's law (as words in real text are), with particles, numbers and punctuation between them.
std::string korean_prose(std::size_t bytes = 1 << 20) {
  static const char* syllables[] = {
      "가", "각", "간", "감", "강", "개", "거", "게", "결", "경", "고", "공", "과", "관", "교", "구", "국", "권", "그",
      "기", "길", "김", "나", "날", "남", "내", "너", "녀", "년", "노", "누", "는", "다", "단", "달", "당", "대", "더",
      "데", "도", "동", "두", "드", "들", "라", "람", "래", "량", "러", "려", "력", "로", "록", "료", "루", "리", "마",
      "만", "말", "매", "면", "명", "모", "목", "무", "문", "물", "미", "민", "바", "반", "발", "방", "배", "법", "변",
      "보", "복", "부", "분", "비", "사", "산", "상", "새", "생", "서", "선", "설", "성", "세", "소", "수", "시", "식",
      "신", "실", "심", "아", "안", "알", "야", "양", "어", "언", "얼", "업", "여", "역", "연", "영", "예", "오", "와",
      "요", "용", "우", "운", "원", "위", "유", "은", "음", "의", "이", "인", "일", "자", "작", "장", "재", "전", "정",
      "제", "조", "주", "중", "지", "진", "집", "차", "천", "체", "초", "추", "치", "통", "파", "하", "학", "한", "해",
      "행", "향", "현", "형", "호", "화", "회", "후", "희"};
  static const char* particles[] = {"은", "는", "이", "가", "을", "를", "에", "에서", "와", "과", "의", "로", "도",
                                    "만", "까지", "부터", "에게", "했다", "한다", "하고", "했지만", "이다"};
  philox rng(seed{2026});
  std::vector<std::string> lexicon(20000);
  for (auto& word : lexicon) {
    const int length = 1 + int(rng() % 4) / 2 + int(rng() % 3 == 0);  // mostly 1-2, some 3
    for (int k = 0; k < length; ++k) word += syllables[rng() % std::size(syllables)];
  }
  std::vector<double> cumulative(lexicon.size());  // Zipf's law, exponent 1
  double total = 0;
  for (std::size_t r = 0; r < lexicon.size(); ++r) cumulative[r] = total += 1.0 / double(r + 1);
  auto word = [&]() -> const std::string& {
    const double u = rng.uniform_double() * total;
    return lexicon[std::size_t(std::lower_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin())];
  };
  std::string out;
  while (out.size() < bytes) {
    const int words = 3 + int(rng() % 9);
    for (int w = 0; w < words; ++w) {
      out += word();
      if (rng() % 2 == 0) out += particles[rng() % std::size(particles)];
      if (rng() % 25 == 0) {
        out += ' ';
        out += std::to_string(rng() % 1000);
      }
      out += w + 1 < words ? (rng() % 8 == 0 ? ", " : " ") : (rng() % 6 == 0 ? "? " : ". ");
    }
    if (rng() % 5 == 0) out += '\n';
  }
  return out;
}

const std::string& text(const std::string& name) {
  static std::map<std::string, std::string> texts;
  auto it = texts.find(name);
  if (it == texts.end())
    it = texts.emplace(name, name == "korean" ? korean_prose() : read_file(data_dir() / "tinyshakespeare/input.txt")).first;
  return it->second;
}

const text::bpe_tokenizer& tokenizer(const std::string& encoding) {
  static std::map<std::string, text::bpe_tokenizer> loaded;
  auto it = loaded.find(encoding);
  if (it == loaded.end())
    it = loaded.emplace(encoding, io::load_tiktoken(data_dir() / "tokenizers/tiktoken" / (encoding + ".tiktoken"), encoding))
             .first;
  return it->second;
}

void encode_single_thread(benchmark::State& state, std::string encoding, std::string corpus) {
  const auto& tok = tokenizer(encoding);
  const auto& t = text(corpus);
  std::size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tok.encode_ordinary(t);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(std::int64_t(state.iterations() * t.size()));
  state.counters["tokens"] = double(tokens);
  state.counters["Mtokens/s"] = benchmark::Counter(double(tokens) * 1e-6 * double(state.iterations()), benchmark::Counter::kIsRate);
}

void encode_batch_of_lines(benchmark::State& state, std::string encoding, std::string corpus) {
  const auto& tok = tokenizer(encoding);
  const auto& t = text(corpus);
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0; pos < t.size();) {
    const std::size_t end = std::min(t.find('\n', pos), t.size());
    lines.push_back(std::string_view(t).substr(pos, end + 1 - pos));
    pos = end + 1;
  }
  const thread_pool pool(int(state.range(0)));
  std::size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tok.encode_batch(lines, pool);
    tokens = 0;
    for (const auto& v : ids) tokens += v.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(std::int64_t(state.iterations() * t.size()));
  state.counters["Mtokens/s"] = benchmark::Counter(double(tokens) * 1e-6 * double(state.iterations()), benchmark::Counter::kIsRate);
}

// BPE training speed (the issue asks for >= 1 MB/s of corpus on one thread): pre-tokenising and
// counting the corpus, then the merges up to the vocabulary size. No peer runs beside it here;
// docs/tokenizers.md compares one run with Debian's spm_train.
void train_bpe(benchmark::State& state, std::string corpus) {
  const auto& t = text(corpus);
  std::size_t merges = 0;
  for (auto _ : state) {
    text::bpe_trainer trainer(text::split_pattern::cl100k_base);
    trainer.add_text(t);
    const auto result = trainer.train({.vocab_size = std::size_t(state.range(0)), .pattern = text::split_pattern::cl100k_base});
    merges = result.merges.size();
    benchmark::DoNotOptimize(result.merges.data());
  }
  state.SetBytesProcessed(std::int64_t(state.iterations() * t.size()));
  state.counters["merges"] = double(merges);
}

void register_all() {
  for (const std::string corpus : {"shakespeare", "korean"})
    benchmark::RegisterBenchmark(("train_bpe/" + corpus).c_str(), train_bpe, corpus)
        ->Arg(8000)
        ->ArgName("vocab")
        ->Unit(benchmark::kMillisecond);
  for (const std::string e : {"gpt2", "cl100k_base", "o200k_base"}) {
    for (const std::string corpus : {"shakespeare", "korean"}) {
      benchmark::RegisterBenchmark(("encode/" + e + "/" + corpus).c_str(), encode_single_thread, e, corpus)
          ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark(("encode_batch/" + e + "/shakespeare_lines").c_str(), encode_batch_of_lines, e,
                                 std::string("shakespeare"))
        ->Arg(1)
        ->Arg(2)
        ->ArgName("threads")
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--write-korean") == 0) {
    std::ofstream(argv[2], std::ios::binary) << korean_prose();
    return 0;
  }
  if (!std::filesystem::exists(data_dir() / "tokenizers/tiktoken/gpt2.tiktoken")) {
    std::fprintf(stderr, "bench_tokenize: %s not found (set LMKIT_SHARED_DATA)\n", data_dir().c_str());
    return 1;
  }
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
