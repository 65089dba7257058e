// generate: text from a model, streamed as it is produced.
//
//   generate --model FILE [--tokenizer FILE] --prompt TEXT [-n N] [--temp T] [--seed S] [--threads N] [--bench]
//   generate --checkpoint model.safetensors [--prompt TEXT] [-n 200] [--temp 0.8] [--seed 1] [--threads N]
//
// --model runs a pretrained decoder (Llama or GPT-2 family) from a GGUF file, a Hugging Face folder
// (config.json + safetensors) or a llama2.c checkpoint; --checkpoint a model written by `train`.
// Temperature 0 is greedy decoding (always the most likely next character): the same text every
// time. Otherwise each character is drawn from softmax(logits / temperature) with a seeded
// generator. The model sees at most its context; longer text slides the window.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <chrono>
#include <filesystem>
#include <variant>

#include <lmkit/io/gguf_tokenizer.hpp>
#include <lmkit/io/gpt2_bpe.hpp>
#include <lmkit/io/hf_tokenizer.hpp>
#include <lmkit/io/llama2c_tokenizer.hpp>
#include <lmkit/io/sentencepiece_model.hpp>
#include <lmkit/kernels/kernels.hpp>
#include <lmkit/models/load_decoder.hpp>
#include <lmkit/models/gpt.hpp>
#include <lmkit/models/lstm_lm.hpp>
#include <lmkit/text/char_tokenizer.hpp>
#include <lmkit/train/checkpoint.hpp>

namespace {

using namespace lmkit;

int usage(int code) {
  std::fputs(
      "usage: generate --model FILE [--tokenizer FILE] --prompt TEXT [-n N] [--temp T] [--seed S] [--threads N]\n"
      "                [--context N] [--ignore-eos] [--bench]\n"
      "       generate --checkpoint FILE [--prompt TEXT] [-n N] [--temp T] [--seed S] [--threads N]\n"
      "  --model: a pretrained Llama or GPT-2 (GGUF, Hugging Face folder or safetensors, llama2.c .bin);\n"
      "    the tokenizer comes from the GGUF file, the folder (tokenizer.json, tokenizer.model, encoder.json +\n"
      "    vocab.bpe) or tokenizer.bin beside a llama2.c file, unless --tokenizer names one. Continues TEXT by\n"
      "    N tokens (default 128), stopping at the end-of-text token unless --ignore-eos. --bench prints the\n"
      "    prompt's and the decoding's tokens/s on stderr.\n"
      "  --checkpoint: a model written by `train`; N characters (default 200).\n"
      "  --temp 0 is greedy (the same text every time); the default 0.8 samples with seed S (default 1).\n",
      code == 0 ? stdout : stderr);
  return code;
}

/// The next token: the first most likely one at temperature 0, else a draw from softmax(logits / t).
token_id pick(std::span<const float> logits, float temperature, philox& rng, std::vector<float>& scratch) {
  if (temperature <= 0.0f) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i)
      if (logits[i] > logits[best]) best = i;
    return static_cast<token_id>(best);
  }
  scratch.resize(logits.size());
  kernels::scale(logits, 1.0f / temperature, scratch);
  kernels::softmax(scratch, scratch);
  double u = rng.uniform_double(), cumulative = 0.0;
  for (std::size_t i = 0; i < scratch.size(); ++i) {
    cumulative += scratch[i];
    if (u < cumulative) return static_cast<token_id>(i);
  }
  return static_cast<token_id>(scratch.size() - 1);  // rounding left u above the last sum
}

