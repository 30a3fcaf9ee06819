# Shared by scripts/test and scripts/demo (source it, don't run it).
# Provides: EDDY_ROOT, EDDY_PACKAGES, eddy_install_packages, eddy_generator, eddy_banner.

EDDY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages the build needs. A fresh machine has none of the libraries.
EDDY_PACKAGES=(build-essential cmake g++ clang catch2 liburing-dev libfmt-dev libbenchmark-dev
               pkg-config ninja-build)

# Install whichever of EDDY_PACKAGES is missing; do nothing (and touch no network) otherwise.
eddy_install_packages() {
    local missing=() pkg
    for pkg in "${EDDY_PACKAGES[@]}"; do
        # Not `dpkg -s | grep -q`: grep -q exits at the first match, dpkg then dies of SIGPIPE
        # and, under pipefail, an installed package would look missing.
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    echo "eddy: installing missing packages: ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "eddy: missing packages (${missing[*]}) and neither root nor sudo" >&2
            return 1
        fi
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# CMake generator: Ninja when available (it is in EDDY_PACKAGES), else Unix Makefiles.
eddy_generator() {
    if command -v ninja >/dev/null 2>&1; then echo Ninja; else echo "Unix Makefiles"; fi
}

# Configure into $1 with generator $2; wipe a build dir made by another generator first.
# Remaining arguments go to cmake.
eddy_configure() {
    local dir="$1" gen="$2"
    shift 2
    if [[ -f "$dir/CMakeCache.txt" ]] && ! grep -qx "CMAKE_GENERATOR:INTERNAL=$gen" "$dir/CMakeCache.txt"; then
        echo "eddy: $dir was configured with another generator, removing it"
        rm -rf "$dir"
    fi
    cmake -S "$EDDY_ROOT" -B "$dir" -G "$gen" "$@"
}

eddy_banner() {
    local line="=================================================================================="
    printf '\n%s\n== %s\n%s\n' "$line" "$*" "$line"
}
