// control.hpp - the master's control socket: its protocol and its answers.
//
// The master listens on a unix socket (0600, root's alone) beside its pid
// file.  A client connects, writes one command line and reads the answer
// until the master closes the connection:
//
//   status        the scoreboard as text, like apachectl fullstatus
//   status json   the same as one JSON object (preforkd(8) documents it)
//   reload        "ok: generation N started" or "failed: <why>", sent once
//                 the master has applied or rejected the configuration
//
// Anything else is answered "error: ...".  The protocol and the rendering
// are pure functions (bytes in, text out) over a Snapshot read from the
// scoreboard (snapshot_of, which a worker's status page uses too), so that
// tests need no daemon; the socket calls are
// the only part that touches the system.  The master's side never blocks:
// the listening socket and each accepted one are non-blocking, and a client
// gets a bounded time to send its line and to take its answer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "preforkd/config.hpp"
#include "preforkd/fd.hpp"
#include "preforkd/http/status.hpp"
#include "preforkd/scoreboard.hpp"

namespace preforkd::control {

// ---- the protocol ---------------------------------------------------------------

enum class Command { status, status_json, reload, unknown };

// The command of one line ("status\n", "status json\r\n"); surrounding
// blanks and the line end are ignored, case is not.
Command parse(std::string_view line);

// The longest command line read; a client sending more is answered
// "error: command line too long".
inline constexpr std::size_t kMaxLine = 256;

// ---- status ---------------------------------------------------------------------

struct WorkerRow {
    int slot = 0;                 // its scoreboard slot
    pid_t pid = 0;
    std::uint32_t generation = 0;
    std::string state;            // scoreboard::state_name(), or "retiring"
    std::int64_t seconds = 0;     // in the current state
    std::uint64_t requests = 0;
    std::uint64_t bytes = 0;      // response body bytes sent
    std::string client;           // address of the current client, "" if none
    std::string request;          // current or last request line, "" if none
    // The sandbox in force (sandbox.hpp): "seccomp+landlock", "seccomp",
    // "landlock" or "none".
    std::string sandbox = "none";
};

struct Snapshot {
    std::string version;
    pid_t master = 0;
    std::string config_file;
    std::int64_t config_loaded = 0;    // Unix time of the last (re)load
    std::int64_t started = 0;          // Unix time the master started
    std::int64_t uptime = 0;           // seconds
    std::uint32_t generation = 0;
    std::vector<std::uint32_t> draining;   // older generations still exiting
    bool paused = false;               // SIGWINCH stopped the workers
    bool stopping = false;             // a stop is under way
    int floor = 0;                     // the pool's floor in force
    int floor_configured = 0;          // workers.start; TTIN/TTOU move `floor`
    int max = 0;                       // workers.max
    bool parking = false;              // a parker runs
    int parked = 0;                    // connections it holds
    std::vector<WorkerRow> workers;    // live workers, by slot
};

struct Totals {
    int workers = 0, busy = 0, idle = 0;
    std::uint64_t requests = 0, bytes = 0;
};
Totals totals(const Snapshot& s);

// `preforkd -s status`: a header of pool figures, then a line per worker.
std::string render_text(const Snapshot& s);
// `preforkd -s status --json`: one object, newline-terminated.
std::string render_json(const Snapshot& s);
// mod_status's machine format (`?auto`), for the monitoring plugins
// written for it; control.cpp lists the fields given.
std::string render_auto(const Snapshot& s);
// One line for systemd's STATUS=: generation, workers, floor, draining,
// parked connections.
std::string summary(const Snapshot& s);

// The scoreboard as a Snapshot at CLOCK_MONOTONIC `now_ms`: every live
// slot, and the master's facts (scoreboard::Facts) as it last published
// them; `draining` is every older generation that still has a worker.  The
// master's own snapshot and a worker's status page both start here.
Snapshot snapshot_of(const scoreboard::Board& board, std::int64_t now_ms);

// The status page a worker serves (http/status.hpp): the scoreboard now,
// rendered as `format` asks (text, json or auto).
std::string render_page(const scoreboard::Board& board, http::StatusFormat format);

// `text` as a JSON string, quotes included.
std::string json_string(std::string_view text);

// ---- the socket -----------------------------------------------------------------

// The default control socket of a master whose pid file is `pid_file`:
// "/run/preforkd.pid" -> "/run/preforkd.ctl"; without a ".pid" suffix,
// PIDFILE.ctl.
std::string path_for(const std::string& pid_file);
// The control socket of `config`: control_socket, or path_for(pid_file).
std::string path_of(const config::Config& config);

// Serves one client on the listening socket `listener` after poll() said
// it is readable: accepts (nothing to do if another wake-up took it), reads
// one line within `read_ms`, asks `answer` for the reply to it, writes the
// reply within `write_ms` and closes.  A client that is too slow is
// dropped.  The connection is held in `client` meanwhile, so that a process
// forked by `answer` (a reload starts workers) can close it: a copy left
// open in a child would keep the client from ever seeing the end of the
// answer.  Never throws; returns false when nothing was accepted.
template <class Answer>
bool serve_one(int listener, Fd& client, Answer&& answer, int read_ms = 500,
               int write_ms = 2000);

// Client side: connects to `path`, sends `command` and a newline, and
// returns the whole answer, or nothing with `error` set ("connect
// (/run/preforkd.ctl) failed: No such file or directory").  Waits at most
// `timeout_ms` for the answer.
std::optional<std::string> ask(const std::string& path, const std::string& command,
                               int timeout_ms, std::string& error);

// The pieces serve_one() is made of, for the master and the tests.
Fd accept_client(int listener);
// The line, once a newline arrived; nothing if the client was too slow,
// closed early, or sent more than kMaxLine bytes without one (`too_long`).
std::optional<std::string> read_line(int fd, int timeout_ms, bool& too_long);
bool write_all(int fd, std::string_view data, int timeout_ms);

template <class Answer>
bool serve_one(int listener, Fd& client, Answer&& answer, int read_ms, int write_ms)
{
    client = accept_client(listener);
    if (!client)
        return false;
    bool too_long = false;
    std::optional<std::string> line = read_line(client.get(), read_ms, too_long);
    if (too_long) {
        write_all(client.get(), "error: command line too long\n", write_ms);
    } else if (line) {
        std::string reply = answer(*line);
        write_all(client.get(), reply, write_ms);
    }
    client.reset();
    return true;
}

}  // namespace preforkd::control
