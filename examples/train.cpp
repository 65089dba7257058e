// train: a character-level language model trained from scratch on a text file, on the CPU.
//
//   train --data input.txt [--family gpt] [--steps 2000] [--threads 2] [--curve run] [--save model.safetensors]
//   train --data input.txt --resume model.safetensors [--steps 4000] ...      continues bit for bit
//
// The defaults are nanoGPT's Shakespeare CPU configuration (4 layers, 4 heads, 128 wide, context
// 64, batch 12, AdamW 1e-3 cosine to 1e-4 after 100 warm-up steps, weight decay 0.1, betas
// 0.9/0.99, clipping at 1.0, no dropout, no biases, tied embeddings). The first 90% of the text
// trains, the last 10% validates. A progress line shows loss, tokens/s and the ETA; --curve PREFIX
// writes PREFIX.csv and PREFIX.svg.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <lmkit/core/progress.hpp>
#include <lmkit/models/gpt.hpp>
#include <lmkit/text/char_tokenizer.hpp>
#include <lmkit/train/adam.hpp>
#include <lmkit/train/checkpoint.hpp>
#include <lmkit/train/loss_curve.hpp>
#include <lmkit/train/parameter_list.hpp>
#include <lmkit/train/schedule.hpp>
#include <lmkit/train/train_step.hpp>
#include <lmkit/train/window_sampler.hpp>

namespace {

using namespace lmkit;

struct options {
  std::string data;
  std::string family = "gpt";
  std::size_t steps = 2000, batch = 12, context = 64, layers = 4, heads = 4, dim = 128;
  float lr = 1e-3f, min_lr = 1e-4f, weight_decay = 0.1f, beta1 = 0.9f, beta2 = 0.99f, clip = 1.0f;
  std::size_t warmup = 100, accumulation = 1;
  int threads = 0;
  std::uint64_t seed = 1337;
  std::size_t eval_every = 250, eval_batches = 20, final_eval_batches = 200;
  std::string curve, save, resume;
  std::size_t save_every = 0;
};

int usage(int code) {
  std::fputs(
      "usage: train --data FILE [--family gpt] [--steps N] [--batch B] [--context T] [--layers L] [--heads H]\n"
      "             [--dim C] [--lr X] [--min-lr X] [--warmup N] [--weight-decay X] [--beta2 X] [--clip X]\n"
      "             [--threads N] [--seed S] [--eval-every N] [--eval-batches N] [--final-eval-batches N]\n"
      "             [--accumulate N] [--curve PREFIX] [--save CHECKPOINT [--save-every N]] [--resume CHECKPOINT]\n"
      "  Trains a character-level model on FILE (first 90% train, last 10% validation). Defaults: nanoGPT's\n"
      "  Shakespeare CPU configuration. --threads 0 uses every core. --save writes a safetensors checkpoint\n"
      "  (weights, optimizer state, step, data position) at the end and every N steps; --resume continues\n"
      "  one to --steps, giving the same numbers as a run that was never stopped.\n",
      code == 0 ? stdout : stderr);
  return code;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require<io_error>(static_cast<bool>(in), "train: cannot open ", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

template <class Model>
double evaluate(Model& model, std::span<const token_id> tokens, nn::batch_shape shape, std::size_t batches,
                std::uint64_t seed_value, const nn::run_context& ctx) {
  train::window_sampler sampler(tokens, shape, philox(seed{seed_value}));
  const nn::run_context eval_ctx{ctx.pool, false};
  std::vector<token_id> ids, targets;
  double sum = 0.0;
  for (std::size_t i = 0; i < batches; ++i) {
    sampler.next(ids, targets);
    sum += model.forward(ids, targets, shape, eval_ctx);
  }
  return sum / static_cast<double>(batches);
}

int run(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      require<argument_error>(i + 1 < argc, "train: ", a, " needs a value");
      return argv[++i];
    };
    auto count = [&] {
      const char* v = value();
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v, &end, 10);
      require<argument_error>(*v && *end == '\0', "train: ", a, " wants a whole number, got '", v, "'");
      return static_cast<std::size_t>(n);
    };
    auto real = [&] {
      const char* v = value();
      char* end = nullptr;
      const float x = std::strtof(v, &end);
      require<argument_error>(*v && *end == '\0', "train: ", a, " wants a number, got '", v, "'");
      return x;
    };
    if (a == "-h" || a == "--help") return usage(0);
    else if (a == "--data") o.data = value();
    else if (a == "--family") o.family = value();
    else if (a == "--steps") o.steps = count();
    else if (a == "--batch") o.batch = count();
    else if (a == "--context") o.context = count();
    else if (a == "--layers") o.layers = count();
    else if (a == "--heads") o.heads = count();
    else if (a == "--dim") o.dim = count();
    else if (a == "--lr") o.lr = real();
    else if (a == "--min-lr") o.min_lr = real();
    else if (a == "--warmup") o.warmup = count();
    else if (a == "--weight-decay") o.weight_decay = real();
    else if (a == "--beta2") o.beta2 = real();
    else if (a == "--clip") o.clip = real();
    else if (a == "--threads") o.threads = static_cast<int>(count());
    else if (a == "--seed") o.seed = count();
    else if (a == "--eval-every") o.eval_every = count();
    else if (a == "--eval-batches") o.eval_batches = count();
    else if (a == "--final-eval-batches") o.final_eval_batches = count();
    else if (a == "--curve") o.curve = value();
    else if (a == "--save") o.save = value();
    else if (a == "--save-every") o.save_every = count();
    else if (a == "--resume") o.resume = value();
    else if (a == "--accumulate") o.accumulation = count();
    else return usage(2);
  }
  if (o.data.empty()) return usage(2);
  require<argument_error>(o.family == "gpt", "train: unknown family '", o.family, "' (gpt)");

