// Paths the tests read from, and a skip helper for material that a fresh clone does not have.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace cascade::test {

inline std::filesystem::path data_dir() { return CASCADE_TEST_DATA; }
inline std::filesystem::path shared_dir() { return CASCADE_SHARED_DIR; }
// The model bundled with the repository (models/stories260K): always present.
inline std::filesystem::path bundled_model_dir() { return std::filesystem::path(CASCADE_TEST_DATA) / ".." / ".." / "models" / "stories260K"; }
inline std::string cli_path() { return CASCADE_CLI; }
// A fixture model of tests/data/models (llama, gpt2, ...), and the short text the study tests read.
inline std::string fixture_model(const std::string& name) { return (data_dir() / "models" / name).string(); }
inline std::string sample_text() { return (data_dir() / "text" / "sample.txt").string(); }

// The path of a file under ../shared, or "" when absent (the caller then GTEST_SKIPs).
std::filesystem::path shared_file(const std::string& rel);

// A fresh (removed, not created) path temp/suite/name whose parent exists, for a test's outputs.
std::filesystem::path scratch_path(const std::string& suite, const std::string& name);
// A whole file's bytes ("" when it cannot be read).
std::string read_file(const std::filesystem::path& p);

}  // namespace cascade::test

// Skips the current test, naming what is missing, when a ../shared file is absent.
#define CASCADE_REQUIRE_SHARED(var, rel)                                                        \
  const auto var = ::cascade::test::shared_file(rel);                                           \
  if (var.empty()) GTEST_SKIP() << "needs " << (rel) << " under " << CASCADE_SHARED_DIR         \
                                << " (the project's ../shared); absent here"
