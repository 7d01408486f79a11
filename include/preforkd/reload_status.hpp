// reload_status.hpp - the outcome of the last reload, for `preforkd -s reload`.
//
// A signal carries no answer, so the master writes the outcome of every
// reload it handles to a small file beside its pid file (PIDFILE.reload):
// its pid, how many reloads it has handled, whether this one was applied,
// and the message it logged.  `preforkd -s reload` notes the count, sends
// SIGHUP and waits for the count to move, then prints the message and exits
// 0 or 1.  The file is replaced by rename, so a reader never sees half of
// one, and the master removes it when it exits.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

namespace preforkd::reload_status {

struct Outcome {
    pid_t master = 0;
    unsigned long count = 0;   // reloads the master has handled, this one included
    bool ok = false;
    std::string message;       // "generation 2 started", or why it was rejected
};

// PIDFILE.reload
std::string path_for(const std::string& pid_file);

// Writes `o` to `path` (mode 0644) through a temporary file renamed into
// place.  Throws std::system_error naming the call and the path.
void write(const std::string& path, const Outcome& o);

// The outcome in `path`; nothing when the file is missing or malformed.
std::optional<Outcome> read(const std::string& path);

void remove(const std::string& path) noexcept;

}  // namespace preforkd::reload_status
