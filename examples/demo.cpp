// demo: the three families of language model, trained from scratch on the same text and compared
// side by side: a Kneser-Ney n-gram, an LSTM and a GPT, all over characters.
//
//   demo [--corpus FILE] [--steps 1000] [--threads N] [--seed S]
//
// Without --corpus the text is one the project writes itself (story_corpus.hpp). The last 10% of
// the lines are held out: the table shows each model's perplexity per character on them (the
// n-gram's as KenLM's query counts it, with the line end as a token; the neural models' over
// consecutive 64-character windows, each from an empty context), then a sampled line from each.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <lmkit/models/gpt.hpp>
#include <lmkit/models/lstm_lm.hpp>
#include <lmkit/models/ngram/kneser_ney.hpp>
#include <lmkit/text/char_tokenizer.hpp>
#include <lmkit/text/utf8.hpp>
#include <lmkit/train/adam.hpp>
#include <lmkit/train/schedule.hpp>
#include <lmkit/train/stream_batches.hpp>
#include <lmkit/train/train_step.hpp>
#include <lmkit/train/window_sampler.hpp>

#include "cli_main.hpp"
#include "cli_numbers.hpp"
#include "story_corpus.hpp"

namespace {

using namespace lmkit;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

/// A line as the n-gram sees it: one "word" per character, the space spelled as '_'.
std::string as_char_words(std::string_view line) {
  std::string out;
  for (std::size_t i = 0; i < line.size();) {
    const std::size_t n = text::decode_utf8(line.data() + i).size;
    if (!out.empty()) out += ' ';
    out += line[i] == ' ' ? std::string_view("_") : line.substr(i, n);
    i += n;
  }
  return out;
}

/// The text's non-empty lines (without a Windows '\r'), a line longer than `longest` bytes cut
/// into pieces at spaces (or, in a run without spaces, between characters): the n-gram's sentences
/// and the held-out split need lines, and a file of long paragraphs has few.
std::vector<std::string> split_lines(const std::string& text, std::size_t longest = 240) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string_view rest = line;
    while (rest.size() > longest) {
      std::size_t cut = rest.rfind(' ', longest);
      if (cut == std::string_view::npos || cut == 0) {
        cut = longest;
        while (cut > 0 && (static_cast<unsigned char>(rest[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
        if (cut == 0) cut = longest;
      }
      lines.emplace_back(rest.substr(0, cut));
      rest.remove_prefix(cut);
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    }
    if (!rest.empty()) lines.emplace_back(rest);
  }
  return lines;
}

struct result {
  std::string family;
  std::size_t parameters = 0;
  double seconds = 0, perplexity = 0;
  std::string sample = {};
};

/// Per-character perplexity of a neural model on consecutive windows of the held-out tokens.
template <class Model>
double window_perplexity(Model& model, std::span<const token_id> tokens, std::size_t time, const nn::run_context& ctx) {
  const std::size_t windows = (tokens.size() - 1) / time;
  const nn::run_context eval{ctx.pool, false};
  std::vector<token_id> ids(time), targets(time);
  double total = 0;
  for (std::size_t w = 0; w < windows; ++w) {
    std::copy_n(tokens.begin() + w * time, time, ids.begin());
    std::copy_n(tokens.begin() + w * time + 1, time, targets.begin());
    total += model.forward(ids, targets, {1, time}, eval);
  }
  return std::exp(total / static_cast<double>(windows));
}

/// One line sampled at temperature 0.8: from a newline to the next one (or 100 characters).
template <class Model>
std::string sample_line(Model& model, const text::char_tokenizer& tokenizer, std::size_t context, philox& rng,
                        const nn::run_context& ctx) {
  std::vector<token_id> tokens = tokenizer.encode("\n");
  const token_id newline = tokens[0];
  std::vector<float> p(tokenizer.vocab_size());
  for (int k = 0; k < 100; ++k) {
    const std::size_t window = std::min(tokens.size(), context);
    const nn::const_matrix logits =
        model.logits(std::span<const token_id>(tokens.data() + tokens.size() - window, window), {1, window}, {ctx.pool, false});
    kernels::scale(logits[window - 1].span(), 1.0f / 0.8f, p);
    kernels::softmax(p, p);
    double u = rng.uniform_double();
    token_id next = static_cast<token_id>(p.size() - 1);
    for (std::size_t v = 0; v < p.size(); ++v)
      if ((u -= p[v]) < 0) {
        next = static_cast<token_id>(v);
        break;
      }
    if (next == newline) break;
    tokens.push_back(next);
  }
  return tokenizer.decode(std::span<const token_id>(tokens).subspan(1));
}

int run(int argc, char** argv) {
  std::string corpus_path;
  std::size_t steps = 1000;
  int threads = 0;
  std::uint64_t seed_value = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--corpus" && i + 1 < argc) corpus_path = argv[++i];
    else if (a == "--steps" && i + 1 < argc) steps = cli::whole_number("demo", a, argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = static_cast<int>(cli::whole_number("demo", a, argv[++i]));
    else if (a == "--seed" && i + 1 < argc) seed_value = cli::whole_number("demo", a, argv[++i]);
    else {
      std::fputs("usage: demo [--corpus FILE] [--steps N] [--threads N] [--seed S]\n", stderr);
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  std::string corpus;
  if (corpus_path.empty()) {
    corpus = demo::story_corpus(300'000);
  } else {
    std::ifstream in(corpus_path, std::ios::binary);
    require<io_error>(static_cast<bool>(in), "demo: cannot open ", corpus_path);
    std::ostringstream s;
    s << in.rdbuf();
    corpus = s.str();
  }
  const std::vector<std::string> lines = split_lines(corpus);
  require<argument_error>(lines.size() >= 20, "demo: the corpus needs at least 20 non-empty lines, it has ", lines.size());
  const std::size_t held_out_from = lines.size() * 9 / 10;
  std::string train_text, val_text;
  for (std::size_t i = 0; i < lines.size(); ++i) (i < held_out_from ? train_text : val_text) += lines[i] + "\n";
  const text::char_tokenizer tokenizer = text::char_tokenizer::from_corpus(train_text + val_text);
  const std::vector<token_id> train_tokens = tokenizer.encode(train_text), val_tokens = tokenizer.encode(val_text);
  // The neural models read 64-character windows (+1 for the targets) of both parts.
  require<argument_error>(val_tokens.size() > 65 && train_tokens.size() > 65, "demo: ", corpus_path,
                          ": the held-out tenth of the lines has ", val_tokens.size(),
                          " characters; the models need more than 65 in each part (a longer text)");
  const thread_pool pool(threads);
  const nn::run_context ctx{&pool, true};
  std::printf("corpus: %s, %zu lines (%zu held out), %zu characters, alphabet of %zu; %d threads\n\n",
              corpus_path.empty() ? "generated stories" : corpus_path.c_str(), lines.size(), lines.size() - held_out_from,
              corpus.size(), tokenizer.vocab_size(), pool.threads());
  std::vector<result> results;

  {  // n-gram: interpolated modified Kneser-Ney over characters
    result r{"n-gram, order 6 (Kneser-Ney)"};
    const auto start = clock_type::now();
    ngram::kneser_ney_counter counter(6);
    for (std::size_t i = 0; i < held_out_from; ++i) counter.add_line(as_char_words(lines[i]));
    // A character alphabet is too small for the discounts' estimate at low orders: lmplz's fallback.
    const ngram::ngram_model model =
        ngram::estimate_kneser_ney(std::move(counter), {.discount_fallback = std::array<float, 3>{0.5f, 1.0f, 1.5f}});
    r.seconds = seconds_since(start);
    for (std::size_t n = 1; n <= model.order(); ++n) r.parameters += model.table(n).size();
    ngram::text_score score;
    for (std::size_t i = held_out_from; i < lines.size(); ++i) score += model.score_sentence(as_char_words(lines[i]));
    r.perplexity = score.perplexity();
    philox rng(seed{seed_value});
    std::vector<double> scratch;
    ngram::ngram_state state = model.begin_sentence();
    for (int k = 0; k < 100; ++k) {
      const ngram::word_id next = model.sample_next_word(state, rng.uniform_double(), scratch);
      model.score(state, next);
      if (next == ngram::eos_id) break;
      const std::string& w = model.vocab().word(next);
      r.sample += w == "_" ? " " : w;
    }
    results.push_back(r);
  }

  {  // LSTM: one layer of 128, 16 streams of 64 steps, state carried
    result r{"LSTM, 1 x 128"};
    models::lstm_lm<> model({.vocab = tokenizer.vocab_size(), .embedding = 32, .hidden = 128, .layers = 1});
    model.init(seed{seed_value});
    train::parameter_list params(model);
    train::adam optimizer(params, {.lr = 3e-3f, .decoupled = false});
    train::stream_batches batches(train_tokens, {16, 64});
    model.carry_state(true);
    std::vector<token_id> ids, targets;
    const auto start = clock_type::now();
    for (std::size_t step = 0; step < steps; ++step) {
      if (batches.at_start()) model.reset_state();
      train::train_step(model, optimizer, params, train::constant_schedule{3e-3f}, batches, step, {.clip = 5.0}, ctx, ids,
                        targets);
    }
    r.seconds = seconds_since(start);
    r.parameters = params.element_count();
    model.carry_state(false);
    r.perplexity = window_perplexity(model, val_tokens, 64, ctx);
    philox rng(seed{seed_value});
    r.sample = sample_line(model, tokenizer, 64, rng, ctx);
    results.push_back(r);
  }

  {  // GPT: 2 layers, 4 heads, 64 wide, context 64
    result r{"GPT, 2 layers x 64"};
    models::gpt<> model({.vocab = tokenizer.vocab_size(), .context = 64, .layers = 2, .heads = 4, .dim = 64});
    model.init(seed{seed_value});
    train::parameter_list params(model);
    train::adam optimizer(params, {.lr = 3e-3f, .beta2 = 0.99f, .weight_decay = 0.1f});
    train::window_sampler batches(train_tokens, {16, 64}, philox(seed{seed_value}, 1));
    std::vector<token_id> ids, targets;
    const train::cosine_schedule schedule{.lr = 3e-3f, .min_lr = 3e-4f, .warmup = steps / 20, .decay_steps = steps};
    const auto start = clock_type::now();
    for (std::size_t step = 0; step < steps; ++step)
      train::train_step(model, optimizer, params, schedule, batches, step, {.clip = 1.0}, ctx, ids, targets);
    r.seconds = seconds_since(start);
    r.parameters = params.element_count();
    r.perplexity = window_perplexity(model, val_tokens, 64, ctx);
    philox rng(seed{seed_value});
    r.sample = sample_line(model, tokenizer, 64, rng, ctx);
    results.push_back(r);
  }

  std::printf("%-30s %12s %9s %22s\n", "model", "parameters", "train s", "held-out perplexity");
  for (const result& r : results)
    std::printf("%-30s %12zu %9.1f %22.3f\n", r.family.c_str(), r.parameters, r.seconds, r.perplexity);
  std::printf("\n(the n-gram's parameters are its n-grams; perplexity is per character, 1 would be perfect)\n\nsamples:\n");
  for (const result& r : results) std::printf("  %-30s %s\n", r.family.c_str(), r.sample.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return lmkit::cli::run_tool("demo", run, argc, argv); }
