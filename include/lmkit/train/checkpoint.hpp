// Training checkpoints as safetensors: the model's parameters under their own names, the
// optimizer's state ("optimizer.exp_avg.<name>", ...), any extra state tensors (an LSTM's carried
// state), and in the metadata the step, the optimizer's step count, the data sampler's random
// position and whatever the caller adds (the model's config). Written atomically: a crash leaves
// the previous checkpoint whole. Loading checks every tensor's presence and shape and names the
// one that is wrong.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/rng.hpp"
#include "lmkit/io/safetensors.hpp"
#include "lmkit/io/safetensors_writer.hpp"
#include "lmkit/train/parameter_list.hpp"

namespace lmkit::train {

/// Where a run is, besides its tensors.
struct run_position {
  std::uint64_t step = 0;       // steps done
  philox sampler_rng = philox{};  // the data sampler's generator, at its position
  seed noise = {};                // the run's dropout seed (nn::run_context::noise)
  std::map<std::string, std::string> metadata = {};  // the caller's own keys (the model's config, ...)
};

namespace detail {
inline std::vector<std::uint64_t> shape_of(const nn::parameter& p) {
  return std::vector<std::uint64_t>(p.shape().begin(), p.shape().end());
}
inline std::uint64_t parse_u64(const io::safetensors_file& f, const std::string& key) {
  const auto it = f.metadata().find(key);
  require<format_error>(it != f.metadata().end(), "checkpoint ", f.source(), ": metadata key ", key, " is missing");
  std::uint64_t v = 0;
  for (char c : it->second) {
    require<format_error>(c >= '0' && c <= '9' && v <= (UINT64_MAX - 9) / 10, "checkpoint ", f.source(), ": metadata ",
                          key, " = '", it->second, "' is not a whole number");
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  require<format_error>(!it->second.empty(), "checkpoint ", f.source(), ": metadata ", key, " is empty");
  return v;
}
/// Copies tensor `name` of the file into `out`, after checking it is F32 with `shape`.
inline void load_tensor(const io::safetensors_file& f, const std::string& name, const std::vector<std::uint64_t>& shape,
                        std::span<float> out) {
  const io::safetensors_tensor* t = f.find(name);
  require<format_error>(t != nullptr, "checkpoint ", f.source(), ": tensor ", name, " is missing");
  require<format_error>(t->shape == shape, "checkpoint ", f.source(), ": tensor ", name, " has shape ",
                        io::shape_text(t->shape), " but the model wants ", io::shape_text(shape));
  require<format_error>(t->dtype == io::safetensors_dtype::f32, "checkpoint ", f.source(), ": tensor ", name,
                        " is not F32");
  io::to_floats(*t, out);
}
}  // namespace detail

/// Writes model parameters, optimizer state, `extra` tensors and the run position to `path`.
template <class Optimizer>
void save_checkpoint(const std::filesystem::path& path, const parameter_list& params, Optimizer& optimizer,
                     const run_position& position, const std::map<std::string, std::vector<float>>& extra = {}) {
  io::safetensors_writer w;
  for (const named_parameter& p : params) w.add(p.name, detail::shape_of(*p.parameter), p.parameter->value());
  optimizer.visit_state([&](const std::string& name, std::span<const float> values, const nn::parameter& owner) {
    w.add(name, detail::shape_of(owner), values);
  });
  for (const auto& [name, values] : extra) w.add(name, {values.size()}, values);
  w.add_metadata("lmkit.format", "checkpoint 1");
  w.add_metadata("lmkit.step", std::to_string(position.step));
  w.add_metadata("lmkit.optimizer_steps", std::to_string(optimizer.steps()));
  w.add_metadata("lmkit.sampler_seed", std::to_string(position.sampler_rng.seed_value()));
  w.add_metadata("lmkit.sampler_stream", std::to_string(position.sampler_rng.stream()));
  w.add_metadata("lmkit.sampler_position", std::to_string(position.sampler_rng.position()));
  w.add_metadata("lmkit.noise_seed", std::to_string(position.noise.value));
  for (const auto& [k, v] : position.metadata) w.add_metadata(k, v);
  w.write(path);
}

/// Reads a checkpoint into the model's parameters, the optimizer and `extra` (each must be
/// present with its size); returns the run position.
template <class Optimizer>
run_position load_checkpoint(const std::filesystem::path& path, const parameter_list& params, Optimizer& optimizer,
                             std::map<std::string, std::vector<float>>* extra = nullptr) {
  const io::safetensors_file f(path);
  const auto format = f.metadata().find("lmkit.format");
  require<format_error>(format != f.metadata().end() && format->second == "checkpoint 1", "checkpoint ", path.string(),
                        ": not an lmkit checkpoint (metadata lmkit.format is missing or not 'checkpoint 1')");
  for (const named_parameter& p : params) detail::load_tensor(f, p.name, detail::shape_of(*p.parameter), p.parameter->value());
  optimizer.visit_state([&](const std::string& name, std::span<float> values, const nn::parameter& owner) {
    detail::load_tensor(f, name, detail::shape_of(owner), values);
  });
  if (extra)
    for (auto& [name, values] : *extra) detail::load_tensor(f, name, {values.size()}, values);
  optimizer.set_steps(detail::parse_u64(f, "lmkit.optimizer_steps"));
  run_position position;
  position.step = detail::parse_u64(f, "lmkit.step");
  position.sampler_rng = philox(seed{detail::parse_u64(f, "lmkit.sampler_seed")}, detail::parse_u64(f, "lmkit.sampler_stream"),
                                detail::parse_u64(f, "lmkit.sampler_position"));
  if (f.metadata().contains("lmkit.noise_seed"))  // absent from checkpoints written before dropout
    position.noise = seed{detail::parse_u64(f, "lmkit.noise_seed")};
  for (const auto& [k, v] : f.metadata())
    if (!k.starts_with("lmkit.")) position.metadata.emplace(k, v);
  return position;
}

/// Reads only the model's parameters from a checkpoint (to generate, evaluate or fine-tune);
/// returns the file's metadata.
inline std::map<std::string, std::string, std::less<>> load_parameters(const std::filesystem::path& path,
                                                                      const parameter_list& params) {
  const io::safetensors_file f(path);
  for (const named_parameter& p : params) detail::load_tensor(f, p.name, detail::shape_of(*p.parameter), p.parameter->value());
  return f.metadata();
}

/// The metadata of a checkpoint (its model config), without loading tensors.
inline std::map<std::string, std::string, std::less<>> checkpoint_metadata(const std::filesystem::path& path) {
  return io::safetensors_file(path).metadata();
}

}  // namespace lmkit::train
