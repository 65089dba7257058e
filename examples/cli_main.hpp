// The examples' main(): a tool's errors end as one line on stderr, never as std::terminate.
#pragma once

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

namespace lmkit::cli {

/// Runs `run(argc, argv)` and returns its status; any exception becomes one line on stderr that
/// starts with the tool's name (once: the tool's own messages may start with it already), and
/// status 1. Not only lmkit::error: a bad_alloc or a standard library's complaint must not abort.
inline int run_tool(std::string_view name, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    const std::string prefix = std::string(name) + ": ";
    const std::string_view what = e.what();
    std::fprintf(stderr, "%s%s\n", what.starts_with(prefix) ? "" : prefix.c_str(), e.what());
    return 1;
  }
}

}  // namespace lmkit::cli
