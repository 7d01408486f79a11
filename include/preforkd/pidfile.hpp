// pidfile.hpp - the master's pid file: written atomically, locked, ours.
//
// The file is locked with flock(2) for the master's whole life.  A lock that
// can be taken means the file is stale, whatever pid it holds: a pid that an
// unrelated process reused is never mistaken for a running master.
#pragma once

#include <string>
#include <sys/types.h>

#include "preforkd/fd.hpp"

namespace preforkd::pidfile {

// The pid of the master holding `path` locked.  Throws std::runtime_error
// with a clear message when the file is missing, unreadable, or stale.
pid_t running_master(const std::string& path);

// Whether a live master holds `path`; fills `pid` when so.
bool is_locked(const std::string& path, pid_t& pid);

class PidFile {
public:
    PidFile() = default;
    // Writes getpid() to `path` through a locked temporary file renamed into
    // place.  Throws when a live master holds the file or a syscall fails.
    explicit PidFile(const std::string& path);
    // The pid file this very process already holds locked through
    // `locked`, handed over across an in-place upgrade (upgrade.hpp): the
    // lock travels with the descriptor, so the file is never stale between.
    static PidFile adopt(const std::string& path, Fd locked);
    PidFile(PidFile&&) noexcept = default;
    PidFile& operator=(PidFile&&) noexcept = default;
    ~PidFile();

    // Removes the file if it is still ours (same inode), releases the lock.
    void remove() noexcept;
    // Closes the descriptor without removing the file (forked children).
    void forget() noexcept { fd_.reset(); path_.clear(); }
    const std::string& path() const noexcept { return path_; }
    int descriptor() const noexcept { return fd_.get(); }

private:
    std::string path_;
    Fd fd_;
};

}  // namespace preforkd::pidfile
