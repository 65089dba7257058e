// Optimizers, schedules, clipping, checkpoints: the formulas PyTorch uses, and a resumed run that
// repeats an uninterrupted one bit for bit.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lmkit/models/gpt.hpp"
#include "lmkit/train/adam.hpp"
#include "lmkit/train/checkpoint.hpp"
#include "lmkit/train/schedule.hpp"
#include "lmkit/train/sgd.hpp"
#include "lmkit/train/train_step.hpp"
#include "lmkit/train/window_sampler.hpp"

using namespace lmkit;

namespace {

std::filesystem::path temp_path(const std::string& name) { return std::filesystem::path(LMKIT_TEST_TMPDIR) / name; }

// With dropout: its masks too must repeat on any thread count and after a resume.
constexpr models::gpt_config small{.vocab = 23, .context = 16, .layers = 2, .heads = 2, .dim = 16, .dropout = 0.1f};

std::vector<token_id> token_stream(std::size_t n) {
  std::vector<token_id> t(n);
  philox rng(seed{77});
  for (std::size_t i = 0; i < n; ++i) t[i] = static_cast<token_id>((i * 7 + rng() % 3) % small.vocab);
  return t;
}

/// A whole training run's moving parts, so that a test can stop one and start another.
struct run {
  explicit run(const thread_pool& pool, const std::vector<token_id>& tokens)
      : model(small),
        params((model.init(seed{1}), model)),
        optimizer(params, {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.99f, .weight_decay = 0.1f}),
        sampler(tokens, {4, 16}, philox(seed{5}, 1)),
        ctx{&pool, true, seed{11}} {}

  float step(std::uint64_t s) {
    return train::train_step(model, optimizer, params, schedule, sampler, s, {.clip = 1.0, .accumulation = 2}, ctx, ids,
                             targets)
        .loss;
  }

  models::gpt<> model;
  train::parameter_list params;
  train::adam optimizer;
  train::window_sampler sampler;
  train::cosine_schedule schedule{.lr = 3e-3f, .min_lr = 3e-4f, .warmup = 3, .decay_steps = 12};
  nn::run_context ctx;
  std::vector<token_id> ids, targets;
};

/// A model that only notes the pass number of each forward.
struct pass_recorder {
  nn::parameter p{{1}, nn::decay::no};
  std::vector<std::uint64_t> seen;
  float forward(std::span<const token_id>, std::span<const token_id>, nn::batch_shape, const nn::run_context& ctx) {
    seen.push_back(ctx.pass);
    return 0.0f;
  }
  void backward(const nn::run_context&, float) {}
  template <class V>
  void visit_parameters(V&& v) { v("p", p); }
};

struct one_parameter {
  nn::parameter* p;
  template <class V>
  void visit_parameters(V&& v) { v("p", *p); }
};

}  // namespace

TEST_CASE("cosine and linear schedules follow nanoGPT's formulas", "[train]") {
  const train::cosine_schedule cosine{.lr = 1e-3f, .min_lr = 1e-4f, .warmup = 100, .decay_steps = 2000};
  CHECK(cosine(0) == Approx(1e-3 / 101));
  CHECK(cosine(99) == Approx(1e-3 * 100 / 101));
  CHECK(cosine(100) == Approx(1e-3));
  CHECK(cosine(1050) == Approx(1e-4 + 0.5 * (1e-3 - 1e-4)));
  CHECK(cosine(2000) == Approx(1e-4));
  CHECK(cosine(5000) == Approx(1e-4));
  const train::linear_schedule linear{.lr = 1.0f, .min_lr = 0.0f, .warmup = 0, .decay_steps = 10};
  CHECK(linear(5) == Approx(0.5));
  CHECK(linear(10) == 0.0f);
}

TEST_CASE("clipping scales the global gradient norm down to the limit and leaves smaller ones alone", "[train]") {
  models::gpt<> model(small);
  train::parameter_list params(model);
  for (const auto& p : params)
    for (float& g : p.parameter->grad()) g = 0.5f;
  const double norm = std::sqrt(0.25 * static_cast<double>(params.element_count()));
  CHECK(train::clip_gradient_norm(params, 1.0) == Approx(norm));
  CHECK(train::gradient_norm(params) == Approx(1.0).epsilon(1e-5));
  CHECK(train::clip_gradient_norm(params, 10.0) == Approx(1.0).epsilon(1e-5));
  CHECK(train::gradient_norm(params) == Approx(1.0).epsilon(1e-5));
}

