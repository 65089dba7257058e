// generate: text from a model, streamed as it is produced.
//
//   generate --model FILE [--tokenizer FILE] --prompt TEXT [-n N] [sampling options] [--stop STRING]...
//            [--logprobs N] [--html FILE] [--seed S] [--threads N] [--context N] [--ignore-eos] [--bench]
//   generate --checkpoint model.safetensors [--prompt TEXT] [-n 200] [sampling options] [--stop STRING]...
//            [--seed 1] [--threads N]
//
// --model runs a pretrained decoder (Llama or GPT-2 family) from a GGUF file, a Hugging Face folder
// (config.json + safetensors) or a llama2.c checkpoint; --checkpoint a model written by `train`.
// --model goes through gen::generate with the sampler chain of gen::sampler_config (llama.cpp's
// option names); --logprobs N prints each token's log-probability and the N most likely
// alternatives (the model's raw distribution, before the sampler chain); --html FILE writes a
// self-contained page with the tokens coloured by probability (written atomically).
// --checkpoint goes through the same gen::generate and sampler chain, a character at a time; the
// GPT sees at most its context (longer text slides the window), the LSTM carries its state.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <chrono>
#include <filesystem>
#include <map>
#include <type_traits>
#include <variant>

#include <lmkit/core/atomic_file.hpp>
#include <lmkit/gen/generate.hpp>
#include <lmkit/gen/language_model.hpp>
#include <lmkit/gen/logprobs.hpp>
#include <lmkit/gen/sampler_config.hpp>
#include <lmkit/io/model_tokenizer.hpp>
#include <lmkit/kernels/kernels.hpp>
#include <lmkit/models/load_decoder.hpp>
#include <lmkit/models/gpt.hpp>
#include <lmkit/models/lstm_lm.hpp>
#include <lmkit/text/char_tokenizer.hpp>
#include <lmkit/train/checkpoint.hpp>

#include "cli_main.hpp"
#include "cli_numbers.hpp"

