// worker.hpp - a worker process: accept, serve one connection, repeat.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "preforkd/access_log.hpp"
#include "preforkd/config.hpp"
#include "preforkd/fd.hpp"
#include "preforkd/connection.hpp"
#include "preforkd/http/site.hpp"
#include "preforkd/privileges.hpp"
#include "preforkd/scoreboard.hpp"
#include "preforkd/tls/context.hpp"

namespace preforkd::worker {

// A site's own access log, opened by the master like the main one.
struct SiteLog {
    Fd fd;                               // inherited, O_APPEND
    std::string path;                    // for diagnostics
    access_log::Format format = access_log::Format::combined;
};

// Everything a freshly forked worker needs; built by the master in the
// child, which hands the descriptors it inherited over to it.
struct Context {
    std::vector<Fd> listeners;           // inherited listening descriptors
    std::vector<config::ListenOptions> listen_options;   // index-aligned with listeners
    scoreboard::Board* board = nullptr;
    int slot = 0;
    std::uint32_t generation = 0;
    std::uint32_t log_epoch = 0;         // board->log_epoch at fork time
    Fd access_log;                       // mode file: the main log, O_APPEND
    std::string access_log_path;         // for diagnostics
    access_log::Mode log_mode = access_log::Mode::off;
    access_log::Format log_format = access_log::Format::combined;
    int log_priority = (3 << 3) | 6;     // syslog mode: access_log::syslog_priority()
    std::size_t log_buffer = 0;          // bytes of lines held before a write; 0: none
    int log_flush_seconds = 1;           // longest a buffered line waits
    // Site logs: a site whose http::VirtualSite::log is n (n >= 1) writes
    // to site_logs[n - 1]; 0, or a number without a log here, is the main
    // log above.  On reopen the master sends each new descriptor with its
    // sink number n (access_log::send_fd), then bumps board->log_epoch.
    std::vector<SiteLog> site_logs;
    Fd channel;                          // unix datagram socket to the master
    Fd park;                             // to the parker (none: parking off)
    Fd ready;                            // from the parker: connections ready to serve
    long max_requests = 0;               // connections before recycling
    privileges::Identity identity;
    bool sandbox = true;                 // confine after the drop (sandbox.hpp)
    connection::Settings settings;
    // The sites this worker answers (one default site serving http.root
    // unless the configuration has sites): the master's own table, read in
    // place.  A copy would be built anew in every worker's heap, pages no
    // other process shares; the master's stays shared while nobody writes.
    const http::SiteTable* sites = nullptr;
    // TLS contexts and listeners of this generation; null: no TLS.
    std::shared_ptr<const tls::Generation> tls;
};

// Runs the worker until it is told to stop or reaches max_requests; never
// returns.  Exit status 0 for a normal end, 3 when it could not start (the
// reason is in its scoreboard slot's note).
[[noreturn]] void run(Context& context);

// The recycling limit for one worker: max_requests minus up to 10%, chosen
// per process, so a pool started together does not recycle together.
long jittered_limit(long max_requests, unsigned seed) noexcept;

}  // namespace preforkd::worker