TEST_CASE("AdamW decays matrices but not norm gains; SGD with momentum follows torch.optim.SGD", "[train]") {
  models::gpt<> model(small);
  model.init(seed{3});
  train::parameter_list params(model);
  train::adam opt(params, {.lr = 0.1f, .weight_decay = 0.5f});
  params.zero_grad();
  const float wte0 = params[0].parameter->value()[0];
  const nn::parameter* gain = nullptr;
  for (const auto& p : params)
    if (p.name == "transformer.ln_f.weight") gain = p.parameter;
  REQUIRE(gain != nullptr);
  opt.step(0.1f);
  // A zero gradient leaves m = v = 0, so only the decay moves a weight: w (1 - lr wd).
  CHECK(params[0].parameter->value()[0] == Approx(wte0 * (1 - 0.1 * 0.5)));
  CHECK(gain->value()[0] == 1.0f);

  nn::parameter p({3}, nn::decay::yes);
  one_parameter holder{&p};
  train::sgd sgd(train::parameter_list(holder), {.lr = 0.5f, .momentum = 0.9f});
  p.fill(1.0f);
  std::fill(p.grad().begin(), p.grad().end(), 2.0f);
  sgd.step();  // buf = g = 2; w = 1 - 0.5 * 2 = 0
  CHECK(p.value()[0] == 0.0f);
  sgd.step();  // buf = 0.9 * 2 + 2 = 3.8; w = 0 - 1.9
  CHECK(p.value()[0] == Approx(-1.9));
}

TEST_CASE("optimizers, train_step and the window sampler refuse settings that would train on NaN or nothing",
          "[train]") {
  nn::parameter p({3}, nn::decay::yes);
  one_parameter holder{&p};
  const train::parameter_list params(holder);
  const float nan = std::nanf(""), inf = INFINITY;
  for (const train::adam_options bad :
       {train::adam_options{.lr = -1e-3f}, train::adam_options{.lr = nan}, train::adam_options{.beta1 = 1.0f},
        train::adam_options{.beta2 = -0.1f}, train::adam_options{.eps = -1e-8f}, train::adam_options{.weight_decay = inf}})
    CHECK_THROWS_AS(train::adam(params, bad), argument_error);
  train::adam adam(params, {});
  CHECK_THROWS_WITH(adam.step(nan), Catch::Contains("learning rate"));
  CHECK(adam.steps() == 0);  // refused before counting the step
  for (const train::sgd_options bad : {train::sgd_options{.lr = nan}, train::sgd_options{.momentum = -0.9f},
                                       train::sgd_options{.weight_decay = -1.0f}})
    CHECK_THROWS_AS(train::sgd(params, bad), argument_error);
  train::sgd sgd(params, {});
  CHECK_THROWS_AS(sgd.step(-1.0f), argument_error);

  const std::vector<token_id> tokens = token_stream(100);
  CHECK_THROWS_WITH(train::window_sampler(tokens, {0, 16}, philox(seed{1})), Catch::Contains("empty batch shape"));
  CHECK_THROWS_AS(train::window_sampler(tokens, {4, 0}, philox(seed{1})), argument_error);
  models::gpt<> model(small);
  CHECK_THROWS_AS(model.reserve({0, 16}), argument_error);

  pass_recorder recorder;
  train::parameter_list recorded(recorder);
  train::adam recorder_adam(recorded, {});
  train::window_sampler sampler(tokens, {2, 8}, philox(seed{1}));
  std::vector<token_id> ids, targets;
  CHECK_THROWS_WITH(train::train_step(recorder, recorder_adam, recorded, train::constant_schedule{}, sampler, 0,
                                      {.clip = nan}, {}, ids, targets),
                    Catch::Contains("clip"));
  CHECK(recorder.seen.empty());
}

