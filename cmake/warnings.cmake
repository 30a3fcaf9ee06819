# The project's warning policy, for its own targets only (tests, bench, examples, and the header
# self-containment check). Never applied to the INTERFACE target: consumers keep their own flags.
#   eddy_set_warnings(<target>)        on one target
#   eddy_set_directory_warnings()      on every target of the current directory created from now on
#                                      or at generate time (used for eddy_verify_interface_header_sets)
include_guard(GLOBAL)

function(_eddy_warning_flags out)
    set(flags -Wall -Wextra -Wpedantic -Werror)
    # g++ 12 with -fsanitize=address,undefined reports a false -Wmaybe-uninitialized inside
    # libstdc++ (std::function / std::regex, reached through Catch2). Silence that one warning in
    # sanitizer builds instead of dropping -Werror (DESIGN.md, "Practical notes").
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND NOT "${EDDY_SANITIZE}" STREQUAL "")
        list(APPEND flags -Wno-maybe-uninitialized)
    endif()
    set(${out} ${flags} PARENT_SCOPE)
endfunction()

function(eddy_set_warnings target)
    _eddy_warning_flags(flags)
    target_compile_options(${target} PRIVATE ${flags})
endfunction()

function(eddy_set_directory_warnings)
    _eddy_warning_flags(flags)
    set_property(DIRECTORY APPEND PROPERTY COMPILE_OPTIONS ${flags})
endfunction()
