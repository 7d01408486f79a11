// http/file_cache.hpp - the bytes of small, settled files, per worker.
//
// A keep-alive request for a small file otherwise costs open, fstat,
// sendfile and close besides the stat that checks it.  The cache keeps the
// bytes of files up to kMaxFile and answers from memory while a fresh stat
// of the name shows the same file: device, inode, size, mtime and ctime to
// the nanosecond.  Any write changes ctime, so a changed file is read anew.
// File timestamps are coarse (a few milliseconds), so two writes of the same
// size could share one; a file changed within the last `hot_ms` is therefore
// never cached - by the time it is, a later write would show a later ctime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unordered_map>

namespace preforkd::http {

class FileCache {
public:
    static constexpr std::size_t kMaxFile = 16 * 1024;
    static constexpr std::size_t kMaxBytes = 512 * 1024;
    static constexpr std::int64_t kHotMs = 2000;

    // The cached bytes of `key` if `st` (a stat taken now) still describes
    // the file they were read from; null otherwise.
    std::shared_ptr<const std::string> find(const std::string& key, const struct stat& st) const;

    // Whether a file with `st` may be cached at wall-clock time `now_ns`.
    static bool cacheable(const struct stat& st, std::int64_t now_ns,
                          std::int64_t hot_ms = kHotMs) noexcept;

    // Keeps `bytes` for `key`; the whole cache is dropped when it would
    // grow past kMaxBytes (simple, and a working set that large does not
    // belong in a per-worker cache anyway).
    std::shared_ptr<const std::string> store(const std::string& key, const struct stat& st,
                                             std::string bytes);

    std::size_t bytes() const noexcept { return bytes_; }

private:
    struct Entry {
        dev_t dev;
        ino_t ino;
        off_t size;
        timespec mtime;
        timespec ctime;
        std::shared_ptr<const std::string> bytes;
    };
    std::unordered_map<std::string, Entry> entries_;
    std::size_t bytes_ = 0;
};

}  // namespace preforkd::http
