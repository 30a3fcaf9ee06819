# cmake -P run.cmake: build and run the package consumer against eddy.
#   MODE=find_package      install EDDY_BINARY_DIR into WORK_DIR/stage, consume with find_package
#   MODE=add_subdirectory  consume EDDY_SOURCE_DIR with add_subdirectory
# Inputs: MODE EDDY_SOURCE_DIR EDDY_BINARY_DIR WORK_DIR GENERATOR CXX BUILD_TYPE. Everything is
# written under WORK_DIR (in the build tree); any failing step fails the test.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS MODE EDDY_SOURCE_DIR WORK_DIR GENERATOR CXX)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "run.cmake: ${var} is not set")
    endif()
endforeach()
if(NOT BUILD_TYPE)
    set(BUILD_TYPE RelWithDebInfo)
endif()

function(step)
    string(REPLACE ";" " " shown "${ARGN}")
    message(STATUS "+ ${shown}")
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "step failed (${rc}): ${shown}")
    endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(build "${WORK_DIR}/build")
set(common -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
           -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)

if(MODE STREQUAL "find_package")
    if(NOT EDDY_BINARY_DIR)
        message(FATAL_ERROR "run.cmake: EDDY_BINARY_DIR is not set")
    endif()
    set(stage "${WORK_DIR}/stage")
    step("${CMAKE_COMMAND}" --install "${EDDY_BINARY_DIR}" --prefix "${stage}" --config "${BUILD_TYPE}")
    step("${CMAKE_COMMAND}" -S "${EDDY_SOURCE_DIR}/tests/package" -B "${build}" ${common}
         "-DCMAKE_PREFIX_PATH=${stage}")
    # The consumer must have found the staged package, not some other eddy on the machine.
    file(STRINGS "${build}/CMakeCache.txt" eddy_dir REGEX "^eddy_DIR:")
    string(FIND "${eddy_dir}" "${stage}/" at)
    if(NOT at GREATER -1)
        message(FATAL_ERROR "consumer found eddy outside the stage: ${eddy_dir}")
    endif()
    if(NOT EXISTS "${stage}/include/eddy/eddy.hpp")
        message(FATAL_ERROR "not installed: include/eddy/eddy.hpp")
    endif()
    foreach(file IN ITEMS eddyConfig.cmake eddyConfigVersion.cmake eddyTargets.cmake Finduring.cmake)
        file(GLOB_RECURSE found "${stage}/*/cmake/eddy/${file}")
        if(NOT found)
            message(FATAL_ERROR "not installed: <libdir>/cmake/eddy/${file}")
        endif()
    endforeach()
elseif(MODE STREQUAL "add_subdirectory")
    step("${CMAKE_COMMAND}" -S "${EDDY_SOURCE_DIR}/tests/package/subdir" -B "${build}" ${common}
         "-DEDDY_SOURCE_DIR=${EDDY_SOURCE_DIR}")
else()
    message(FATAL_ERROR "run.cmake: unknown MODE '${MODE}'")
endif()

step("${CMAKE_COMMAND}" --build "${build}" --parallel 2)
step("${build}/app")
message(STATUS "package consumer (${MODE}) built and ran")
