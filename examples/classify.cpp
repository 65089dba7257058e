// classify: sentiment by a language model's judgement, zero-shot and few-shot. For each review the
// model scores the continuations " positive" and " negative" after a prompt
//
//   Decide whether each review is positive or negative.
//
//   Review: <example>            (k worked examples from the other reviews, alternating labels)
//   Sentiment: positive
//
//   Review: <the review>
//   Sentiment:
//
// and the likelier label wins (gen::classify_by_likelihood). Accuracy is reported for k = 0, 1, 4
// (or --shots). The reviews are examples/data/reviews.tsv (40 one-line reviews, label TAB text,
// written for lmkit) unless --data names another file.
//
//   classify --model FILE [--tokenizer FILE] [--data reviews.tsv] [--shots 0,1,4] [--normalise] [--threads N]
//   classify --checkpoint model.safetensors [...]        (a GPT or LSTM written by `train`)
//
// The fixture models (Shakespeare) know nothing of reviews: expect accuracies near chance (50%)
// from them; the program shows the machinery, a model trained on more than plays shows the skill.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <lmkit/gen/language_model.hpp>
#include <lmkit/gen/lm_classifier.hpp>
#include <lmkit/gen/prompt_template.hpp>
#include <lmkit/io/model_tokenizer.hpp>
#include <lmkit/models/gpt.hpp>
#include <lmkit/models/load_decoder.hpp>
#include <lmkit/models/lstm_lm.hpp>
#include <lmkit/text/char_tokenizer.hpp>
#include <lmkit/train/checkpoint.hpp>

#include "cli_main.hpp"
#include "cli_numbers.hpp"

#ifndef LMKIT_EXAMPLES_DATA
#define LMKIT_EXAMPLES_DATA "examples/data"
#endif

namespace {

using namespace lmkit;

int usage(int code) {
  std::fputs(
      "usage: classify --model FILE [--tokenizer FILE] [--data FILE] [--shots 0,1,4] [--normalise] [--threads N]\n"
      "       classify --checkpoint FILE [--data FILE] [--shots 0,1,4] [--normalise] [--threads N]\n"
      "  Chooses ' positive' or ' negative' after a review prompt by the model's log-likelihood of each, with\n"
      "  k worked examples in the prompt (k from --shots), and prints the accuracy for each k.\n"
      "  --model: a pretrained Llama or GPT-2 (GGUF, Hugging Face folder, llama2.c .bin; tokenizer as in\n"
      "  `generate`); --checkpoint: a character-level GPT or LSTM written by `train`. --data: label TAB text\n"
      "  per line (default examples/data/reviews.tsv). --normalise divides each label's log-likelihood by\n"
      "  its token count.\n",
      code == 0 ? stdout : stderr);
  return code;
}

struct review {
  bool positive;
  std::string text;
};

std::vector<review> read_reviews(const std::filesystem::path& path) {
  std::ifstream in(path);
  require<io_error>(in.good(), "classify: cannot read ", path.string());
  std::vector<review> out;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const auto tab = line.find('\t');
    require<format_error>(tab != std::string::npos, path.string(), ":", n, ": expected 'label<TAB>text'");
    const std::string label = line.substr(0, tab);
    require<format_error>(label == "positive" || label == "negative", path.string(), ":", n, ": label '", label,
                          "' is neither positive nor negative");
    out.push_back({label == "positive", line.substr(tab + 1)});
  }
  require<format_error>(out.size() >= 6, path.string(), ": ", out.size(), " reviews; at least 6 are needed");
  return out;
}