TEST_CASE("training repeats bit for bit on 1 and 2 threads, and after a checkpoint and resume", "[train]") {
  const std::vector<token_id> tokens = token_stream(4000);
  const thread_pool one(1), two(2);
  std::vector<float> straight, threaded, resumed;
  {
    run r(one, tokens);
    for (std::uint64_t s = 0; s < 12; ++s) straight.push_back(r.step(s));
  }
  {
    run r(two, tokens);
    for (std::uint64_t s = 0; s < 12; ++s) threaded.push_back(r.step(s));
  }
  CHECK(straight == threaded);
  const auto path = temp_path("resume.safetensors");
  {
    run r(one, tokens);
    for (std::uint64_t s = 0; s < 5; ++s) resumed.push_back(r.step(s));
    train::save_checkpoint(path, r.params, r.optimizer,
                           {.step = 5, .sampler_rng = r.sampler.rng(), .noise = r.ctx.noise, .metadata = {{"note", "x"}}});
    for (std::uint64_t s = 5; s < 12; ++s) r.step(s);  // the run goes on; the file keeps step 5
  }
  {
    run r(one, tokens);
    r.model.init(seed{999});  // whatever it had is overwritten by the checkpoint
    const train::run_position at = train::load_checkpoint(path, r.params, r.optimizer);
    CHECK(at.step == 5);
    CHECK(at.metadata.at("note") == "x");
    CHECK(at.noise.value == 11);
    r.ctx.noise = at.noise;
    CHECK(r.optimizer.steps() == 5);
    r.sampler.set_rng(at.sampler_rng);
    for (std::uint64_t s = at.step; s < 12; ++s) resumed.push_back(r.step(s));
  }
  CHECK(resumed == straight);
  CHECK(straight.back() < straight.front());  // it learns something
}

TEST_CASE("train_step numbers its passes step x micro-batches + micro-batch (dropout draws its masks from it)",
          "[train]") {
  pass_recorder model;
  const std::vector<token_id> tokens = token_stream(100);
  train::parameter_list params(model);
  train::adam optimizer(params, {});
  train::window_sampler sampler(tokens, {2, 8}, philox(seed{1}));
  std::vector<token_id> ids, targets;
  for (std::uint64_t step = 4; step < 7; ++step)
    train::train_step(model, optimizer, params, train::constant_schedule{}, sampler, step, {.accumulation = 3},
                      nn::run_context{}, ids, targets);
  CHECK(model.seen == std::vector<std::uint64_t>{12, 13, 14, 15, 16, 17, 18, 19, 20});
}

TEST_CASE("loading a checkpoint names the missing, mis-shaped or damaged tensor", "[train]") {
  const std::vector<token_id> tokens = token_stream(1000);
  const thread_pool one(1);
  run r(one, tokens);
  const auto path = temp_path("bad.safetensors");
  train::save_checkpoint(path, r.params, r.optimizer, {.sampler_rng = r.sampler.rng()});

  models::gpt<> deeper({.vocab = 23, .context = 16, .layers = 3, .heads = 2, .dim = 16});
  train::parameter_list deeper_params(deeper);
  train::adam deeper_opt(deeper_params, {});
  CHECK_THROWS_WITH(train::load_checkpoint(path, deeper_params, deeper_opt),
                    Catch::Contains("tensor transformer.h.2.ln_1.weight is missing"));

  models::gpt<> wider({.vocab = 23, .context = 16, .layers = 2, .heads = 2, .dim = 32});
  train::parameter_list wider_params(wider);
  train::adam wider_opt(wider_params, {});
  CHECK_THROWS_WITH(train::load_checkpoint(path, wider_params, wider_opt),
                    Catch::Contains("tensor transformer.wte.weight has shape [23, 16] but the model wants [23, 32]"));

  // Cut the file short: the reader refuses it (its message names the file), no crash.
  const auto cut = temp_path("cut.safetensors");
  std::filesystem::copy_file(path, cut, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) / 2);
  CHECK_THROWS_AS(train::load_checkpoint(cut, r.params, r.optimizer), format_error);
  CHECK_THROWS_AS(train::load_checkpoint(temp_path("does-not-exist.safetensors"), r.params, r.optimizer), error);
}