/// The tokenizer that goes with a pretrained model: named, inside the GGUF file, or beside the model.
text::any_tokenizer find_tokenizer(const std::filesystem::path& model, const std::string& named) {
  namespace fs = std::filesystem;
  auto read = [](const fs::path& p) -> text::any_tokenizer {
    const std::string name = p.filename().string();
    if (p.extension() == ".json" && name != "encoder.json") return io::read_hf_tokenizer(p);
    if (name == "encoder.json") return io::read_gpt2_bpe(p, p.parent_path() / "vocab.bpe");
    if (p.extension() == ".model") return io::read_sentencepiece_model(p);
    if (p.extension() == ".gguf") return io::tokenizer_from_gguf(io::gguf_file(p));
    return io::read_llama2c_tokenizer(p);
  };
  if (!named.empty()) return read(named);
  if (models::detect_model_format(model) == models::model_format::gguf) return read(model);
  const fs::path folder = fs::is_directory(model) ? model : model.parent_path();
  for (const char* candidate : {"tokenizer.json", "tokenizer.model", "encoder.json", "tokenizer.bin"})
    if (fs::exists(folder / candidate)) return read(folder / candidate);
  throw argument_error(detail::concat("generate: no tokenizer found beside ", model.string(), "; name one with --tokenizer"));
}

struct options {
  std::string checkpoint, model, tokenizer, prompt;
  std::size_t count = 0, context = 0;
  float temperature = 0.8f;
  std::uint64_t seed = 1;
  int threads = 1;
  bool bench = false, ignore_eos = false;
};

/// A pretrained decoder: the prompt in one pass, then one token at a time against the KV cache.
int run_decoder(const options& o) {
  using clock = std::chrono::steady_clock;
  const thread_pool pool(o.threads);
  const models::decoder model = models::load_decoder(o.model);
  const text::any_tokenizer tokenizer = find_tokenizer(o.model, o.tokenizer);
  const std::size_t count = o.count ? o.count : 128;
  // Llama's SentencePiece prompts start with BOS; GPT-2's byte-level BPE prompts do not.
  std::vector<token_id> prompt = std::visit(
      [&](const auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, text::sentencepiece_tokenizer>)
          return t.encode(o.prompt, {.add_bos = t.bos_id().has_value()});
        else
          return t.encode(o.prompt);
      },
      tokenizer);
  require<argument_error>(!prompt.empty(), "generate: the prompt is empty");
  const std::optional<token_id> eos = std::visit(
      [](const auto& t) -> std::optional<token_id> {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, text::sentencepiece_tokenizer>) return t.eos_id();
        else return t.special_id("<|endoftext|>");
      },
      tokenizer);
  const std::size_t context = o.context ? o.context : std::min(model.config().context, prompt.size() + count);
  require<argument_error>(prompt.size() <= context, "generate: the prompt's ", prompt.size(),
                          " tokens do not fit a context of ", context, " (the model's is ", model.config().context, ")");
  models::decoder_session session(model, context, pool);

  philox rng(seed{o.seed});
  std::vector<float> scratch;
  // Text is printed as the difference between decodings of everything so far: a piece's bytes may
  // complete a character only with the next piece, and SentencePiece drops the first space.
  std::vector<token_id> shown(prompt.begin(), prompt.end());
  auto decode = [&] { return std::visit([&](const auto& t) { return t.decode(shown); }, tokenizer); };
  std::string printed = decode();
  std::fputs(printed.c_str(), stdout);
  std::fflush(stdout);

  const auto t0 = clock::now();
  std::span<const float> logits = session.append(prompt);
  const auto t1 = clock::now();
  std::size_t generated = 0;
  for (; generated < count && session.position() < context; ++generated) {
    const token_id next = pick(logits, o.temperature, rng, scratch);
    if (eos && next == *eos && !o.ignore_eos) break;
    shown.push_back(next);
    const std::string text = decode();
    if (text.size() > printed.size() && text.starts_with(printed)) std::fputs(text.c_str() + printed.size(), stdout);
    printed = text;
    std::fflush(stdout);
    if (generated + 1 < count && session.position() < context) logits = session.append(next);
  }
  const auto t2 = clock::now();
  std::fputs("\n", stdout);
  if (o.bench) {
    const double prompt_s = std::chrono::duration<double>(t1 - t0).count();
    const double decode_s = std::chrono::duration<double>(t2 - t1).count();
    const std::size_t steps = generated > 0 ? generated - 1 : 0;  // tokens run through the model after the prompt
    std::fprintf(stderr, "generate: %s, %zu threads, %s\n", model.source().c_str(), std::size_t(pool.threads()),
                 kernels::active_target());
    std::fprintf(stderr, "prompt: %zu tokens in %.3f s = %.1f tok/s\n", prompt.size(), prompt_s,
                 prompt.size() / prompt_s);
    std::fprintf(stderr, "decode: %zu tokens in %.3f s = %.1f tok/s (%.1f GB/s of weights)\n", steps, decode_s,
                 steps / decode_s, steps * double(model.weights().decode_bytes()) / decode_s / 1e9);
  }
  return 0;
}

