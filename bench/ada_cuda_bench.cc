// ADA prefill and decode against exact attention on the same GPU engine (BENCHMARKS.md "GPU: ADA
// prefill and decode").
// Loads a checkpoint once, moves it to the GPU, and for each prompt length T and representative
// fraction f prints one JSON line: exact and ADA prefill (median wall ms of a synchronising forward
// with last_only, over --reps after one warm-up), the ADA prefill's device time in selection
// (normalisation + Gram + rounds, from the selection's CUDA events) and in the attention kernel (CUDA
// events around every layer's kernel, exact and ADA alike), the measured r/T per layer, decode tokens/s
// of --gen tokens after the prefill (and the attention kernels' device time per decoded token) and the
// KV-cache bytes of both.
//
// How r/T is set: random weights make every token its own representative (r ~ T), so the prompt is
// built with planted duplicates: round(f T) positions (0 among them, spread at random) carry distinct
// random ids and every other position repeats an id seen before it. On a model without learned
// position embeddings (GPT-J, rotary) a repeated id has X_0 equal to its first occurrence's (rho = 1),
// and under queries=reps its sub-layer output is copied from that parent, so its residual stream stays
// equal to the parent's at every layer: r = f T exactly at every layer. With learned positions (GPT-2)
// the repeat differs by its position embedding, so r/T is whatever the selection finds (printed).
// The exact prefill runs on the same prompt. Decoded tokens follow the same rule (new id with
// probability f).
//
// --attention-kernel names who runs the exact prefill's plain causal attention (ops::AttentionKernel;
// ADA's representatives always run Cascade's kernel). --cuda-graphs on replays captured passes where
// they apply (both methods' decoding steps); the attention kernels' device times are then not taken
// (off, the default, times them and launches every kernel).
// Usage: ada_cuda_bench --model DIR [--dtype fp16] [--tau 0.3] [--select cascade] [--queries reps|all] [--reps 5] [--gen 64]
//                       [--attention-kernel auto|cascade|cudnn] [--cuda-graphs on|off] T:f [T:f ...]
// Bad arguments: one line on stderr and exit code 2 (bench/bad_input_check.cmake tests it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/ada_attention.h"
#include "core/error.h"
#include "cuda/runtime.h"
#include "model/model.h"

using namespace cascade;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<int32_t> planted(int64_t n, double f, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(vocab - 1));
  const int64_t u = std::max<int64_t>(1, std::llround(f * double(n)));
  std::vector<int64_t> order(static_cast<size_t>(n - 1));
  for (int64_t i = 0; i < n - 1; ++i) order[size_t(i)] = i + 1;
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<char> fresh(static_cast<size_t>(n), 0);
  fresh[0] = 1;
  for (int64_t i = 0; i < u - 1 && i < n - 1; ++i) fresh[size_t(order[size_t(i)])] = 1;
  std::vector<int32_t> ids(static_cast<size_t>(n)), pool;
  for (int64_t i = 0; i < n; ++i) {
    if (fresh[size_t(i)]) {
      int32_t t;
      do t = tok(rng);
      while (std::find(pool.begin(), pool.end(), t) != pool.end());
      pool.push_back(t);
      ids[size_t(i)] = t;
    } else {
      ids[size_t(i)] = pool[size_t(rng() % pool.size())];
    }
  }
  return ids;
}

