// The `cascade` command line inside the module, for `python -m cascade` (python/cascade/__main__.py):
// tools/cli's run(), the one place of the commands, so a pip-installed package is a complete install
// with the same help, output and exit codes as the executable. And what the build and machine offer:
// whether this module has the CUDA backend and whether a GPU is there (the GPU tests skip on it).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "cli.h"
#include "common.h"
#include "cuda/runtime.h"

namespace cascade::py {

namespace {

// Runs `cascade args...` with the GIL released; the command writes to the process's stdout and
// stderr (file descriptors 1 and 2), flushed before the exit code is returned.
int cli_main(std::vector<std::string> args) {
  std::vector<char*> argv;
  std::string program = "cascade";
  argv.push_back(program.data());
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = run_released([&] { return cli::run(int(argv.size()) - 1, argv.data()); });
  std::cout.flush();
  std::fflush(stdout);
  std::fflush(stderr);
  return rc;
}

}  // namespace

void bind_cli(nb::module_& m) {
  m.def("cli_main", &cli_main, nb::arg("args"));
  m.def("built_with_cuda", &cuda::built_with_cuda,
        "Whether this installation has the CUDA backend (`pip install .` where nvcc was found).");
  m.def("cuda_available", &cuda::gpu_available,
        "Whether load(..., device=\"cuda\") can run here: a CUDA build and a usable GPU.");
}

}  // namespace cascade::py
