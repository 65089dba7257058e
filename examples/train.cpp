// train: a character-level language model trained from scratch on a text file, on the CPU; or a
// pretrained Hugging Face GPT-2 fine-tuned on it with its own tokenizer.
//
//   train --data input.txt [--family gpt|lstm] [--steps 2000] [--threads 2] [--curve run] [--save model.safetensors]
//   train --data input.txt --resume model.safetensors [--steps 4000] ...      continues bit for bit
//   train --data input.txt --init-from gpt2-folder --export-hf tuned-folder   fine-tunes, writes HF files
//
// gpt's defaults are nanoGPT's Shakespeare CPU configuration (4 layers, 4 heads, 128 wide, context
// 64, batch 12, AdamW 1e-3 cosine to 1e-4 after 100 warm-up steps, weight decay 0.1, betas
// 0.9/0.99, clipping at 1.0, no dropout, no biases, tied embeddings). lstm's are the classic char
// LSTM (embedding 64, 2 layers of 256, 32 streams of 64 steps with the state carried across
// batches, Adam 2e-3, clipping at 5). The first 90% of the text trains, the last 10% validates
// (the mean loss of random windows, from a zero state for the LSTM). A progress line shows loss,
// tokens/s and the ETA; --curve PREFIX writes PREFIX.csv and PREFIX.svg.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include <lmkit/core/atomic_file.hpp>
#include <lmkit/core/progress.hpp>
#include <lmkit/io/model_tokenizer.hpp>
#include <lmkit/models/gpt.hpp>
#include <lmkit/models/gpt_hugging_face.hpp>
#include <lmkit/models/lstm_lm.hpp>
#include <lmkit/text/char_tokenizer.hpp>
#include <lmkit/train/adam.hpp>
#include <lmkit/train/checkpoint.hpp>
#include <lmkit/train/loss_curve.hpp>
#include <lmkit/train/parameter_list.hpp>
#include <lmkit/train/schedule.hpp>
#include <lmkit/train/stream_batches.hpp>
#include <lmkit/train/train_step.hpp>
#include <lmkit/train/window_sampler.hpp>

#include "cli_main.hpp"
#include "cli_numbers.hpp"