// The number a whole argument spells (std::stod and std::stoll read a prefix); std::invalid_argument or
// std::out_of_range otherwise.
template <typename N>
N whole(const std::string& v) {
  size_t used = 0;
  N x;
  if constexpr (std::is_same_v<N, double>) x = std::stod(v, &used);
  else x = std::stoll(v, &used);
  if (used != v.size()) throw std::invalid_argument(v);
  return x;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, dtype = "fp16", sel = "cascade", queries = "reps", kernel = "auto", graphs = "off";
  double tau = 0.3;
  int reps = 5, gen_asked = 64;
  std::vector<std::pair<int64_t, double>> cases;
  // Bad input (an unknown argument, a missing or malformed value): one line on stderr, exit code 2.
  auto bad = [](const std::string& what) {
    std::fprintf(stderr, "ada_cuda_bench: %s\n", what.c_str());
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) == 0 && i + 1 >= argc) return bad(a + ": a value is missing");
    auto next = [&] { return std::string(argv[++i]); };
    try {
      if (a == "--model") model = next();
      else if (a == "--dtype") dtype = next();
      else if (a == "--tau") tau = whole<double>(next());
      else if (a == "--select") sel = next();
      else if (a == "--queries") queries = next();
      else if (a == "--reps") reps = int(whole<int64_t>(next()));
      else if (a == "--gen") gen_asked = int(whole<int64_t>(next()));
      else if (a == "--attention-kernel") kernel = next();
      else if (a == "--cuda-graphs") graphs = next();
      else {
        const auto c = a.find(':');
        if (c == std::string::npos) return bad("unknown argument " + a + " (T:f for a prompt of T tokens, r/T = f)");
        cases.push_back({whole<int64_t>(a.substr(0, c)), whole<double>(a.substr(c + 1))});
      }
    } catch (const std::logic_error&) {  // std::stod / std::stoll: not a number, or out of range
      return bad("not a number in " + a + (a.rfind("--", 0) == 0 ? " " + std::string(argv[i]) : ""));
    }
  }
  if (graphs != "on" && graphs != "off") return bad("--cuda-graphs: on or off, not " + graphs);
  if (reps < 1 || gen_asked < 0) return bad("--reps at least 1 and --gen at least 0");
  for (const auto& [T, f] : cases)
    if (T < 1 || !(f > 0 && f <= 1)) return bad("a case T:f needs T >= 1 and f in (0, 1]");
  try {
    if (!cuda::gpu_available()) {
      std::printf("{\"skipped\": \"no GPU\"}\n");
      return 0;
    }
    auto m = Model::load(model);
    m->to_device(Device::Cuda, parse_compute_dtype(dtype), graphs == "on", ops::parse_attention_kernel(kernel));
    AdaOptions o;
    o.select.tau = tau;
    o.mode = select::parse_mode(sel);
    if (queries != "reps" && queries != "all") throw Error("--queries: reps or all, not " + queries);
    o.queries = queries == "all" ? AdaQueries::all : AdaQueries::reps;
    const AdaAttentionFactory ada(o);
    const int64_t L = m->spec().n_layers;
    for (const auto& [T, f] : cases) {
      const int gen = int(std::min<int64_t>(gen_asked, m->spec().max_positions - T));  // decode within the context
      const std::vector<int32_t> all = planted(T + gen, f, m->spec().vocab_size, 1234 + uint64_t(T));
      const std::span<const int32_t> prompt(all.data(), size_t(T));
      nlohmann::json row{{"model", model}, {"dtype", dtype}, {"T", T}, {"f", f}, {"tau", tau}, {"select", sel}, {"queries", queries},
                         {"attention_kernel", kernel}, {"cuda_graphs", graphs}, {"layers", L}, {"reps", reps}, {"gen", gen}};
      for (const bool use_ada : {false, true}) {
        const std::string k = use_ada ? "ada" : "exact";
        // A method that fails at this length (out of the GPU's memory) leaves its error in the row, and the
        // other method's figures stand (a failed cudaMalloc leaves the context usable).
        try {
          std::vector<double> pre, dec, selection, attention, dec_att;
          std::vector<double> r_layer(size_t(L), 0);
          int64_t bytes_prefill = 0, bytes_end = 0;
          for (int rep = 0; rep <= reps; ++rep) {
            Sequence s = m->new_sequence(use_ada ? &ada : nullptr);
            auto t0 = Clock::now();
            m->forward(s, prompt, true);
            const double tp = std::chrono::duration<double>(Clock::now() - t0).count();
            const PhaseTimes ph = s.times();
            bytes_prefill = s.cache_bytes();
            if (use_ada)
              for (int64_t l = 0; l < L; ++l) r_layer[size_t(l)] = double(s.trace(int(l))->selection.reps.size()) / double(T);
            t0 = Clock::now();
            for (int g = 0; g < gen; ++g) m->forward(s, std::span<const int32_t>(&all[size_t(T + g)], 1), true);
            const double td = std::chrono::duration<double>(Clock::now() - t0).count();
            bytes_end = s.cache_bytes();
            if (rep > 0 && gen) dec_att.push_back((s.times().attention - ph.attention) * 1e3 / gen);
            if (rep == 0) continue;
            pre.push_back(tp * 1e3);
            selection.push_back(ph.selection * 1e3);
            attention.push_back(ph.attention * 1e3);
            if (gen) dec.push_back(double(gen) / td);
          }
          row[k] = {{"prefill_ms", median(pre)}, {"prefill_ms_all", pre}, {"selection_ms", median(selection)},
                    {"attention_ms", median(attention)}, {"decode_tok_s", gen ? median(dec) : 0.0},
                    {"decode_attention_ms_per_token", gen ? median(dec_att) : 0.0},
                    {"cache_bytes_prefill", bytes_prefill}, {"cache_bytes_end", bytes_end}};
          if (use_ada) row[k]["r_over_T"] = r_layer;
        } catch (const std::exception& e) {
          row[k] = {{"error", e.what()}};
        }
      }
      std::printf("%s\n", row.dump().c_str());
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ada_cuda_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
