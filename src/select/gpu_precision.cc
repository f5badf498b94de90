// The Gram precisions' names (select/gpu_selection.h), shared by the CUDA and CPU-only builds: the
// option table, the benchmark and the tests spell them the same way.
#include "core/error.h"
#include "select/gpu_selection.h"

namespace cascade::select::gpu {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::f64:
      return "f64";
    case Precision::f32:
      return "f32";
    case Precision::tf32:
      return "tf32";
    case Precision::f16_certified:
      return "f16-certified";
  }
  return "?";
}

Precision parse_precision(const std::string& name, const std::string& label) {
  for (Precision p : {Precision::f64, Precision::f32, Precision::tf32, Precision::f16_certified})
    if (name == precision_name(p)) return p;
  fail(label, ": '", name, "' not in {f64,f32,tf32,f16-certified}");
}

}  // namespace cascade::select::gpu
