# A Google Benchmark program's bad arguments (run by CTest: cmake -DBIN=... -DNAME=... -P
# benchmark_args_check.cmake; bench/benchmark_main.h): an unknown argument and a filter that is not a
# regular expression each give exit code 2, one line on stderr naming the problem, and nothing on stdout.
function(expect_refusal want)
  execute_process(COMMAND ${BIN} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "^${NAME}: ${want}\n$" OR NOT out STREQUAL "")
    message(FATAL_ERROR "${NAME} ${ARGN}: exit ${rc}, stdout '${out}', stderr '${err}' (wanted exit 2 and '${want}')")
  endif()
endfunction()
expect_refusal("unknown argument --warmup" --warmup 3)
expect_refusal("--benchmark_filter \\( is not a regular expression" "--benchmark_filter=(")
