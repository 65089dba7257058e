// ngram: build, query and sample n-gram language models, in the manner of KenLM's lmplz and query.
//
//   ngram build -o 5 < train.txt > model.arpa        interpolated modified Kneser-Ney (progress on stderr)
//   ngram build -o 5 --memory 1G < train.txt > ...   the same within a memory budget (sorting on disk)
//   ngram binary model.arpa model.bin                the same model in lmkit's binary format (loads by mmap)
//   ngram query model.{arpa,bin} < test.txt          per-word, per-sentence and summary lines like KenLM's query
//   ngram generate model.arpa -n 20 [--seed S]       sample sentences
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <iostream>
#include <string>
#include <vector>

#include <lmkit/core/rng.hpp>
#include <lmkit/io/arpa.hpp>
#include <lmkit/io/ngram_binary.hpp>
#include <lmkit/models/ngram/kneser_ney.hpp>

namespace {

using namespace lmkit;

int usage(int code) {
  std::fputs(
      "usage:\n"
      "  ngram build -o ORDER [--discount_fallback] [--memory SIZE [-T FOLDER]] < train.txt > model.arpa\n"
      "      Estimates an interpolated modified Kneser-Ney model (as KenLM's lmplz) from one sentence\n"
      "      per line, whitespace-separated words; <s> and </s> are added. Progress goes to stderr.\n"
      "      --discount_fallback: discounts 0.5 1 1.5 for an order whose counts give none (as lmplz).\n"
      "      --memory SIZE (as lmplz -S; at least 1M, e.g. 500M or 2G): n-grams are sorted in temporary files in\n"
      "      FOLDER (default: the system's temporary folder) and the sort buffers stay within SIZE;\n"
      "      only the vocabulary and one context's followers are held besides. Same output.\n"
      "  ngram binary model.arpa model.bin\n"
      "      Converts an ARPA model to lmkit's binary format, which loads by mapping the file.\n"
      "  ngram query [-v sentence|word|summary] MODEL < test.txt\n"
      "      Scores each line as KenLM's query does: word=id order log10p per word, a Total line per\n"
      "      sentence, then perplexity including and excluding OOVs.\n"
      "  ngram generate model.arpa [-n SENTENCES] [--seed S] [--max-words W]\n"
      "      Samples sentences word by word from the model.\n",
      code == 0 ? stdout : stderr);
  return code;
}

std::size_t parse_count(const char* text, const char* what) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  require<argument_error>(*text && *end == '\0' && v > 0 && v < (1ull << 40), what, " needs a positive whole number, got '",
                          text, "'");
  return static_cast<std::size_t>(v);
}

/// "500M", "2G", "64K" or a number of bytes.
std::size_t parse_size(const char* text) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  double scale = 1;
  if (*end && !end[1]) {
    switch (*end) {
      case 'K': case 'k': scale = 1024.0; break;
      case 'M': case 'm': scale = 1024.0 * 1024; break;
      case 'G': case 'g': scale = 1024.0 * 1024 * 1024; break;
      default: scale = 0;
    }
    ++end;
  }
  require<argument_error>(end != text && *end == '\0' && scale > 0 && v * scale >= 1 << 20 && v * scale < 1e15,
                          "--memory needs a size of at least 1M such as 500M or 2G, got '", text, "'");
  return static_cast<std::size_t>(v * scale);
}

int build(int argc, char** argv) {
  std::size_t order = 0;
  ngram::kneser_ney_options options;
  std::optional<ngram::external_estimate_options> external;
  std::filesystem::path temp_folder = std::filesystem::temp_directory_path();
  for (int i = 0; i < argc; ++i) {
    if ((!std::strcmp(argv[i], "-o") || !std::strcmp(argv[i], "--order")) && i + 1 < argc) order = parse_count(argv[++i], "-o");
    else if (!std::strcmp(argv[i], "--discount_fallback")) options.discount_fallback = std::array<float, 3>{0.5f, 1.0f, 1.5f};
    else if ((!std::strcmp(argv[i], "--memory") || !std::strcmp(argv[i], "-S")) && i + 1 < argc)
      external = ngram::external_estimate_options{parse_size(argv[++i]), {}};
    else if (!std::strcmp(argv[i], "-T") && i + 1 < argc) temp_folder = argv[++i];
    else return usage(2);
  }
  if (order == 0) return usage(2);
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  if (external) {
    external->temp_folder = temp_folder;
    io::write_arpa_estimated_externally(std::cin, std::cout, order, options, *external,
                                        [&](const ngram::external_estimate_stage& stage) {
                                          std::fprintf(stderr, "%.2f s: %s (order %zu)\n", elapsed(), stage.name,
                                                       stage.order);
                                        });
    std::cout.flush();
    require<io_error>(static_cast<bool>(std::cout), "ngram: cannot write the model to standard output");
    std::fprintf(stderr, "%.2f s: done\n", elapsed());
    return 0;
  }
  ngram::kneser_ney_counter counter(order);
  std::string line;
  while (std::getline(std::cin, line)) {
    counter.add_line(line);
    if (counter.lines() % 100000 == 0)
      std::fprintf(stderr, "\rcounting: %zu lines, %.0f lines/s", counter.lines(), counter.lines() / elapsed());
  }
  std::fprintf(stderr, "\rcounted %zu lines in %.2f s; estimating\n", counter.lines(), elapsed());
  const auto model = ngram::estimate_kneser_ney(std::move(counter), options);
  io::write_arpa(model, std::cout);
  std::fprintf(stderr, "wrote");
  for (std::size_t n = 1; n <= model.order(); ++n) std::fprintf(stderr, " %zu %zu-grams", model.table(n).size(), n);
  std::fprintf(stderr, " in %.2f s\n", elapsed());
  return 0;
}

