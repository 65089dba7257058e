# ctest driver: install lmkit from the build tree into a fresh prefix, then configure, build and
# run the consumer project against it (MODE=installed) or against the source tree (MODE=subdirectory).
# Inputs: LMKIT_BUILD_DIR, LMKIT_SOURCE_DIR, WORK_DIR, MODE.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE result OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGN}\n${out}")
  endif()
  message("${out}")
endfunction()

if(MODE STREQUAL "installed")
  run(${CMAKE_COMMAND} --install "${LMKIT_BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
  set(how -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  set(how -DLMKIT_SOURCE_DIR=${LMKIT_SOURCE_DIR})
endif()
run(${CMAKE_COMMAND} -S "${LMKIT_SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build" -DCMAKE_BUILD_TYPE=Release ${how})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer")
