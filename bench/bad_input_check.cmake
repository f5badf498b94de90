# ada_cuda_bench's bad arguments (run by CTest: cmake -DBIN=... -P bad_input_check.cmake): each gives exit
# code 2 and one line on stderr naming the problem, before any model is loaded or GPU looked for.
set(cases
  "--cuda-graphs|maybe=--cuda-graphs: on or off, not maybe"
  "--tau=--tau: a value is missing"
  "--tau|abc=not a number in --tau abc"
  "--reps|3x=not a number in --reps 3x"
  "--reps|0=--reps at least 1"
  "2048:x=not a number in 2048:x"
  "2048:1.5=needs T >= 1 and f in"
  "foo=unknown argument foo")
foreach(c ${cases})
  string(FIND "${c}" "=" eq)
  string(SUBSTRING "${c}" 0 ${eq} args)
  math(EXPR from "${eq} + 1")
  string(SUBSTRING "${c}" ${from} -1 want)
  string(REPLACE "|" ";" args "${args}")
  execute_process(COMMAND ${BIN} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "^ada_cuda_bench: [^\n]*${want}[^\n]*\n$" OR NOT out STREQUAL "")
    message(FATAL_ERROR "ada_cuda_bench ${args}: exit ${rc}, stdout '${out}', stderr '${err}' (wanted exit 2 and '${want}')")
  endif()
endforeach()