namespace {

using namespace lmkit;

/// Every flag; unset ones take the family's default.
struct options {
  std::string data, family = "gpt", curve, save, resume, init_from, export_hf;
  std::optional<std::size_t> steps, batch, context, layers, heads, dim, embedding, warmup;
  std::optional<float> lr, min_lr, weight_decay, beta1, beta2, clip;
  float dropout = 0.0f;
  std::optional<kernels::product_precision> products;
  std::size_t accumulation = 1, save_every = 0, eval_every = 250, eval_batches = 20, final_eval_batches = 200;
  int threads = 0;
  std::uint64_t seed = 1337;
};

int usage(int code) {
  std::fputs(
      "usage: train --data FILE [--family gpt|lstm] [--steps N] [--batch B] [--context T] [--layers L]\n"
      "             [--heads H] [--dim C] [--embedding E] [--dropout P] [--lr X] [--min-lr X] [--warmup N]\n"
      "             [--weight-decay X] [--products f32|bf16]\n"
      "             [--beta1 X] [--beta2 X] [--clip X] [--threads N] [--seed S] [--eval-every N]\n"
      "             [--eval-batches N] [--final-eval-batches N] [--accumulate N] [--curve PREFIX]\n"
      "             [--save CHECKPOINT [--save-every N]] [--resume CHECKPOINT]\n"
      "             [--init-from HF_GPT2_FOLDER] [--export-hf FOLDER] [--config SETTINGS.json]\n"
      "  Trains a character-level model on FILE (first 90% train, last 10% validation). gpt: nanoGPT's\n"
      "  Shakespeare CPU configuration by default; lstm: embedding 64, 2 x 256 (--dim), 32 streams x 64 steps,\n"
      "  Adam 2e-3, clip 5. --dropout P while training (gpt: embeddings, attention weights, residual branches;\n"
      "  lstm: embeddings, between layers, the output). --threads 0 uses every core. --save writes a\n"
      "  safetensors checkpoint (weights, optimizer state, step, data position, carried state) at the end and\n"
      "  every N steps; --resume continues one to --steps (with the same flags), giving the same numbers as a\n"
      "  run that was never stopped. --products bf16\n"
      "  forms the matrix products of the linear layers, the LSTM's gates and the output head from bf16-rounded\n"
      "  operands, summed in f32, as PyTorch's autocast to bfloat16 does (on AMX tiles or AVX512-BF16 where the\n"
      "  CPU has them).\n"
      "  --init-from fine-tunes a Hugging Face GPT-2 folder (its config, weights and tokenizer; --context\n"
      "  defaults to its context); --export-hf writes the trained GPT as a Hugging Face GPT-2 folder (with\n"
      "  the tokenizer files of --init-from), for transformers or `generate --model FOLDER`. --config reads\n"
      "  settings from a JSON object whose keys are these flags' names ({\"family\": \"lstm\", \"dim\": 512});\n"
      "  flags on the command line override them.\n",
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

/// A loss estimated from random batches: their mean, and its standard error (the batches' standard
/// deviation over the square root of their number; 0 for one batch). The batches are drawn
/// independently, so an estimate from n batches scatters about the model's true loss by about
/// sd / sqrt(n): nanoGPT's 20-batch figures by sqrt(10) times as much as a 200-batch one.
struct loss_estimate {
  double mean = 0.0, standard_error = 0.0;
};

/// The loss of `batches` random windows (seeded: the same windows every time), not training.
template <class Model>
loss_estimate evaluate(Model& model, std::span<const token_id> tokens, nn::batch_shape shape, std::size_t batches,
                       std::uint64_t seed_value, const nn::run_context& ctx) {
  train::window_sampler sampler(tokens, shape, philox(seed{seed_value}));
  const nn::run_context eval_ctx{ctx.pool, false};
  std::vector<token_id> ids, targets;
  std::vector<double> losses(batches);
  for (double& loss : losses) {
    sampler.next(ids, targets);
    loss = model.forward(ids, targets, shape, eval_ctx);
  }
  const double n = static_cast<double>(batches);
  const double mean = std::accumulate(losses.begin(), losses.end(), 0.0) / n;
  double squares = 0.0;
  for (const double loss : losses) squares += (loss - mean) * (loss - mean);
  return {mean, batches > 1 ? std::sqrt(squares / (n - 1.0) / n) : 0.0};
}

/// The carried state of a recurrent model as named copies (a checkpoint's extra tensors), and back.
template <class Model>
std::map<std::string, std::vector<float>> state_copy(Model& model) {
  std::map<std::string, std::vector<float>> out;
  if constexpr (requires { model.visit_state([](std::string_view, nn::matrix) {}); })
    model.visit_state([&](std::string_view name, nn::matrix m) { out[std::string(name)].assign(m.data(), m.data() + m.size()); });
  return out;
}
template <class Model>
void restore_state(Model& model, const std::map<std::string, std::vector<float>>& saved) {
  if constexpr (requires { model.visit_state([](std::string_view, nn::matrix) {}); })
    model.visit_state([&](std::string_view name, nn::matrix m) {
      const auto& v = saved.at(std::string(name));
      std::copy(v.begin(), v.end(), m.data());
    });
}

/// What differs between the families: how batches are drawn and what the step's state is.
struct gpt_family {
  using model_type = models::gpt<>;
  using batches_type = train::window_sampler;
  static constexpr const char* name = "gpt";
};
struct lstm_family {
  using model_type = models::lstm_lm<>;
  using batches_type = train::stream_batches;
  static constexpr const char* name = "lstm";
};

/// The tokenizer files of a Hugging Face folder, copied beside an exported model or a checkpoint.
/// A tokenizer file of another kind left in `to` by an earlier run is removed: the folder's files
/// decide which tokenizer is read.
void copy_tokenizer_files(const std::filesystem::path& from, const std::filesystem::path& to) {
  // The files lmkit reads a tokenizer from, and the others Hugging Face's tokenizers read beside them.
  std::vector<std::string> names(io::tokenizer_file_names.begin(), io::tokenizer_file_names.end());
  for (const char* name : {"vocab.bpe", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"})
    names.emplace_back(name);
  for (const std::string& name : names)
    if (std::filesystem::exists(from / name)) write_file_atomically(to / name, read_text((from / name).string()));
    else std::filesystem::remove(to / name);
}

template <class Family, class Schedule>
int train_model(typename Family::model_type& model, std::map<std::string, std::string> metadata, const options& o,
                std::size_t steps, nn::batch_shape shape, train::adam_options adam, const Schedule& schedule, float clip,
                std::span<const token_id> train_tokens, std::span<const token_id> val_tokens) {
  constexpr bool recurrent = std::is_same_v<Family, lstm_family>;
  const thread_pool pool(o.threads);
  nn::run_context ctx{&pool, true, seed{o.seed}};  // dropout masks from the run's seed
  ctx.products = o.products.value_or(kernels::product_precision::f32);
  metadata["train.products"] = kernels::name_of(ctx.products);
  if (o.init_from.empty()) model.init(seed{o.seed});  // else the pretrained weights are the start
  train::parameter_list params(model);
  train::adam optimizer(params, adam);
  auto batches = [&] {
    if constexpr (recurrent) return train::stream_batches(train_tokens, shape);
    else return train::window_sampler(train_tokens, shape, philox(seed{o.seed}, 1));
  }();
  if constexpr (recurrent) model.carry_state(true);
  std::fprintf(stderr, "%s: %.3fM parameters; %zu train / %zu val tokens; batch %zu x %zu; %d threads\n", Family::name,
               params.element_count() / 1e6, train_tokens.size(), val_tokens.size(), shape.batch, shape.time,
               pool.threads());
  auto say_products = [&] {
    if (ctx.products == kernels::product_precision::bf16)
      std::fprintf(stderr, "products: bf16 operands, f32 sums (%s)\n",
                   kernels::amx_bf16_usable()   ? "AMX tiles"
                   : kernels::bf16_dot_usable() ? "AVX512-BF16 dot products"
                                                : "no AMX or AVX512-BF16 here: rounded operands on the f32 kernel, slower");
  };

  std::uint64_t first_step = 0;
  if (!o.resume.empty()) {
    std::map<std::string, std::vector<float>> state;
    if constexpr (recurrent) {
      model.reserve(shape);  // the carried state exists once the batch size is known
      state = state_copy(model);
    }
    const train::run_position at = train::load_checkpoint(o.resume, params, optimizer, &state);
    first_step = at.step;
    ctx.noise = at.noise;
    // The run goes on with its products unless told otherwise (then it is not the same run).
    if (const auto p = at.metadata.find("train.products"); p != at.metadata.end() && !o.products) {
      const auto products = kernels::product_precision_named(p->second);
      require<format_error>(products.has_value(), o.resume, ": train.products is '", p->second, "', not f32 or bf16");
      ctx.products = *products;
      metadata["train.products"] = p->second;
    }
    if constexpr (recurrent) {
      restore_state(model, state);
      const auto p = at.metadata.find("streams.position");
      require<format_error>(p != at.metadata.end(), "train: ", o.resume, " has no streams.position");
      const auto position = cli::parse_whole(p->second);
      require<format_error>(position.has_value(), "train: ", o.resume, ": streams.position is '", p->second,
                            "', not a whole number");
      batches.set_position(*position);
    } else {
      batches.set_rng(at.sampler_rng);
    }
    std::fprintf(stderr, "resumed %s at step %llu\n", o.resume.c_str(), static_cast<unsigned long long>(first_step));
  }
  say_products();
  auto save = [&](std::uint64_t step) {
    if (o.save.empty()) return;
    train::run_position position{.step = step, .noise = ctx.noise, .metadata = metadata};
    if constexpr (recurrent) position.metadata["streams.position"] = std::to_string(batches.position());
    else position.sampler_rng = batches.rng();
    train::save_checkpoint(o.save, params, optimizer, position, state_copy(model));
  };
  auto validate = [&](std::size_t count, std::uint64_t seed_value) {
    // Random windows from a zero state: keep the training run's carried state aside meanwhile.
    const auto kept = state_copy(model);
    if constexpr (recurrent) model.carry_state(false);
    const loss_estimate val = evaluate(model, val_tokens, shape, count, seed_value, ctx);
    if constexpr (recurrent) model.carry_state(true);
    restore_state(model, kept);
    return val;
  };

  train::loss_curve curve;
  progress_meter progress(steps, first_step);
  std::vector<token_id> ids, targets;
  double train_seconds = 0.0;
  for (std::uint64_t step = first_step; step <= steps; ++step) {
    if (o.eval_every && o.eval_batches && (step % o.eval_every == 0 || step == steps)) {
      const double val = validate(o.eval_batches, 2).mean;
      std::fprintf(stderr, "\rstep %llu: val loss %.4f%40s\n", static_cast<unsigned long long>(step), val, "");
      curve.add({.step = step, .val_loss = val});
    }
    if (step == steps) break;
    const auto start = std::chrono::steady_clock::now();
    if constexpr (recurrent)
      if (batches.at_start()) model.reset_state();
    const train::step_report r = train::train_step(model, optimizer, params, schedule, batches, step,
                                                   {.clip = clip, .accumulation = o.accumulation}, ctx, ids, targets);
    train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    curve.add({.step = step, .train_loss = r.loss, .lr = r.lr});
    if (o.save_every && (step + 1) % o.save_every == 0) save(step + 1);
    const std::uint64_t done = step + 1 - first_step;
    if (step % 10 == 0 || step + 1 == steps) {
      char details[160];
      std::snprintf(details, sizeof details, "loss %.4f | lr %.2e | %.0f tok/s | %.2f ms/step", r.loss, r.lr,
                    static_cast<double>(done * shape.rows() * o.accumulation) / train_seconds, 1000.0 * train_seconds / done);
      std::fprintf(stderr, "\rstep %s", progress.line(step + 1, details).c_str());
    }
  }
  std::fprintf(stderr, "\n");
  save(steps);
  if (o.final_eval_batches) {
    const loss_estimate val = validate(o.final_eval_batches, 3);
    std::printf("final val loss (%zu random windows of %zux%zu) %.4f, standard error %.4f\n", o.final_eval_batches,
                shape.batch, shape.time, val.mean, val.standard_error);
  }
  if (steps > first_step)
    std::printf("train time %.1f s, %.2f ms/step\n", train_seconds, 1000.0 * train_seconds / static_cast<double>(steps - first_step));
  if constexpr (!recurrent)
    if (!o.export_hf.empty()) {
      models::save_hugging_face_gpt(model, o.export_hf);
      if (!o.init_from.empty()) copy_tokenizer_files(o.init_from, o.export_hf);
      std::printf("exported %s as a Hugging Face GPT-2 folder\n", o.export_hf.c_str());
    }
  if (!o.curve.empty()) {
    curve.write_csv(o.curve + ".csv");
    curve.write_svg(o.curve + ".svg", std::string(Family::name) + " on " + o.data);
  }
  return 0;
}

/// The settings of a --config file as flags: {"family": "lstm", "dim": 512, "lr": 0.002} gives
/// --family lstm --dim 512 --lr 0.002. Each key is a flag's name; its value a string or a number.
std::vector<std::string> config_file_flags(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text(path));
  } catch (const nlohmann::json::exception& e) {
    throw format_error(lmkit::detail::concat("train: ", path, " is not JSON: ", e.what()));
  }
  require<format_error>(j.is_object(), "train: ", path, " is not a JSON object of settings");
  std::vector<std::string> flags;
  for (const auto& [key, v] : j.items()) {
    require<format_error>(key != "config", "train: ", path, ": a config file cannot name another");
    require<format_error>(v.is_string() || v.is_number(), "train: ", path, ": setting '", key,
                          "' is neither a string nor a number");
    flags.push_back("--" + key);
    flags.push_back(v.is_string() ? v.get<std::string>() : v.dump());
  }
  return flags;
}

int run(int argc, char** argv) {
  // A --config file's settings come first, so that flags on the command line override them.
  std::vector<std::string> args, given(argv + 1, argv + argc);
  for (std::size_t i = 0; i < given.size(); ++i)
    if (given[i] == "--config") {
      require<argument_error>(i + 1 < given.size(), "train: --config needs a value");
      const std::vector<std::string> from_file = config_file_flags(given[i + 1]);
      args.insert(args.begin(), from_file.begin(), from_file.end());
      given.erase(given.begin() + static_cast<std::ptrdiff_t>(i), given.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      --i;
    }
  args.insert(args.end(), given.begin(), given.end());
  options o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string a = args[i];
    auto value = [&]() -> std::string {
      require<argument_error>(i + 1 < args.size(), "train: ", a, " needs a value");
      return args[++i];
    };
    auto count = [&] { return static_cast<std::size_t>(cli::whole_number("train", a, value())); };
    auto real = [&] { return cli::finite_number("train", a, value()); };
    if (a == "-h" || a == "--help") return usage(0);
    else if (a == "--data") o.data = value();
    else if (a == "--family") o.family = value();
    else if (a == "--steps") o.steps = count();
    else if (a == "--batch") o.batch = count();
    else if (a == "--context") o.context = count();
    else if (a == "--layers") o.layers = count();
    else if (a == "--heads") o.heads = count();
    else if (a == "--dim") o.dim = count();
    else if (a == "--embedding") o.embedding = count();
    else if (a == "--dropout") o.dropout = real();
    else if (a == "--products") {
      const std::string p = value();
      o.products = kernels::product_precision_named(p);
      require<argument_error>(o.products.has_value(), "train: --products is f32 or bf16, not '", p, "'");
    }
    else if (a == "--lr") o.lr = real();
    else if (a == "--min-lr") o.min_lr = real();
    else if (a == "--warmup") o.warmup = count();
    else if (a == "--weight-decay") o.weight_decay = real();
    else if (a == "--beta1") o.beta1 = real();
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
    else if (a == "--init-from") o.init_from = value();
    else if (a == "--export-hf") o.export_hf = value();
    else {
      std::fprintf(stderr, "train: unknown flag or setting '%s'\n", a.c_str());
      return usage(2);
    }
  }
  if (o.data.empty()) return usage(2);
  require<argument_error>(o.family == "gpt" || o.family == "lstm", "train: unknown family '", o.family, "' (gpt, lstm)");
  require<argument_error>((o.init_from.empty() && o.export_hf.empty()) || o.family == "gpt",
                          "train: --init-from and --export-hf are for the gpt family");
  // A pretrained model brings its shape: flags that would contradict it are refused, not ignored.
  require<argument_error>(o.init_from.empty() || (!o.layers && !o.heads && !o.dim && !o.embedding), "train: --init-from ",
                          o.init_from, " sets the model's shape; drop --layers, --heads, --dim and --embedding");
  const std::optional<models::gpt_config> pretrained =
      o.init_from.empty() ? std::nullopt : std::optional(models::gpt_config_from_hugging_face(o.init_from, o.dropout));

  const std::string corpus = read_text(o.data);
  require<argument_error>(!corpus.empty(), "train: ", o.data, " is empty");
  // Characters, or the pretrained model's own tokenizer.
  std::map<std::string, std::string> metadata;
  std::vector<token_id> tokens;
  std::size_t vocab = 0;
  if (pretrained) {
    const text::any_tokenizer tokenizer = io::tokenizer_for_model(o.init_from);
    tokens = std::visit([&](const auto& t) { return t.encode(corpus); }, tokenizer);
    vocab = pretrained->vocab;
    // A checkpoint carries its tokenizer: the files go to a folder beside it, named in the metadata
    // relative to the checkpoint, so that the two move together. (The metadata only goes into a
    // checkpoint: no --save, nothing to record or copy.)
    if (!o.save.empty()) {
      const std::filesystem::path folder = o.save + ".tokenizer";
      std::filesystem::create_directories(folder);
      copy_tokenizer_files(o.init_from, folder);
      metadata["tokenizer.folder"] = folder.filename().string();
    }
  } else {
    const text::char_tokenizer tokenizer = text::char_tokenizer::from_corpus(corpus);
    tokens = tokenizer.encode(corpus);
    vocab = tokenizer.vocab_size();
    metadata["tokenizer.alphabet"] = tokenizer.alphabet();
  }
  const std::size_t split = tokens.size() * 9 / 10;
  const std::span<const token_id> train_tokens(tokens.data(), split), val_tokens(tokens.data() + split, tokens.size() - split);
  // Said here, with the file's name, rather than by the batch source ("a stream of N tokens").
  const std::size_t window = o.context.value_or(pretrained ? pretrained->context : 64) + 1;
  require<argument_error>(val_tokens.size() > window, "train: ", o.data, " has ", tokens.size(),
                          pretrained ? " tokens" : " characters", "; its last 10% (validation) needs more than ", window,
                          " (the context + 1): a longer text, or a smaller --context");
  const std::size_t steps = o.steps.value_or(2000);

  if (o.family == "gpt") {
    const models::gpt_config config =
        pretrained ? *pretrained
                   : models::gpt_config{.vocab = vocab, .context = o.context.value_or(64), .layers = o.layers.value_or(4),
                                        .heads = o.heads.value_or(4), .dim = o.dim.value_or(128), .dropout = o.dropout};
    models::gpt<> model(config);
    if (pretrained) models::load_hugging_face_weights(model, o.init_from);
    metadata.merge(models::to_metadata(config));
    const float lr = o.lr.value_or(1e-3f);
    return train_model<gpt_family>(
        model, metadata, o, steps, {o.batch.value_or(12), o.context.value_or(config.context)},
        {.lr = lr, .beta1 = o.beta1.value_or(0.9f), .beta2 = o.beta2.value_or(0.99f), .weight_decay = o.weight_decay.value_or(0.1f)},
        train::cosine_schedule{.lr = lr, .min_lr = o.min_lr.value_or(1e-4f), .warmup = o.warmup.value_or(100), .decay_steps = steps},
        o.clip.value_or(1.0f), train_tokens, val_tokens);
  }
  const models::lstm_lm_config config{.vocab = vocab, .embedding = o.embedding.value_or(64),
                                      .hidden = o.dim.value_or(256), .layers = o.layers.value_or(2),
                                      .dropout = o.dropout};
  models::lstm_lm<> model(config);
  metadata.merge(models::to_metadata(config));
  return train_model<lstm_family>(
      model, metadata, o, steps, {o.batch.value_or(32), o.context.value_or(64)},
      {.lr = o.lr.value_or(2e-3f), .beta1 = o.beta1.value_or(0.9f), .beta2 = o.beta2.value_or(0.999f),
       .weight_decay = o.weight_decay.value_or(0.0f), .decoupled = false},
      train::constant_schedule{o.lr.value_or(2e-3f)}, o.clip.value_or(5.0f), train_tokens, val_tokens);
}

}  // namespace

int main(int argc, char** argv) { return lmkit::cli::run_tool("train", run, argc, argv); }
