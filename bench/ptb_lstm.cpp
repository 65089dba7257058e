// Penn Treebank word-level LSTM, the "small" setting of Zaremba, Sutskever & Vinyals 2014
// ("Recurrent neural network regularization"): 2 layers x 200, 35 steps, batch 20, 13 epochs, SGD
// at learning rate 1 halved every epoch from the 5th, gradient norm clipped at 5, every parameter
// uniform in +-0.1, the loss summed over the 35 steps and averaged over the batch. The same
// protocol as ../shared/peers/pytorch/train_lstm_ptb.py, step for step: a benchmark run (minutes),
// not a CI test. Prints each epoch's validation perplexity and time, then the test perplexity.
// --medium is the paper's medium setting instead: 2 layers x 650, dropout 0.5 on the non-recurrent
// connections, every parameter uniform in +-0.05, 39 epochs, the rate divided by 1.2 every epoch
// from the 7th (paper: test perplexity 82.7; hours on two cores).
//
//   ptb_lstm [--data DIR] [--medium] [--epochs N] [--max-steps N] [--threads N]
//
// --max-steps N ends each epoch after N steps (a quick measure of the step time).
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "lmkit/models/lstm_lm.hpp"
#include "lmkit/train/parameter_list.hpp"
#include "lmkit/train/sgd.hpp"

namespace {

using namespace lmkit;
using clock_type = std::chrono::steady_clock;

std::vector<std::string> read_words(const std::string& path) {
  std::ifstream in(path);
  require<io_error>(static_cast<bool>(in), "ptb_lstm: cannot open ", path);
  std::vector<std::string> words;
  for (std::string line; std::getline(in, line);) {
    std::istringstream s(line);
    for (std::string w; s >> w;) words.push_back(w);
    words.push_back("<eos>");
  }
  return words;
}

/// PyTorch's batchify: the first n * batch tokens as `batch` rows of n, row-major.
struct batched {
  std::vector<token_id> data;
  std::size_t batch = 0, columns = 0;
  token_id at(std::size_t b, std::size_t c) const { return data[b * columns + c]; }
};
batched batchify(const std::vector<token_id>& ids, std::size_t batch) {
  batched out{{}, batch, ids.size() / batch};
  out.data.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(out.columns * batch));
  return out;
}

/// The window [i, i + len) of every row as ids, and [i + 1, i + 1 + len) as targets (rows b * len + t).
void window(const batched& d, std::size_t i, std::size_t len, std::vector<token_id>& ids, std::vector<token_id>& targets) {
  ids.resize(d.batch * len);
  targets.resize(d.batch * len);
  for (std::size_t b = 0; b < d.batch; ++b)
    for (std::size_t t = 0; t < len; ++t) {
      ids[b * len + t] = d.at(b, i + t);
      targets[b * len + t] = d.at(b, i + t + 1);
    }
}

template <class Model>
double perplexity(Model& model, const batched& d, std::size_t steps, const nn::run_context& ctx) {
  model.reset_state();
  const nn::run_context eval{ctx.pool, false};
  std::vector<token_id> ids, targets;
  double total = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i + 1 < d.columns; i += steps) {
    const std::size_t len = std::min(steps, d.columns - 1 - i);
    window(d, i, len, ids, targets);
    total += static_cast<double>(model.forward(ids, targets, {d.batch, len}, eval)) * static_cast<double>(ids.size());
    count += ids.size();
  }
  return std::exp(total / static_cast<double>(count));
}

}  // namespace