/// Accuracy with k examples per prompt, for each k.
template <gen::language_model M>
void evaluate(M& model, const gen::tokenize_fn& encode, const std::vector<review>& reviews,
              const std::vector<std::size_t>& shots, bool normalise) {
  const std::vector<std::string> labels = {" positive", " negative"};
  std::printf("%zu reviews (%zu positive)%s\n", reviews.size(),
              std::size_t(std::count_if(reviews.begin(), reviews.end(), [](const review& r) { return r.positive; })),
              normalise ? ", length-normalised scores" : "");
  for (const std::size_t k : shots) {
    std::size_t right = 0, said_positive = 0;
    try {
      for (std::size_t q = 0; q < reviews.size(); ++q) {
        gen::few_shot_prompt prompt{.instruction = "Decide whether each review is positive or negative."};
        // k examples from the other reviews, alternating positive and negative, in a fixed order
        for (std::size_t i = 1, want_positive = 1; prompt.examples.size() < k && i < reviews.size(); ++i) {
          const review& e = reviews[(q + i) % reviews.size()];
          if (e.positive != bool(want_positive)) continue;
          prompt.examples.push_back({e.text, e.positive ? "positive" : "negative"});
          want_positive ^= 1;
        }
        const auto r = gen::classify_by_likelihood(model, encode, prompt.render(reviews[q].text), labels, normalise);
        said_positive += r.best == 0;
        right += (r.best == 0) == reviews[q].positive;
      }
    } catch (const argument_error& e) {  // a prompt longer than the model's context
      std::printf("k = %zu: not run: %s\n", k, e.what());
      continue;
    }
    std::printf("k = %zu: accuracy %.1f%% (%zu / %zu), said positive %zu times\n", k,
                100.0 * double(right) / double(reviews.size()), right, reviews.size(), said_positive);
    std::fflush(stdout);
  }
}

int run(int argc, char** argv) {
  std::string model_path, checkpoint, tokenizer_path, data = std::string(LMKIT_EXAMPLES_DATA) + "/reviews.tsv";
  std::vector<std::size_t> shots = {0, 1, 4};
  bool normalise = false;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      require<argument_error>(i + 1 < argc, "classify: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") return usage(0);
    else if (a == "--model") model_path = value();
    else if (a == "--checkpoint") checkpoint = value();
    else if (a == "--tokenizer") tokenizer_path = value();
    else if (a == "--data") data = value();
    else if (a == "--normalise") normalise = true;
    else if (a == "--threads") threads = static_cast<int>(cli::whole_number("classify", a, value()));
    else if (a == "--shots") {
      shots.clear();
      std::stringstream list(value());
      for (std::string k; std::getline(list, k, ',');) shots.push_back(cli::whole_number("classify", "--shots", k));
    } else return usage(2);
  }
  if (model_path.empty() == checkpoint.empty()) return usage(2);
  const auto reviews = read_reviews(data);
  const thread_pool pool(threads);

  if (!model_path.empty()) {
    const models::decoder model = models::load_decoder(model_path);
    const text::any_tokenizer tokenizer = io::tokenizer_for_model(model_path, tokenizer_path);
    const gen::tokenize_fn encode = [&](std::string_view text) { return io::encode_prompt(tokenizer, text); };
    std::printf("model %s\n", model.source().c_str());
    gen::decoder_lm lm(model, 0, pool);
    evaluate(lm, encode, reviews, shots, normalise);
    return 0;
  }
  const auto metadata = train::checkpoint_metadata(checkpoint);
  const auto alphabet = metadata.find("tokenizer.alphabet");
  require<format_error>(alphabet != metadata.end(), "classify: ", checkpoint, " has no tokenizer.alphabet");
  const text::char_tokenizer tokenizer = text::char_tokenizer::from_alphabet(alphabet->second);
  // Characters outside the model's alphabet cannot be fed: they are dropped from the text.
  const gen::tokenize_fn encode = [&](std::string_view text) {
    std::string kept;
    for (const char c : text)
      if (tokenizer.alphabet().find(c) != std::string::npos) kept += c;
    return tokenizer.encode(kept);
  };
  std::printf("checkpoint %s\n", checkpoint.c_str());
  if (metadata.contains("lstm_lm.hidden")) {
    models::lstm_lm<> model(models::lstm_lm_config_from_metadata(metadata));
    train::load_parameters(checkpoint, train::parameter_list(model));
    gen::lstm_lm_adapter lm(model, pool);
    evaluate(lm, encode, reviews, shots, normalise);
  } else {
    models::gpt<> model(models::gpt_config_from_metadata(metadata));
    train::load_parameters(checkpoint, train::parameter_list(model));
    gen::gpt_lm lm(model, pool);
    evaluate(lm, encode, reviews, shots, normalise);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return lmkit::cli::run_tool("classify", run, argc, argv); }
