// generate: text from a checkpoint written by `train`, streamed as it is produced.
//
//   generate --checkpoint model.safetensors [--prompt TEXT] [-n 200] [--temp 0.8] [--seed 1] [--threads N]
//
// Temperature 0 is greedy decoding (always the most likely next character): the same text every
// time. Otherwise each character is drawn from softmax(logits / temperature) with a seeded
// generator. The model sees at most its context; longer text slides the window.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <lmkit/kernels/kernels.hpp>
#include <lmkit/models/gpt.hpp>
#include <lmkit/models/lstm_lm.hpp>
#include <lmkit/text/char_tokenizer.hpp>
#include <lmkit/train/checkpoint.hpp>

namespace {

using namespace lmkit;

int usage(int code) {
  std::fputs(
      "usage: generate --checkpoint FILE [--prompt TEXT] [-n N] [--temp T] [--seed S] [--threads N]\n"
      "  Continues TEXT (default: a newline) by N characters (default 200) with the model in FILE, a checkpoint\n"
      "  written by `train`. --temp 0 is greedy; the default 0.8 samples with seed S (default 1).\n",
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

int run(int argc, char** argv) {
  std::string checkpoint, prompt = "\n";
  std::size_t count = 200;
  float temperature = 0.8f;
  std::uint64_t seed_value = 1;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      require<argument_error>(i + 1 < argc, "generate: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") return usage(0);
    else if (a == "--checkpoint") checkpoint = value();
    else if (a == "--prompt") prompt = value();
    else if (a == "-n") count = std::stoul(value());
    else if (a == "--temp") temperature = std::stof(value());
    else if (a == "--seed") seed_value = std::stoull(value());
    else if (a == "--threads") threads = std::stoi(value());
    else return usage(2);
  }
  if (checkpoint.empty()) return usage(2);
  require<argument_error>(temperature >= 0.0f, "generate: temperature must be >= 0, got ", temperature);

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
