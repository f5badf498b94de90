#!/usr/bin/env bash
# The Python package with the CUDA backend on the device machine: `pip install .` built there (no
# network: --no-build-isolation with the image's scikit-build-core and nanobind), then the GPU tests
# (python/tests/test_cuda.py), the command-line tests and examples/compare_methods.py on stories260K.
# With SMOL_PARTS (SmolLM2's GGUF in parts, as scripts/device_frontier.sh carries it; parts a and b
# copied by its PART=a and PART=b calls), also the example as written (SmolLM2 on the GPU, the model
# where scripts/get-models puts it) and scripts/bench_python_logits.py at T = 8192.
# The image lacks the engine's Debian dependencies, so DEPS is a tarball of them made here (headers
# of nlohmann-json and CLI11 with their CMake files under share/cmake, OpenBLAS's OpenMP build with
# cblas.h under include/openblas and its libraries under lib/):
#   D=$(mktemp -d); mkdir -p $D/include/openblas $D/lib $D/share/cmake
#   cp -r /usr/include/nlohmann /usr/include/CLI $D/include; cp -r /usr/share/cmake/{nlohmann_json,CLI11} $D/share/cmake
#   cp /usr/include/x86_64-linux-gnu/openblas-openmp/*.h $D/include/openblas
#   cp -L /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 /lib/x86_64-linux-gnu/lib{gfortran.so.5,quadmath.so.0} $D/lib
#   tar czf DEPS -C $D .
# Usage (device, repo root): bash scripts/device_python.sh DEPS OUT_DIR [SMOL_PARTS]
set -uo pipefail
DEPS=$1; OUT=$2; SMOL_PARTS=${3:-}
D=/tmp/cascade-deps
mkdir -p "$D" "$OUT" && tar xzf "$DEPS" -C "$D"
# A call brings back at most 8 files: at exit, the logs travel in one archive beside the figures.
pack() {
  tar czf /tmp/python_logs.tar.gz -C "$OUT" --exclude '*.png' --exclude '*.json' --exclude env.txt . &&
    mv /tmp/python_logs.tar.gz "$OUT/" &&
    find "$OUT" -mindepth 1 -maxdepth 1 ! -name '*.png' ! -name '*.json' ! -name env.txt ! -name python_logs.tar.gz -exec rm -rf {} +
}
trap pack EXIT
CUBLAS_PIP=$(python3 -c "import nvidia.cublas as m; print(list(m.__path__)[0] + '/lib')" 2>/dev/null || true)
export CMAKE_PREFIX_PATH=$D LD_LIBRARY_PATH="$D/lib:/usr/local/cuda/lib64:${CUBLAS_PIP}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH=/usr/local/cuda/bin:$PATH PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc; date -u
  python3 -c "import sys, scikit_build_core, nanobind, torch; print(sys.version.split()[0], 'scikit-build-core', scikit_build_core.__version__, 'nanobind', nanobind.__version__, 'torch', torch.__version__)"
  c++ --version | head -1; nvcc --version | tail -1; } 2>&1 | tee "$OUT/env.txt"
t0=$SECONDS
CASCADE_WITH_CUDA=ON python3 -m pip install -v --no-build-isolation --no-deps . -C build.tool-args=-j16 \
  -C cmake.define.CASCADE_OPENBLAS_OPENMP=$D/lib/libopenblas.so.0 -C cmake.define.CBLAS_INCLUDE_DIR=$D/include/openblas \
  > "$OUT/pip.log" 2>&1
rc=$?
echo "pip install . with CUDA: rc=$rc, $((SECONDS - t0)) s" | tee -a "$OUT/env.txt"
[ $rc = 0 ] || { grep -E "error|Error|CMake" "$OUT/pip.log" | head -40; exit 1; }
cd /tmp && python3 -c "import cascade; print('built_with_cuda', cascade.built_with_cuda(), 'cuda_available', cascade.cuda_available())" | tee -a "$OUT/env.txt"
# libstdc++'s own code (locale, iostreams), if the image's compiler linked it into the module, must
# not be exported (python/CMakeLists.txt): 0 expected.
so=$(python3 -c 'import cascade._cascade as m; print(m.__file__)')
echo "exported libstdc++ internals: $(nm -D --defined-only "$so" | c++filt | grep -cE 'std::(locale|ios_base|codecvt|basic_ostream)')" | tee -a "$OUT/env.txt"
cd - > /dev/null
timeout 240 python3 -m pytest -q -rs -s python/tests/test_cuda.py python/tests/test_cli.py python/tests/test_model.py 2>&1 | tee "$OUT/pytest.log" | tail -40
timeout 60 python3 examples/compare_methods.py --model models/stories260K/stories260K.bin --tail 8 --plot "$OUT/compare_stories260K.png" 2>&1 | tee "$OUT/example.log"
[ -n "$SMOL_PARTS" ] || exit 0
source "$(dirname "$0")/device_smollm2_join.sh"
smol=$HOME/.cache/cascade/models/SmolLM2-135M-Instruct.Q4_1.gguf
join_smollm2 "$SMOL_PARTS" "$smol" || exit 1
timeout 120 python3 examples/compare_methods.py --plot "$OUT/compare_smollm2.png" 2>&1 | tee "$OUT/example_smollm2.log"
timeout 180 python3 scripts/bench_python_logits.py --model "$smol" --tokens 8192 --json "$OUT/python_logits.json" 2>&1 |
  tee "$OUT/python_logits.log"
