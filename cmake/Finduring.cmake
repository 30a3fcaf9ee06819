# Finduring: locate liburing (Debian's liburing-dev ships no CMake package, only a .pc file).
#
# Result: imported target eddy::uring, and uring_FOUND, uring_VERSION, URING_INCLUDE_DIR,
# URING_LIBRARY. Hints: URING_ROOT (CMake's <Package>_ROOT), CMAKE_PREFIX_PATH, pkg-config.
# Installed next to eddyConfig.cmake, which uses it so that find_package(eddy) alone suffices.

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
    pkg_check_modules(PC_URING QUIET liburing)
endif()

find_path(URING_INCLUDE_DIR NAMES liburing.h HINTS ${PC_URING_INCLUDEDIR} ${PC_URING_INCLUDE_DIRS})
find_library(URING_LIBRARY NAMES uring HINTS ${PC_URING_LIBDIR} ${PC_URING_LIBRARY_DIRS})

if(PC_URING_VERSION)
    set(uring_VERSION "${PC_URING_VERSION}")
elseif(URING_INCLUDE_DIR AND EXISTS "${URING_INCLUDE_DIR}/liburing/io_uring_version.h")
    file(STRINGS "${URING_INCLUDE_DIR}/liburing/io_uring_version.h" _uring_ver
         REGEX "#define IO_URING_VERSION_(MAJOR|MINOR)")
    string(REGEX REPLACE ".*MAJOR[ \t]+([0-9]+).*" "\\1" _uring_major "${_uring_ver}")
    string(REGEX REPLACE ".*MINOR[ \t]+([0-9]+).*" "\\1" _uring_minor "${_uring_ver}")
    set(uring_VERSION "${_uring_major}.${_uring_minor}")
    unset(_uring_ver)
    unset(_uring_major)
    unset(_uring_minor)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(uring
    REQUIRED_VARS URING_LIBRARY URING_INCLUDE_DIR
    VERSION_VAR uring_VERSION)
mark_as_advanced(URING_INCLUDE_DIR URING_LIBRARY)

if(uring_FOUND AND NOT TARGET eddy::uring)
    # GLOBAL so that eddy::eddy stays linkable from any directory when eddy is added with
    # add_subdirectory() (its INTERFACE_LINK_LIBRARIES names this target).
    add_library(eddy::uring UNKNOWN IMPORTED GLOBAL)
    set_target_properties(eddy::uring PROPERTIES
        IMPORTED_LOCATION "${URING_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${URING_INCLUDE_DIR}")
endif()
