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

}  // namespace cascade
