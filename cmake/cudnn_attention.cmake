# cuDNN's fused attention (src/ops/attention_cudnn.cc), included with the CUDA backend. It needs
# cuDNN's headers (the CUDA toolkit's include folder or CUDNN_PATH) and cudnn-frontend's header-only
# C++ API (CUDNN_FRONTEND_INCLUDE_DIR, or the include folder that `pip install nvidia-cudnn-frontend`
# puts beside Python's packages). Nothing links against libcudnn: the frontend's dynamic loading
# opens it at run time, so a binary built here runs on a machine without cuDNN (Cascade's kernel
# then takes every case).
set(CASCADE_CUDNN_ENABLED OFF)
if(NOT CASCADE_WITH_CUDNN STREQUAL "OFF")
  find_path(CASCADE_CUDNN_INCLUDE cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ENV CUDNN_PATH PATH_SUFFIXES include)
  set(fe_hint ${CUDNN_FRONTEND_INCLUDE_DIR})
  if(NOT fe_hint)
    find_package(Python3 COMPONENTS Interpreter QUIET)
    if(Python3_Interpreter_FOUND)
      # find_spec locates the package without importing it (its module would load libcudnn).
      execute_process(
        COMMAND ${Python3_EXECUTABLE} -c
                "import importlib.util, os; s = importlib.util.find_spec('cudnn'); print(os.path.join(os.path.dirname(os.path.dirname(s.origin)), 'include') if s and s.origin else '')"
        OUTPUT_VARIABLE fe_hint OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    endif()
  endif()
  find_path(CASCADE_CUDNN_FRONTEND_INCLUDE cudnn_frontend.h HINTS ${fe_hint} NO_DEFAULT_PATH)
  if(CASCADE_CUDNN_INCLUDE AND CASCADE_CUDNN_FRONTEND_INCLUDE)
    set(CASCADE_CUDNN_ENABLED ON)
  elseif(CASCADE_WITH_CUDNN STREQUAL "ON")
    message(FATAL_ERROR "CASCADE_WITH_CUDNN=ON: cudnn.h (${CASCADE_CUDNN_INCLUDE}) or cudnn_frontend.h "
                        "(${CASCADE_CUDNN_FRONTEND_INCLUDE}) not found; pip install nvidia-cudnn-frontend or set "
                        "CUDNN_FRONTEND_INCLUDE_DIR")
  endif()
endif()
if(CASCADE_CUDNN_ENABLED)
  message(STATUS "Cascade: cuDNN attention ON (${CASCADE_CUDNN_FRONTEND_INCLUDE})")
  target_compile_definitions(cascade_core PRIVATE CASCADE_WITH_CUDNN=1 NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING=1)
  target_include_directories(cascade_core SYSTEM PRIVATE ${CASCADE_CUDNN_INCLUDE} ${CASCADE_CUDNN_FRONTEND_INCLUDE})
  target_link_libraries(cascade_core PUBLIC ${CMAKE_DL_LIBS})
  # Its headers are most of a unity batch's compile, and its names must not meet the engine's.
  set_source_files_properties(src/ops/attention_cudnn.cc PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
else()
  message(STATUS "Cascade: cuDNN attention OFF (CASCADE_WITH_CUDNN=${CASCADE_WITH_CUDNN}; cudnn.h: "
                 "${CASCADE_CUDNN_INCLUDE}, cudnn_frontend.h: ${CASCADE_CUDNN_FRONTEND_INCLUDE})")
endif()
