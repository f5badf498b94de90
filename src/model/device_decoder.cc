#include "model/device_decoder.h"

#include "core/error.h"

namespace cascade {

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::Cpu;
  if (s == "cuda") return Device::Cuda;
  fail("--device: '", s, "' is not a device (cpu or cuda)");
}

DType parse_compute_dtype(const std::string& s) {
  if (s == "f32" || s == "float32") return DType::F32;
  if (s == "fp16" || s == "f16" || s == "float16") return DType::F16;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  fail("--dtype: '", s, "' is not a compute dtype (f32, fp16 or bf16)");
}

std::string device_name(Device d) { return d == Device::Cuda ? "cuda" : "cpu"; }

void check_ada_on_gpu(const AdaOptions& o) {
  const char* cpu = ": use --device cpu for it";
  if (o.mode.mode != select::Mode::full && o.mode.mode != select::Mode::cascade)
    fail("--select ", select::to_string(o.mode), " is not yet on the GPU (full and cascade are)", cpu);
  if (o.select.rule != select::Rule::greedy) fail("--rule all-earlier is not yet on the GPU (greedy is)", cpu);
  if (o.measure_error || o.compare_full) fail("the study's measurements (attention error, Jaccard against full) are not yet on the GPU", cpu);
}

}  // namespace cascade
