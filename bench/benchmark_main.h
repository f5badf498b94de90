// The Google Benchmark programs' main, with the project's rule for bad input: an argument Google
// Benchmark does not know, or a --benchmark_filter that is not a regular expression, gives one line on
// stderr and exit code 2 (Google Benchmark's own main exits 1 on the first and runs nothing with exit
// code 0 on the second). Checked before any GPU is looked for or any data made. With a skip reason (a
// GPU program in a build without CUDA), a valid command line prints that reason and runs nothing.
#pragma once
#include <benchmark/benchmark.h>

#include <cstdio>
#include <regex>
#include <string>

namespace cascade::bench {

inline int run_benchmarks(const char* program, int argc, char** argv, const char* skip = nullptr) {
  benchmark::Initialize(&argc, argv);  // removes the flags it knows from argv
  if (argc > 1) {
    std::fprintf(stderr, "%s: unknown argument %s\n", program, argv[1]);
    return 2;
  }
  const std::string filter = benchmark::GetBenchmarkFilter();
  try {
    std::regex(filter, std::regex::extended);  // as Google Benchmark compiles it
  } catch (const std::regex_error&) {
    std::fprintf(stderr, "%s: --benchmark_filter %s is not a regular expression\n", program, filter.c_str());
    return 2;
  }
  if (skip) {
    std::printf("%s: skipped (%s)\n", program, skip);
    return 0;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace cascade::bench