  const std::string corpus = read_text(o.data);
  require<argument_error>(!corpus.empty(), "train: ", o.data, " is empty");
  const text::char_tokenizer tokenizer = text::char_tokenizer::from_corpus(corpus);
  const std::vector<token_id> tokens = tokenizer.encode(corpus);
  const std::size_t split = tokens.size() * 9 / 10;
  const std::span<const token_id> train_tokens(tokens.data(), split), val_tokens(tokens.data() + split, tokens.size() - split);

  const thread_pool pool(o.threads);
  const nn::run_context ctx{&pool, true};
  const nn::batch_shape shape{o.batch, o.context};
  models::gpt<> model({.vocab = tokenizer.vocab_size(), .context = o.context, .layers = o.layers, .heads = o.heads, .dim = o.dim});
  model.init(seed{o.seed});
  train::parameter_list params(model);
  train::adam optimizer(params, {.lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .weight_decay = o.weight_decay});
  const train::cosine_schedule schedule{.lr = o.lr, .min_lr = o.min_lr, .warmup = o.warmup, .decay_steps = o.steps};
  train::window_sampler sampler(train_tokens, shape, philox(seed{o.seed}, 1));

  std::fprintf(stderr, "gpt: vocab %zu, %zu layers, %zu heads, width %zu, context %zu: %.3fM parameters; %zu train / %zu val tokens; %d threads\n",
               tokenizer.vocab_size(), o.layers, o.heads, o.dim, o.context, params.element_count() / 1e6, train_tokens.size(),
               val_tokens.size(), pool.threads());

  std::uint64_t first_step = 0;
  std::map<std::string, std::string> metadata = models::to_metadata(model.config());
  metadata["tokenizer.alphabet"] = tokenizer.alphabet();
  if (!o.resume.empty()) {
    const train::run_position at = train::load_checkpoint(o.resume, params, optimizer);
    first_step = at.step;
    sampler.set_rng(at.sampler_rng);
    std::fprintf(stderr, "resumed %s at step %llu\n", o.resume.c_str(), static_cast<unsigned long long>(first_step));
  }
  auto save = [&](std::uint64_t step) {
    if (o.save.empty()) return;
    train::save_checkpoint(o.save, params, optimizer, {.step = step, .sampler_rng = sampler.rng(), .metadata = metadata});
  };

  train::loss_curve curve;
  progress_meter progress(o.steps, first_step);
  std::vector<token_id> ids, targets;
  double train_seconds = 0.0;
  for (std::uint64_t step = first_step; step <= o.steps; ++step) {
    if (o.eval_every && (step % o.eval_every == 0 || step == o.steps) && o.eval_batches) {
      const double val = evaluate(model, val_tokens, shape, o.eval_batches, 2, ctx);
      std::fprintf(stderr, "\rstep %llu: val loss %.4f%40s\n", static_cast<unsigned long long>(step), val, "");
      curve.add({.step = step, .val_loss = val});
    }
    if (step == o.steps) break;
    const auto start = std::chrono::steady_clock::now();
    const train::step_report r = train::train_step(model, optimizer, params, schedule, sampler, step,
                                                   {.clip = o.clip, .accumulation = o.accumulation}, ctx, ids, targets);
    train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    curve.add({.step = step, .train_loss = r.loss, .lr = r.lr});
    if (o.save_every && (step + 1) % o.save_every == 0) save(step + 1);
    const std::uint64_t done = step + 1 - first_step;
    if (step % 10 == 0 || step + 1 == o.steps) {
      char details[160];
      std::snprintf(details, sizeof details, "loss %.4f | lr %.2e | %.0f tok/s | %.2f ms/step", r.loss, r.lr,
                    static_cast<double>(done * shape.rows() * o.accumulation) / train_seconds, 1000.0 * train_seconds / done);
      std::fprintf(stderr, "\rstep %s", progress.line(step + 1, details).c_str());
    }
  }
  save(o.steps);
  std::fprintf(stderr, "\n");
  if (o.final_eval_batches) {
    const double val = evaluate(model, val_tokens, shape, o.final_eval_batches, 3, ctx);
    std::printf("final val loss (%zu batches of %zux%zu) %.4f\n", o.final_eval_batches, o.batch, o.context, val);
  }
  if (o.steps > first_step)
    std::printf("train time %.1f s, %.2f ms/step\n", train_seconds, 1000.0 * train_seconds / (o.steps - first_step));
  if (!o.curve.empty()) {
    curve.write_csv(o.curve + ".csv");
    curve.write_svg(o.curve + ".svg", "gpt on " + o.data);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train: %s\n", e.what());
    return 1;
  }
}