int query(int argc, char** argv) {
  std::string verbosity = "word", path;
  for (int i = 0; i < argc; ++i) {
    if (!std::strcmp(argv[i], "-v") && i + 1 < argc) verbosity = argv[++i];
    else if (path.empty()) path = argv[i];
    else return usage(2);
  }
  if (path.empty() || (verbosity != "word" && verbosity != "sentence" && verbosity != "summary")) return usage(2);
  const auto load_start = std::chrono::steady_clock::now();
  const auto model = io::load_ngram_model(path);
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  ngram::text_score all;
  std::string line;
  while (std::getline(std::cin, line)) {
    const auto s = model.score_sentence(line, [&](std::string_view word, ngram::word_id id, const ngram::word_score& ws) {
      if (verbosity == "word")
        std::printf("%.*s=%u %zu %g\t", static_cast<int>(word.size()), word.data(), id, ws.matched_order, ws.log_prob);
    });
    if (verbosity != "summary") std::printf("Total: %g OOV: %zu\n", s.total_log_prob, s.oovs);
    all += s;
  }
  std::printf("Perplexity including OOVs:\t%.10g\nPerplexity excluding OOVs:\t%.10g\nOOVs:\t%zu\nTokens:\t%zu\n", all.perplexity(),
              all.perplexity_excluding_oovs(), all.oovs, all.tokens);
  std::fprintf(stderr, "loaded %s in %.4f s\n", path.c_str(), load_seconds);
  return 0;
}

int binary(int argc, char** argv) {
  if (argc != 2) return usage(2);
  const auto model = io::read_arpa(argv[0]);
  io::write_ngram_binary(model, argv[1]);
  return 0;
}

int generate(int argc, char** argv) {
  std::string path;
  std::size_t sentences = 1, max_words = 100;
  std::uint64_t seed_value = 1;
  for (int i = 0; i < argc; ++i) {
    if (!std::strcmp(argv[i], "-n") && i + 1 < argc) sentences = parse_count(argv[++i], "-n");
    else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) seed_value = parse_count(argv[++i], "--seed");
    else if (!std::strcmp(argv[i], "--max-words") && i + 1 < argc) max_words = parse_count(argv[++i], "--max-words");
    else if (path.empty()) path = argv[i];
    else return usage(2);
  }
  if (path.empty()) return usage(2);
  const auto model = io::load_ngram_model(path);
  philox rng(seed{seed_value});
  std::vector<double> p(model.vocab().size());
  for (std::size_t s = 0; s < sentences; ++s) {
    ngram::ngram_state state = model.begin_sentence();
    for (std::size_t w = 0; w < max_words; ++w) {
      const ngram::word_id chosen = model.sample_next_word(state, rng.uniform_double(), p);
      model.score(state, chosen);
      if (chosen == ngram::eos_id) break;
      std::printf("%s%s", w ? " " : "", model.vocab().word(chosen).c_str());
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(2);
  const std::string command = argv[1];
  try {
    if (command == "build") return build(argc - 2, argv + 2);
    if (command == "query") return query(argc - 2, argv + 2);
    if (command == "generate") return generate(argc - 2, argv + 2);
    if (command == "binary") return binary(argc - 2, argv + 2);
    if (command == "--help" || command == "-h" || command == "help") return usage(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ngram: %s\n", e.what());
    return 1;
  }
  return usage(2);
}
