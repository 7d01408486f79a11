// connection.hpp - serving one accepted connection, keep-alive included.
//
// The loop owns all I/O of a connection: it reads into a buffer, lets the
// parser find a request head, lets the static-file responder build the
// response, sends it (sendfile for file bodies), writes the access-log line,
// and repeats while keep-alive allows.  Every wait is bounded by a timeout
// and heartbeats the scoreboard, so the master's watchdog sees only real
// hangs.  Outcomes are values: no exception leaves serve().
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <string>

#include "preforkd/access_log.hpp"
#include "preforkd/handoff.hpp"
#include "preforkd/http/access.hpp"
#include "preforkd/http/request.hpp"
#include "preforkd/http/site.hpp"
#include "preforkd/http/status.hpp"
#include "preforkd/scoreboard.hpp"

namespace preforkd::tls {
class Stream;
}

namespace preforkd::connection {

struct Settings {
    http::Limits limits;
    int keepalive_timeout_ms = 5000;
    int keepalive_requests = 100;
    int header_timeout_ms = 20000;
    int header_timeout_max_ms = 40000;
    int header_min_rate = 500;       // bytes/s earning one more second
    bool adaptive_keepalive = true;
    int send_timeout_ms = 60000;
    // Hand connections that are not sending to the parker (parker.hpp): a
    // head not complete after the first read, and the rest of an answer the
    // client stopped taking, always; an idle keep-alive connection once it
    // has been idle for park_grace_ms() while idle workers are short of
    // min_spare, or at once when the worker is told to quit.  Env::park
    // must be set for it to happen.
    bool parking = false;
};

// Parking an idle keep-alive connection (when idle workers are short of
// min_spare) waits for the client's next request first, for a grace that
// shrinks as the idle workers run out: kParkGraceMaxMs with min_spare of
// them idle, down to kParkGraceMs with none.  A client that keeps sending
// has its next request in the socket within the grace and stays with its
// worker, paying nothing; one that pauses for longer gives the worker back.
// Parking at once sent every request of a busy client through the parker
// (wrk -c32 beside 10,000 idle clients: 0.2 of its throughput alone), and
// tens of milliseconds with no idle worker left would hold a worker per
// idle client for that long.  But kParkGraceMs whatever the shortage sent
// one request in seven through the parker at keep-alive c=256 with 300
// workers and min_spare 64: each client's next request came 10 ms or more
// after its answer, so connection after connection was parked and handed
// back, some 7 system calls and 3 context switches each time, to keep
// 64 workers idle that nobody was waiting for.
inline constexpr std::int64_t kParkGraceMs = 2;
inline constexpr std::int64_t kParkGraceMaxMs = 250;

// A connection the parker hands back after its client had been idle for
// kReparkIdleMs or more (a client that polls, a reader between pages) is
// parked again as soon as it is answered while idle workers are short, with
// no grace: it will most likely pause again, and a grace spent waiting for
// it keeps a worker and wakes it for nothing.  A client that sends its
// requests back to back is never idle that long, so it keeps the grace.
// Against 10,000 clients each sending one request every 5 s (64 workers,
// min_spare 4), the server's CPU per request fell from 60-66 to 35-38 us
// (the parker's share from 24-27 to 19-21 us).
inline constexpr std::int64_t kReparkIdleMs = 1000;

// Whether a connection resumed from `parcel` at `now_ms` is parked again
// with no grace (kReparkIdleMs): a plain ready head whose client's wait
// began kReparkIdleMs or more before.
bool repark_at_once(const handoff::Parcel& parcel, std::int64_t now_ms) noexcept;

// The grace for `idle` idle workers against a min_spare of `spare_target`:
// kParkGraceMaxMs at or above the target, kParkGraceMs at none (and
// whenever the target is 0), in proportion between.
std::int64_t park_grace_ms(int idle, int spare_target) noexcept;

inline constexpr sig_atomic_t kQuitGraceful = 1;
inline constexpr sig_atomic_t kQuitNow = 2;

struct Env {
    scoreboard::Slot* slot = nullptr;
    const scoreboard::Board* board = nullptr;   // pool-wide figures
    const sigset_t* wait_mask = nullptr;        // mask while waiting (QUIT open)
    // Set by the worker's signal handlers: kQuitGraceful (QUIT: finish the
    // request in progress) or kQuitNow (TERM: drop the connection).
    const volatile sig_atomic_t* quit = nullptr;
    std::function<void(const access_log::Entry&)> log;
    // Called before each wait, where the worker flushes a due log buffer.
    std::function<void()> on_wait;
    // Called once, the first time a wait notices the quit request.
    std::function<void()> on_quit;
    // Which listener accepted the connection (its index in the
    // configuration), and the client's address: sites may be bound to
    // listeners, and locations may allow or deny addresses.
    int listener = 0;
    http::ClientAddress client;
    // Hands the connection to the parker with the parcel (kind, clock and
    // bytes filled in here) and, for the rest of an answer, the file it
    // comes from (else -1); true if it went, and the connection is then the
    // parker's.  Unset: connections are never parked.
    std::function<bool(int fd, handoff::Parcel& parcel, int file)> park;
    // Renders the body of a status location (http/status.hpp); unset,
    // such a location answers 503.
    http::StatusSource status;
    // A TLS connection's session, its handshake done (handshake.hpp): all
    // I/O goes through it, the scheme is https, a request whose Host names
    // another site than its SNI did gets 421, and it is never parked.
    tls::Stream* tls = nullptr;
};

struct Served {
    int requests = 0;      // requests answered here
    bool parked = false;   // handed to the parker: the caller just closes its copy
};

// Serves `fd` (non-blocking, owned by the caller) until the client or a
// limit ends the connection, or until it is parked; each request is
// answered by the site `sites` finds for it.
Served serve(int fd, const std::string& remote, const Settings& settings,
             const http::SiteTable& sites, Env& env);

// Serves a connection the parker handed back: `parcel` holds the bytes read
// so far (a complete head) and the requests already answered on it; an
// expired one (its head missed the deadline) gets its 408 and is closed.
// env.listener and env.client are the connection's, as for serve().
Served resume(int fd, const handoff::Parcel& parcel, const Settings& settings,
              const http::SiteTable& sites, Env& env);

}  // namespace preforkd::connection
