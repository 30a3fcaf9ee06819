# eddy_set_sanitizers(<target>): instrument one of the project's own targets according to
# EDDY_SANITIZE ("" | "address" = address+undefined | "thread"). Never applied to the INTERFACE
# target, so consumers are not forced into a sanitizer runtime.
include_guard(GLOBAL)

function(eddy_set_sanitizers target)
    if("${EDDY_SANITIZE}" STREQUAL "address")
        set(flags -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
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