int main(int argc, char** argv) try {
  std::string dir = LMKIT_DEFAULT_SHARED_DATA "/ptb";
  std::size_t epochs = 0;  // the setting's
  int threads = 0;
  bool medium = false;
  std::size_t max_steps = 0;  // 0: whole epochs
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--data" && i + 1 < argc) dir = argv[++i];
    else if (a == "--medium") medium = true;
    else if (a == "--epochs" && i + 1 < argc) epochs = std::stoul(argv[++i]);
    else if (a == "--max-steps" && i + 1 < argc) max_steps = std::stoul(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else {
      std::fputs("usage: ptb_lstm [--data DIR] [--medium] [--epochs N] [--max-steps N] [--threads N]\n", stderr);
      return 2;
    }
  }
  // Zaremba et al.'s settings: width, dropout, init bound, epochs, the epoch from which the rate
  // falls, and by what factor each epoch.
  struct setting {
    std::size_t width;
    float dropout, init;
    std::size_t epochs, decay_from;
    float decay;
  };
  const setting z = medium ? setting{650, 0.5f, 0.05f, 39, 6, 1.2f} : setting{200, 0.0f, 0.1f, 13, 4, 2.0f};
  if (epochs == 0) epochs = z.epochs;
  const auto train_words = read_words(dir + "/ptb.train.txt"), valid_words = read_words(dir + "/ptb.valid.txt"),
             test_words = read_words(dir + "/ptb.test.txt");
  std::map<std::string, token_id> vocab;
  for (const std::string& w : std::set<std::string>(train_words.begin(), train_words.end()))
    vocab.emplace(w, static_cast<token_id>(vocab.size()));
  auto ids = [&](const std::vector<std::string>& words) {
    std::vector<token_id> out;
    for (const std::string& w : words) out.push_back(vocab.at(w));
    return out;
  };
  constexpr std::size_t batch = 20, steps = 35;
  const batched train = batchify(ids(train_words), batch), valid = batchify(ids(valid_words), batch),
                test = batchify(ids(test_words), batch);

  const thread_pool pool(threads);
  nn::run_context ctx{&pool, true, seed{1234}};  // dropout masks: (seed, step)
  models::lstm_lm<> model({.vocab = vocab.size(), .embedding = z.width, .hidden = z.width, .layers = 2, .dropout = z.dropout});
  model.init_uniform(seed{1234}, z.init);
  model.carry_state(true);
  train::parameter_list params(model);
  train::sgd optimizer(params, {.lr = 1.0f});
  std::printf("%s: vocab %zu, train tokens %zu, %.2fM parameters, dropout %.2f, %d threads\n", medium ? "medium" : "small",
              vocab.size(), train.data.size(), params.element_count() / 1e6, z.dropout, pool.threads());
  std::fflush(stdout);

  const auto start = clock_type::now();
  float lr = 1.0f;
  std::vector<token_id> x, y;
  for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
    if (epoch >= z.decay_from) lr /= z.decay;
    model.reset_state();
    const auto epoch_start = clock_type::now();
    std::size_t step_count = 0;
    for (std::size_t i = 0; i + 1 < train.columns && (max_steps == 0 || step_count < max_steps); i += steps) {
      const std::size_t len = std::min(steps, train.columns - 1 - i);
      window(train, i, len, x, y);
      optimizer.zero_grad();
      model.forward(x, y, {batch, len}, ctx);
      model.backward(ctx, static_cast<float>(len));  // the loss summed over the steps, averaged over the batch
      ++ctx.pass;
      train::clip_gradient_norm(params, 5.0);
      optimizer.step(lr);
      ++step_count;
    }
    const double seconds = std::chrono::duration<double>(clock_type::now() - epoch_start).count();
    std::printf("epoch %zu lr %.4f valid ppl %.2f epoch time %.1fs (%.1f ms/step)\n", epoch + 1, lr,
                perplexity(model, valid, steps, ctx), seconds, 1000.0 * seconds / static_cast<double>(step_count));
    std::fflush(stdout);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("test ppl %.2f total wall %.1fs peak RSS %.0f MiB\n", perplexity(model, test, steps, ctx),
              std::chrono::duration<double>(clock_type::now() - start).count(), usage.ru_maxrss / 1024.0);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "ptb_lstm: %s\n", e.what());
  return 1;
}