int run(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      require<argument_error>(i + 1 < argc, "generate: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") return usage(0);
    else if (a == "--checkpoint") o.checkpoint = value();
    else if (a == "--model") o.model = value();
    else if (a == "--tokenizer") o.tokenizer = value();
    else if (a == "--prompt") o.prompt = value();
    else if (a == "-n") o.count = std::stoul(value());
    else if (a == "--context") o.context = std::stoul(value());
    else if (a == "--temp") o.temperature = std::stof(value());
    else if (a == "--seed") o.seed = std::stoull(value());
    else if (a == "--threads") o.threads = std::stoi(value());
    else if (a == "--bench") o.bench = true;
    else if (a == "--ignore-eos") o.ignore_eos = true;
    else return usage(2);
  }
  require<argument_error>(o.temperature >= 0.0f, "generate: temperature must be >= 0, got ", o.temperature);
  if (!o.model.empty()) return run_decoder(o);
  if (o.checkpoint.empty()) return usage(2);
  const std::string checkpoint = o.checkpoint;
  const std::string prompt = o.prompt.empty() ? "\n" : o.prompt;
  const std::size_t count = o.count ? o.count : 200;
  const float temperature = o.temperature;
  const std::uint64_t seed_value = o.seed;
  const int threads = o.threads;

  const auto metadata = train::checkpoint_metadata(checkpoint);
  const auto alphabet = metadata.find("tokenizer.alphabet");
  require<format_error>(alphabet != metadata.end(), "generate: ", checkpoint, " has no tokenizer.alphabet");
  const text::char_tokenizer tokenizer = text::char_tokenizer::from_alphabet(alphabet->second);
  std::vector<token_id> tokens = tokenizer.encode(prompt);
  require<argument_error>(!tokens.empty(), "generate: the prompt is empty");
  const thread_pool pool(threads);
  const nn::run_context ctx{&pool, false};
  philox rng(seed{seed_value});
  std::vector<float> scratch;
  std::fputs(prompt.c_str(), stdout);
  auto emit = [&](token_id next) {
    tokens.push_back(next);
    const token_id one[] = {next};
    std::fputs(tokenizer.decode(one).c_str(), stdout);
    std::fflush(stdout);
  };

  if (metadata.contains("lstm_lm.hidden")) {
    // A recurrent model reads the prompt once, then one character at a time from its carried state.
    models::lstm_lm<> model(models::lstm_lm_config_from_metadata(metadata));
    require<format_error>(model.config().vocab == tokenizer.vocab_size(), "generate: ", checkpoint,
                          ": the alphabet and the model's vocabulary differ");
    train::load_parameters(checkpoint, train::parameter_list(model));
    model.carry_state(true);
    nn::const_matrix logits = model.logits(tokens, {1, tokens.size()}, ctx);
    std::size_t last = tokens.size() - 1;
    for (std::size_t k = 0; k < count; ++k) {
      emit(pick(logits[last].span(), temperature, rng, scratch));
      logits = model.logits(std::span<const token_id>(&tokens.back(), 1), {1, 1}, ctx);
      last = 0;
    }
  } else {
    models::gpt<> model(models::gpt_config_from_metadata(metadata));
    require<format_error>(model.config().vocab == tokenizer.vocab_size(), "generate: ", checkpoint,
                          ": the alphabet and the model's vocabulary differ");
    train::load_parameters(checkpoint, train::parameter_list(model));
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t window = std::min(tokens.size(), model.config().context);
      const std::span<const token_id> input(tokens.data() + tokens.size() - window, window);
      const nn::const_matrix logits = model.logits(input, {1, window}, ctx);
      emit(pick(logits[window - 1].span(), temperature, rng, scratch));
    }
  }
  std::fputs("\n", stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "generate: %s\n", e.what());
    return 1;
  }
}
