// ops::Rotary's inverse frequencies under rope scaling against a plain float64 statement of Hugging
// Face's formulas (transformers' _compute_default_rope_parameters, _compute_linear_scaling_rope_parameters
// and _compute_llama3_parameters), written here from those definitions:
//   default  f_i = theta^(-2i / dim), i < dim / 2
//   linear   f_i / factor
//   llama3   with the wavelength w_i = 2 pi / f_i, L = original_max / low_freq_factor and
//            H = original_max / high_freq_factor: f_i where w_i < H, f_i / factor where w_i > L, and
//            between them (1 - s) f_i / factor + s f_i, s = (original_max / w_i - low) / (high - low).
// HF and the engine compute in float32; the bound is a few float32 roundings of the result. Also read
// from config.json, both the transformers-5.x form (rope_parameters) and the 4.x form (rope_scaling).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "arch/arch_spec.h"
#include "ops/rotary.h"

namespace cascade {
namespace {

enum class Band { High, Medium, Low };  // llama3: kept, interpolated, divided by the factor

struct Reference {
  std::vector<double> inv_freq;
  std::vector<Band> band;
};

Reference hf_inv_freq(int64_t dim, double theta, const RopeScaling& s) {
  Reference r;
  for (int64_t i = 0; i < dim / 2; ++i) {
    const double f = 1.0 / std::pow(theta, double(2 * i) / double(dim));
    if (s.type == "linear") {
      r.inv_freq.push_back(f / s.factor);
      continue;
    }
    if (s.type != "llama3") {
      r.inv_freq.push_back(f);
      continue;
    }
    const double w = 2 * std::numbers::pi / f;
    const double low_wavelen = s.original_max_position / s.low_freq_factor;
    const double high_wavelen = s.original_max_position / s.high_freq_factor;
    // A wavelength within float32 rounding of a band edge would leave the band ambiguous.
    EXPECT_GT(std::fabs(w / low_wavelen - 1), 1e-4) << "i = " << i;
    EXPECT_GT(std::fabs(w / high_wavelen - 1), 1e-4) << "i = " << i;
    if (w < high_wavelen) {
      r.inv_freq.push_back(f);
      r.band.push_back(Band::High);
    } else if (w > low_wavelen) {
      r.inv_freq.push_back(f / s.factor);
      r.band.push_back(Band::Low);
    } else {
      const double smooth = (s.original_max_position / w - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      r.inv_freq.push_back((1 - smooth) * f / s.factor + smooth * f);
      r.band.push_back(Band::Medium);
    }
  }
  return r;
}

RopeScaling linear(double factor) {
  RopeScaling s;
  s.type = "linear";
  s.factor = factor;
  return s;
}

RopeScaling llama3(double factor, double low, double high, double original_max) {
  RopeScaling s;
  s.type = "llama3";
  s.factor = factor;
  s.low_freq_factor = low;
  s.high_freq_factor = high;
  s.original_max_position = original_max;
  return s;
}

void expect_matches(const std::vector<float>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 2e-6 * want[i]) << what << ": inverse frequency " << i;
}

size_t count(const std::vector<Band>& bands, Band b) { return size_t(std::count(bands.begin(), bands.end(), b)); }

TEST(RotaryScaling, DefaultAndLinearMatchHF) {
  for (const auto& [dim, theta] : {std::pair<int64_t, double>{16, 1e4}, {128, 1e4}, {64, 5e5}, {24, 500}}) {
    const std::string what = "dim " + std::to_string(dim) + " theta " + std::to_string(theta);
    const RopeScaling none;
    expect_matches(ops::Rotary(RotaryStyle::Half, dim, theta, none).inv_freq(), hf_inv_freq(dim, theta, none).inv_freq,
                   what + " default");
    for (double factor : {4.0, 8.0, 2.5})
      expect_matches(ops::Rotary(RotaryStyle::Half, dim, theta, linear(factor)).inv_freq(),
                     hf_inv_freq(dim, theta, linear(factor)).inv_freq, what + " linear " + std::to_string(factor));
  }
}

TEST(RotaryScaling, Llama3MatchesHFInEveryBand) {
  struct Case {
    int64_t dim;
    double theta;
    RopeScaling s;
  };
  // The llama_rope_llama3 fixture's heads, Llama 3.1's own settings, and a wider head at the fixture's
  // settings; each has frequencies in all three bands.
  for (const Case& c : {Case{16, 1e4, llama3(8, 1, 4, 64)}, Case{128, 5e5, llama3(8, 1, 4, 8192)},
                        Case{64, 1e4, llama3(8, 1, 4, 64)}, Case{64, 1e4, llama3(4, 2, 8, 256)}}) {
    const std::string what = "dim " + std::to_string(c.dim) + " original max " + std::to_string(c.s.original_max_position);
    const Reference want = hf_inv_freq(c.dim, c.theta, c.s);
    EXPECT_GT(count(want.band, Band::High), 0u) << what;
    EXPECT_GT(count(want.band, Band::Medium), 0u) << what;
    EXPECT_GT(count(want.band, Band::Low), 0u) << what;
    expect_matches(ops::Rotary(RotaryStyle::Half, c.dim, c.theta, c.s).inv_freq(), want.inv_freq, what);
  }
}

// The fixtures' settings as transformers 5.x writes them (rope_parameters) and as 4.x did (rope_theta
// and rope_scaling at top level, the type under "type" or "rope_type").
TEST(RotaryScaling, ConfigFormsGiveTheSameFrequencies) {
  using nlohmann::json;
  const json base = {{"model_type", "llama"},    {"vocab_size", 320},         {"hidden_size", 64},
                     {"num_hidden_layers", 2},   {"num_attention_heads", 4},  {"intermediate_size", 96},
                     {"max_position_embeddings", 128}};
  const json llama3_params = {{"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                              {"original_max_position_embeddings", 64}};
  const json linear_params = {{"factor", 4.0}};
  for (const auto& [type, params, want_scaling] :
       {std::tuple{"linear", linear_params, linear(4)}, std::tuple{"llama3", llama3_params, llama3(8, 1, 4, 64)}}) {
    const std::vector<double> want = hf_inv_freq(16, 1e4, want_scaling).inv_freq;
    json v5 = base, v4_type = base, v4_rope_type = base;
    v5["rope_parameters"] = params;
    v5["rope_parameters"]["rope_type"] = type;
    v5["rope_parameters"]["rope_theta"] = 1e4;
    for (json* v4 : {&v4_type, &v4_rope_type}) {
      (*v4)["rope_theta"] = 1e4;
      (*v4)["rope_scaling"] = params;
    }
    v4_type["rope_scaling"]["type"] = type;
    v4_rope_type["rope_scaling"]["rope_type"] = type;
    for (const auto& [form, cfg] : {std::pair{"5.x", v5}, std::pair{"4.x type", v4_type}, std::pair{"4.x rope_type", v4_rope_type}}) {
      const ArchSpec a = arch_from_config(cfg, std::string(type) + " " + form);
      EXPECT_EQ(a.rope_scaling.type, type) << form;
      expect_matches(a.rotary_embedding().inv_freq(), want, std::string(type) + " config " + form);
    }
  }
}

}  // namespace
}  // namespace cascade