namespace {

using namespace lmkit;

int usage(int code) {
  std::fputs(
      "usage: generate --model FILE [--tokenizer FILE] --prompt TEXT [-n N] [--temp T] [--seed S] [--threads N]\n"
      "                [--top-k K] [--top-p P] [--min-p P] [--typical P] [--repeat-penalty R] [--repeat-last-n N]\n"
      "                [--frequency-penalty F] [--presence-penalty P] [--stop STRING]... [--logprobs N] [--html FILE]\n"
      "                [--attention N]\n"
      "                [--context N] [--ignore-eos] [--bench]\n"
      "       generate --checkpoint FILE [--tokenizer FILE] [--prompt TEXT] [-n N] [sampling options]\n"
      "                [--stop STRING]... [--seed S] [--threads N]\n"
      "  --model: a pretrained Llama or GPT-2 (GGUF, Hugging Face folder or safetensors, llama2.c .bin);\n"
      "    the tokenizer comes from the GGUF file, the folder (tokenizer.json, tokenizer.model, encoder.json +\n"
      "    vocab.bpe) or tokenizer.bin beside a llama2.c file, unless --tokenizer names one. Continues TEXT by\n"
      "    N tokens (default 128), stopping at the end-of-text token unless --ignore-eos. --bench prints the\n"
      "    prompt's and the decoding's tokens/s on stderr. Sampling options as llama.cpp's (off unless given;\n"
      "    --repeat-last-n 64, -1 = whole history); the chain runs penalties, top-k, typical, top-p, min-p,\n"
      "    temperature. --stop ends the text before STRING (repeatable). --logprobs N prints each token's\n"
      "    logprob and the N most likely alternatives (raw model distribution, before sampling); --html FILE\n"
      "    writes a page of the tokens coloured by probability, alternatives on hover. --attention N prints,\n"
      "    for each generated token, the N earlier tokens most attended to (mean over layers and heads).\n"
      "    The prompt + N tokens\n"
      "    must fit the context (the model's, or --context): otherwise an error says by how much.\n"
      "  --checkpoint: a model written by `train`; N tokens (default 200), the same sampling options. A model\n"
      "    fine-tuned from a Hugging Face folder uses the tokenizer `train --save` copied beside it (CHECKPOINT.tokenizer,\n"
      "    which moves with it; or --tokenizer FILE); a character-level model carries its alphabet.\n"
      "  --temp 0 is greedy (the same text every time); the default 0.8 samples with seed S (default 1).\n",
      code == 0 ? stdout : stderr);
  return code;
}

struct options {
  std::string checkpoint, model, tokenizer, prompt, html;
  std::size_t count = 0, context = 0, logprobs = 0, attention = 0;
  gen::sampler_config sampler{.temperature = 0.8f};
  std::vector<std::string> stop;
  std::uint64_t seed = 1;
  int threads = 1;
  bool bench = false, ignore_eos = false;
};

/// A pretrained decoder through gen::generate: the sampler chain from the options, text streamed as
/// it becomes whole, stop at EOS or a stop string; per-token logprobs and an HTML view on request.
int run_decoder(const options& o) {
  using clock = std::chrono::steady_clock;
  const thread_pool pool(o.threads);
  const models::decoder model = models::load_decoder(o.model);
  const text::any_tokenizer tokenizer = io::tokenizer_for_model(o.model, o.tokenizer);
  const std::size_t count = o.count ? o.count : 128;
  const std::vector<token_id> prompt = io::encode_prompt(tokenizer, o.prompt);
  require<argument_error>(!prompt.empty(), "generate: the prompt is empty");
  const std::optional<token_id> eos = io::end_of_text(tokenizer);
  // The session holds what the run needs (or --context); more than the model's is an error that says so.
  const std::size_t context = o.context ? o.context : std::min(model.config().context, prompt.size() + count);
  gen::decoder_lm lm(model, context, pool);
  gen::dynamic_chain chain = gen::make_chain(o.sampler);
  const gen::detokenizer decode = gen::decoder_of(tokenizer);

  const std::string prompt_text = decode(prompt);
  std::fputs(prompt_text.c_str(), stdout);
  std::fflush(stdout);

  double prompt_s = 0.0;
  if (o.bench) {  // the prompt alone once, for its speed (generate runs it again)
    const auto t0 = clock::now();
    lm.append(prompt);
    prompt_s = std::chrono::duration<double>(clock::now() - t0).count();
  }
  philox rng(seed{o.seed});
  gen::generate_options g{.max_tokens = count,
                          .stop_strings = o.stop,
                          .logprobs = o.logprobs,
                          .record_logprobs = !o.html.empty(),
                          .decode = decode,
                          .on_text = [](std::string_view piece) {
                            std::fwrite(piece.data(), 1, piece.size(), stdout);
                            std::fflush(stdout);
                          }};
  if (eos && !o.ignore_eos) g.stop_tokens.push_back(*eos);
  const auto t1 = clock::now();
  const gen::generation out = gen::generate(lm, prompt, chain, rng, g);
  const auto t2 = clock::now();
  std::fputs("\n", stdout);

  if (o.logprobs > 0) {
    // token, its probability and logprob, then the alternatives (raw model distribution, before sampling)
    std::printf("\n--- logprobs (log_softmax of the model's logits, before the sampler chain) ---\n");
    auto shown = [&](token_id id) {
      std::string t = decode(std::span<const token_id>(&id, 1)), v;
      for (const char c : t) v += c == '\n' ? std::string("\\n") : std::string(1, c);
      return "'" + v + "'";
    };
    for (std::size_t i = 0; i < out.logprobs.size(); ++i) {
      const auto& lp = out.logprobs[i];
      std::printf("%4zu %-16s %8.4f (p %.4f) |", i, shown(lp.token).c_str(), lp.logprob, std::exp(lp.logprob));
      for (const auto& [id, l] : lp.top) std::printf(" %s %.4f", shown(id).c_str(), l);
      std::printf("\n");
    }
  }
  if (o.attention > 0 && !out.tokens.empty()) {
    // The sequence again, one token at a time with the weights recorded: for each generated token,
    // the earlier tokens the query that chose it attended to most (mean over layers and heads).
    std::printf("\n--- attention (mean over %zu layers x %zu heads of the position that chose each token) ---\n",
                model.config().layers, model.config().heads);
    models::decoder_session replay(model, context, pool);
    replay.record_attention(true);
    std::vector<token_id> all(prompt.begin(), prompt.end());
    all.insert(all.end(), out.tokens.begin(), out.tokens.end());
    auto shown = [&](token_id id) {
      std::string t = decode(std::span<const token_id>(&id, 1)), v;
      for (const char c : t) v += c == '\n' ? std::string("\\n") : std::string(1, c);
      return "'" + v + "'";
    };
    replay.append(std::span<const token_id>(all).first(prompt.size()));
    for (std::size_t i = 0; i < out.tokens.size(); ++i) {
      if (i > 0) replay.append(all[prompt.size() + i - 1]);
      const std::size_t n = replay.position();
      std::vector<double> mean(n, 0.0);
      for (std::size_t l = 0; l < model.config().layers; ++l)
        for (std::size_t h = 0; h < model.config().heads; ++h) {
          const auto w = replay.attention_weights(l, h);
          for (std::size_t j = 0; j < n; ++j) mean[j] += w[j];
        }
      std::vector<std::size_t> order(n);
      for (std::size_t j = 0; j < n; ++j) order[j] = j;
      const std::size_t top = std::min(o.attention, n);
      std::partial_sort(order.begin(), order.begin() + top, order.end(),
                        [&](std::size_t a, std::size_t b) { return mean[a] > mean[b]; });
      const double total = double(model.config().layers * model.config().heads);
      std::printf("%4zu %-16s <-", i, shown(out.tokens[i]).c_str());
      for (std::size_t r = 0; r < top; ++r)
        std::printf(" %s@%zu %.3f", shown(all[order[r]]).c_str(), order[r], mean[order[r]] / total);
      std::printf("\n");
    }
  }
  if (!o.html.empty()) {
    const auto pieces = gen::token_pieces(decode, prompt, out.tokens);
    write_file_atomically(o.html, gen::logprobs_html(prompt_text, out.logprobs, pieces, decode,
                                                     "lmkit generate: " + model.source()));
    std::fprintf(stderr, "generate: wrote %s\n", o.html.c_str());
  }
  if (o.bench) {
    const double total_s = std::chrono::duration<double>(t2 - t1).count();
    const double decode_s = std::max(1e-9, total_s - prompt_s);
    const std::size_t steps = out.tokens.size() > 0 ? out.tokens.size() - 1 : 0;  // tokens run after the prompt
    std::fprintf(stderr, "generate: %s, %zu threads, %s; stopped by %s\n", model.source().c_str(),
                 std::size_t(pool.threads()), kernels::active_target(), gen::to_string(out.reason));
    std::fprintf(stderr, "prompt: %zu tokens in %.3f s = %.1f tok/s\n", prompt.size(), prompt_s, prompt.size() / prompt_s);
    std::fprintf(stderr, "decode: %zu tokens in %.3f s = %.1f tok/s (%.1f GB/s of weights)\n", steps, decode_s,
                 steps / decode_s, steps * double(model.weights().decode_bytes()) / decode_s / 1e9);
  }
  return 0;
}

/// A model written by `train` (a character GPT or LSTM, or a GPT fine-tuned from a Hugging Face
/// folder, whose tokenizer it uses) through gen::generate with the same sampler chain as --model;
/// the GPT, which has no KV cache, slides over its context when it is full.
template <class Tokenizer>
int run_checkpoint_with(const options& o, const std::map<std::string, std::string, std::less<>>& metadata,
                        const Tokenizer& tokenizer) {
  const std::string& checkpoint = o.checkpoint;
  constexpr bool characters = std::is_same_v<Tokenizer, text::char_tokenizer>;
  const std::string text = o.prompt.empty() ? "\n" : o.prompt;
  std::vector<token_id> prompt;
  if constexpr (characters) prompt = tokenizer.encode(text);
  else prompt = io::encode_prompt(tokenizer, text);
  require<argument_error>(!prompt.empty(), "generate: the prompt is empty");
  const thread_pool pool(o.threads);
  gen::dynamic_chain chain = gen::make_chain(o.sampler);
  philox rng(seed{o.seed});
  gen::generate_options g{.max_tokens = o.count ? o.count : 200,
                          .stop_strings = o.stop,
                          .decode = gen::decoder_of(tokenizer),
                          .on_text = [](std::string_view piece) {
                            std::fwrite(piece.data(), 1, piece.size(), stdout);
                            std::fflush(stdout);
                          }};
  std::fputs(g.decode(prompt).c_str(), stdout);
  auto check_vocab = [&](std::size_t vocab) {
    if constexpr (characters)
      require<format_error>(vocab == tokenizer.vocab_size(), "generate: ", checkpoint,
                            ": the alphabet and the model's vocabulary differ");
  };
  if (metadata.contains("lstm_lm.hidden")) {
    models::lstm_lm<> model(models::lstm_lm_config_from_metadata(metadata));
    check_vocab(model.config().vocab);
    train::load_parameters(checkpoint, train::parameter_list(model));
    gen::lstm_lm_adapter lm(model, pool);  // reads the prompt once, then a character at a time
    gen::generate(lm, prompt, chain, rng, g);
  } else {
    models::gpt<> model(models::gpt_config_from_metadata(metadata));
    check_vocab(model.config().vocab);
    train::load_parameters(checkpoint, train::parameter_list(model));
    gen::gpt_lm lm(model, pool);
    g.on_full_context = gen::context_policy::sliding_window;
    g.window = model.config().context - 1;  // the model sees the last context - 1 tokens
    gen::generate(lm, prompt, chain, rng, g);
  }
  std::fputs("\n", stdout);
  return 0;
}

int run_checkpoint(const options& o) {
  const auto metadata = train::checkpoint_metadata(o.checkpoint);
  if (const auto named = metadata.find("tokenizer.folder"); named != metadata.end()) {
    // Relative: the folder `train --save` wrote beside the checkpoint, which moves with it. Absolute
    // (a checkpoint written before train copied the tokenizer): where the model came from.
    std::filesystem::path folder = named->second;
    if (folder.is_relative()) folder = std::filesystem::path(o.checkpoint).parent_path() / folder;
    require<argument_error>(!o.tokenizer.empty() || std::filesystem::is_directory(folder), "generate: ", o.checkpoint,
                            " takes its tokenizer from ", folder.string(),
                            " (its tokenizer.folder), which is not a folder here; name its tokenizer with --tokenizer");
    return run_checkpoint_with(o, metadata, io::tokenizer_for_model(folder.string(), o.tokenizer));
  }
  require<argument_error>(o.tokenizer.empty(), "generate: ", o.checkpoint,
                          " is a character-level model (it carries its alphabet); --tokenizer does not apply");
  const auto alphabet = metadata.find("tokenizer.alphabet");
  require<format_error>(alphabet != metadata.end(), "generate: ", o.checkpoint,
                        " has neither tokenizer.alphabet nor tokenizer.folder");
  return run_checkpoint_with(o, metadata, text::char_tokenizer::from_alphabet(alphabet->second));
}

int run(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      require<argument_error>(i + 1 < argc, "generate: ", a, " needs a value");
      return argv[++i];
    };
    auto whole = [&] { return cli::whole_number("generate", a, value()); };
    auto number = [&] { return cli::finite_number("generate", a, value()); };
    if (a == "-h" || a == "--help") return usage(0);
    else if (a == "--checkpoint") o.checkpoint = value();
    else if (a == "--model") o.model = value();
    else if (a == "--tokenizer") o.tokenizer = value();
    else if (a == "--prompt") o.prompt = value();
    else if (a == "-n") o.count = whole();
    else if (a == "--context") o.context = whole();
    else if (a == "--temp") o.sampler.temperature = number();
    else if (a == "--top-k") o.sampler.top_k = whole();
    else if (a == "--top-p") o.sampler.top_p = number();
    else if (a == "--min-p") o.sampler.min_p = number();
    else if (a == "--typical") o.sampler.typical_p = number();
    else if (a == "--repeat-penalty") o.sampler.repeat_penalty = number();
    else if (a == "--repeat-last-n") {
      if (i + 1 < argc && std::string_view(argv[i + 1]) == "-1") {  // llama.cpp's "the whole history"
        ++i;
        o.sampler.penalty_last_n = gen::whole_history;
      } else {
        o.sampler.penalty_last_n = whole();
      }
    }
    else if (a == "--frequency-penalty") o.sampler.frequency_penalty = number();
    else if (a == "--presence-penalty") o.sampler.presence_penalty = number();
    else if (a == "--stop") o.stop.push_back(value());
    else if (a == "--logprobs") o.logprobs = whole();
    else if (a == "--html") o.html = value();
    else if (a == "--attention") o.attention = whole();
    else if (a == "--seed") o.seed = whole();
    else if (a == "--threads") o.threads = static_cast<int>(whole());
    else if (a == "--bench") o.bench = true;
    else if (a == "--ignore-eos") o.ignore_eos = true;
    else return usage(2);
  }
  require<argument_error>(o.sampler.temperature >= 0.0f, "temperature must be >= 0, got ", o.sampler.temperature);
  if (!o.model.empty()) return run_decoder(o);
  if (o.checkpoint.empty()) return usage(2);
  return run_checkpoint(o);
}

}  // namespace

int main(int argc, char** argv) { return lmkit::cli::run_tool("generate", run, argc, argv); }
