// access_log.hpp - one line per request, Common or Combined Log Format.
//
// The master opens the file (O_APPEND, before privileges drop) and workers
// inherit it; a worker writes whole lines, one or many per write(2), so
// lines from many workers never interleave.  On reopen the master sends the
// new descriptor to every worker over its channel and bumps an epoch in the
// scoreboard; a worker that sees a new epoch takes the descriptor before its
// next write.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "preforkd/config.hpp"
#include "preforkd/fd.hpp"

namespace preforkd::access_log {

enum class Mode { off, file, syslog };

Mode mode_of(const config::Config& config);

// The syslog(3) priority of an access line in mode syslog: info, at
// log.access_syslog_facility, so that syslog can route the access log
// apart from the diagnostics (which use log.syslog_facility).
int syslog_priority(const config::Config& config);

// Opens the file for `config` (mode file), or an empty Fd otherwise.  A
// file it creates gets mode 0640 and, as root, group adm (what logrotate's
// `create` line gives the next one).
// Throws std::system_error naming open and the path.
Fd open(const config::Config& config);

struct Entry {
    std::string_view remote;        // client address
    std::string_view request_line;  // "GET / HTTP/1.1", "-" when none
    int status = 0;
    std::uint64_t bytes = 0;        // body bytes sent
    std::string_view referer;
    std::string_view user_agent;
    time_t when = 0;
    std::int64_t micros = 0;        // time taken
};

// The line, newline included.
std::string format(const Entry& entry, config::AccessFormat format);
// The same line, appended to `out` (a worker's buffer of pending lines).
void append(std::string& out, const Entry& entry, config::AccessFormat format);

// Sends `fd` over the unix datagram socket `channel` (SCM_RIGHTS).
bool send_fd(int channel, int fd);
// Receives the newest descriptor waiting on `channel`, -1 when none.
int receive_fd(int channel);

}  // namespace preforkd::access_log
