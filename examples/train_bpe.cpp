// train-bpe: learn a byte-level BPE vocabulary from text files and write it as a tiktoken rank file
// and a Hugging Face tokenizer.json.
//
//   train-bpe --vocab 8000 [--pattern gpt2|cl100k_base|o200k_base] [--out PREFIX] [--special TEXT]... FILE...
//
// Writes PREFIX.tiktoken and PREFIX.tokenizer.json (PREFIX defaults to "bpe"); progress on stderr.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <lmkit/io/hf_tokenizer.hpp>
#include <lmkit/io/tiktoken.hpp>
#include <lmkit/text/bpe_trainer.hpp>

#include "cli_main.hpp"

namespace {

using namespace lmkit;
using clock_type = std::chrono::steady_clock;

int usage(int code) {
  std::fputs(
      "usage: train-bpe --vocab N [--pattern gpt2|cl100k_base|o200k_base] [--out PREFIX] [--special TEXT]... FILE...\n"
      "  Learns N - 256 merges over the bytes of the files (pre-tokenised with the pattern, default\n"
      "  cl100k_base) and writes PREFIX.tiktoken and PREFIX.tokenizer.json (PREFIX: bpe). Special tokens\n"
      "  get the ids after the vocabulary. Deterministic: the same files give the same vocabulary.\n",
      code == 0 ? stdout : stderr);
  return code;
}

double seconds_since(clock_type::time_point start) { return std::chrono::duration<double>(clock_type::now() - start).count(); }

int run(int argc, char** argv) {
  std::size_t vocab = 0;
  text::split_pattern pattern = text::split_pattern::cl100k_base;
  std::string prefix = "bpe";
  std::vector<std::string> files, special_texts;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") return usage(0);
    if (a == "--vocab" && i + 1 < argc) {
      char* end = nullptr;
      vocab = std::strtoul(argv[++i], &end, 10);
      if (*end != '\0') return usage(2);
    } else if (a == "--pattern" && i + 1 < argc) {
      pattern = io::tiktoken_encoding_named(argv[++i]).pattern;
    } else if (a == "--out" && i + 1 < argc) {
      prefix = argv[++i];
    } else if (a == "--special" && i + 1 < argc) {
      special_texts.push_back(argv[++i]);
    } else if (!a.empty() && a[0] != '-') {
      files.push_back(a);
    } else {
      return usage(2);
    }
  }
  if (vocab == 0 || files.empty()) return usage(2);

  const auto start = clock_type::now();
  text::bpe_trainer trainer(pattern);
  std::uint64_t bytes_read = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    require<io_error>(bool(in), "cannot read ", f);
    std::string chunk;
    std::string line;
    // Lines are gathered into ~1 MB chunks; pieces never span lines in any of the patterns except
    // runs of line breaks, which the chunks keep whole.
    while (std::getline(in, line)) {
      chunk += line;
      chunk += '\n';
      if (chunk.size() >= (1u << 20)) {
        trainer.add_text(chunk);
        bytes_read += chunk.size();
        chunk.clear();
        std::fprintf(stderr, "\rreading: %.1f MB, %.1f MB/s   ", double(bytes_read) / 1e6,
                     double(bytes_read) / 1e6 / seconds_since(start));
      }
    }
    if (!chunk.empty()) {
      trainer.add_text(chunk);
      bytes_read += chunk.size();
    }
  }
  const double read_seconds = seconds_since(start);
  std::fprintf(stderr, "\rread %.1f MB in %.2f s%20s\n", double(bytes_read) / 1e6, read_seconds, "");

  const auto merge_start = clock_type::now();
  text::bpe_training_options options;
  options.vocab_size = vocab;
  options.pattern = pattern;
  options.progress = [&](std::size_t done, std::size_t wanted) {
    const double elapsed = seconds_since(merge_start);
    const double rate = double(done) / std::max(elapsed, 1e-9);
    std::fprintf(stderr, "\rmerges: %zu / %zu, %.0f merges/s, ETA %.1f s   ", done, wanted, rate,
                 double(wanted - done) / std::max(rate, 1e-9));
  };
  const auto result = trainer.train(options);
  const double total = seconds_since(start);
  std::fprintf(stderr, "\n");

  std::vector<text::special_token> specials;
  for (const auto& s : special_texts) specials.push_back({s, text::token_id(result.token_bytes.size() + specials.size())});
  io::write_tiktoken_ranks(prefix + ".tiktoken", result.token_bytes);
  io::write_hf_tokenizer_json(prefix + ".tokenizer.json", result.token_bytes, result.merges, pattern, specials);
  std::printf("%zu tokens (%zu merges) from %.1f MB, %zu distinct pieces; the corpus is %llu tokens, %.2f bytes per token\n",
              result.token_bytes.size(), result.merges.size(), double(result.corpus_bytes) / 1e6, result.distinct_pieces,
              static_cast<unsigned long long>(result.corpus_tokens),
              double(result.corpus_bytes) / double(std::max<std::uint64_t>(result.corpus_tokens, 1)));
  std::printf("%.2f s in all (%.2f MB/s of corpus); wrote %s.tiktoken and %s.tokenizer.json\n", total,
              double(result.corpus_bytes) / 1e6 / total, prefix.c_str(), prefix.c_str());
  if (result.token_bytes.size() < vocab)
    std::printf("stopped at %zu tokens: no pair of tokens occurs twice any more\n", result.token_bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return lmkit::cli::run_tool("train-bpe", run, argc, argv); }
