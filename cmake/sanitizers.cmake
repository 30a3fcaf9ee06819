# eddy_set_sanitizers(<target>): instrument one of the project's own targets according to
# EDDY_SANITIZE ("" | "address" = address+undefined | "thread"). Never applied to the INTERFACE
# target, so consumers are not forced into a sanitizer runtime.
include_guard(GLOBAL)

function(eddy_set_sanitizers target)
    if("${EDDY_SANITIZE}" STREQUAL "address")
        # Without UBSan's vptr check: before a virtual call on a type it has not seen yet, it
        # probes the object's memory through a pipe, and in the tests that use up every file
        # descriptor (accept and open under EMFILE) the probe fails and it reports a false
        # "invalid vptr" (seen on shared_ptr's control block and std::error_category).
        set(flags -fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer
                  -fno-sanitize-recover=all)
    elseif("${EDDY_SANITIZE}" STREQUAL "thread")
        set(flags -fsanitize=thread -fno-omit-frame-pointer)
    elseif("${EDDY_SANITIZE}" STREQUAL "")
        return()
    else()
        message(FATAL_ERROR "EDDY_SANITIZE: unknown value '${EDDY_SANITIZE}'")
    endif()
    target_compile_options(${target} PRIVATE ${flags})
    target_link_options(${target} PRIVATE ${flags})
endfunction()
