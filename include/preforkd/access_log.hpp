// access_log.hpp - one line per request: Common, Combined, Combined with
// timing, or one JSON object.
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
#include <vector>

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
// The same for a site's own log file at `path`.
Fd open_path(const std::string& path);

struct Entry {
    std::string_view remote;        // client address
    std::string_view request_line;  // "GET / HTTP/1.1", "-" when none
    int status = 0;
    std::uint64_t bytes = 0;        // body bytes sent
    std::string_view referer;
    std::string_view user_agent;
    time_t when = 0;
    std::int64_t micros = 0;        // time taken
    std::string_view host;          // Host as sent ("" when none); json only
    std::string_view site;          // the site that answered; json only
    std::uint64_t request_id = 0;   // unique per request in the pool; json only
    int sink = 0;                   // the site's log (http::VirtualSite::log); 0: the main log, -1: none
    // A TLS connection's protocol and cipher ("" on plain HTTP) and whether
    // its session was resumed; json and combined_tls only.
    std::string_view tls_protocol;
    std::string_view tls_cipher;
    bool tls_resumed = false;
};

// `text` with quotes, backslashes and control bytes escaped as on a CLF
// line: safe to put into any log line.
std::string escaped(std::string_view text);

// The line formats.  combined is exactly the standard Combined Log Format
// (strict parsers break on extra fields); combined_timing adds the request's
// duration in microseconds; json is one object per line with host, site,
// status, bytes, duration and a request id as well (and tls_protocol,
// tls_cipher and tls_resumed on TLS connections); combined_tls is combined
// plus three fields: the TLS protocol, the cipher and "r" for a resumed
// session or "." for a full handshake ("- - -" on plain HTTP), the
// convention of nginx's $ssl_protocol $ssl_cipher $ssl_session_reused.
enum class Format { common, combined, combined_timing, json, combined_tls };

// The format a configuration value names.
Format format_of(config::AccessFormat format) noexcept;

// The line, newline included.
std::string format(const Entry& entry, Format format);
// The same line, appended to `out` (a worker's buffer of pending lines).
void append(std::string& out, const Entry& entry, Format format);

// Sends `fd`, the new descriptor of access log `sink` (0: the main log,
// else a site's, see worker::Context::site_logs), over the unix datagram
// socket `channel` (SCM_RIGHTS).
bool send_fd(int channel, int fd, std::uint32_t sink = 0);

struct Received {
    std::uint32_t sink = 0;
    Fd fd;
};

// Receives every descriptor waiting on `channel`, the newest per sink (an
// older one for the same sink is closed): several reopens may have queued
// several.
std::vector<Received> receive_fds(int channel);

}  // namespace preforkd::access_log
