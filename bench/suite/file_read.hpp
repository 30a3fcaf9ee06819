#pragma once
// The file_read workload's shared pieces (file_read.cpp has the workload and its baselines,
// file_read_eddy.cpp eddy's readers, file_read_tokio.cpp Tokio's).

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace suite::file_read {

inline constexpr int file_count = 1000;
inline constexpr std::size_t file_size = 64 * 1024;
inline constexpr int max_in_flight = 64;

/// The files to read: created in a fresh temporary directory, read once to warm the page cache,
/// removed with the directory on destruction.
class file_set {
public:
    file_set();
    file_set(const file_set&) = delete;
    file_set& operator=(const file_set&) = delete;
    ~file_set();

    [[nodiscard]] const std::vector<std::string>& paths() const noexcept { return paths_; }

private:
    std::string dir_;
    std::vector<std::string> paths_;
};

/// Opens, reads (up to file_size bytes into `buf`) and closes `path` with blocking calls;
/// returns the bytes read. Throws std::system_error when the open fails.
std::size_t read_blocking(const std::string& path, std::byte* buf);

/// Throws unless `total` is every byte of every file.
void check_total(std::string_view runtime, std::size_t total);

/// A reader measured by the workload: `measure` returns the median ns of the repetitions.
struct reader {
    std::string_view runtime;
    std::function<double(const file_set&)> measure;
    /// For a reader built apart from the suite: whether it is there (empty: always). When it is
    /// not, the row is skipped and `missing` is said on stderr.
    std::function<bool()> available = {};
    std::string_view missing = {};
};

/// eddy's readers, one per io backend.
const std::vector<reader>& eddy_readers();

/// Tokio's reader (a separate program, see file_read_tokio.cpp).
const reader& tokio_reader();

} // namespace suite::file_read
