// control.cpp - the control socket's protocol, its answers, and its I/O.
//
// One command per connection, one line each way of the exchange, closed by
// the master: no framing to get wrong, and `socat - UNIX:/run/preforkd.ctl`
// is a usable client.  The master serves the socket inside its own loop
// rather than in a thread or a child: the status it renders is its own
// state, read between two passes of the loop, and a reload asked for here
// runs exactly as a SIGHUP does.  What keeps a client from stalling the
// master is time, not concurrency: every read and write is non-blocking and
// bounded by a deadline of a fraction of a second, after which the client is
// dropped.
//
// The status has one source, snapshot_of(): a walk over the scoreboard's
// slots and the facts the master publishes there.  The master renders it
// for this socket; a worker renders it for a status location
// (http/status.hpp), as text, JSON or mod_status's `?auto` report, so the
// three views can never disagree about what a field means.
//
// Rejected: a signal plus a file for the verdict (PIDFILE.reload), which
// this replaced: two round trips through the file system, and nothing for
// status; serving `-s status` itself over HTTP on the public listeners,
// which would need access rules to keep the scoreboard private (a status
// location is opt-in, and limited by its allow/deny lists).
#include "preforkd/control.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "preforkd/scoreboard.hpp"

#ifndef PREFORKD_VERSION
#define PREFORKD_VERSION "0.0.0"
#endif

namespace preforkd::control {
namespace {

std::string lower_trimmed(std::string_view line)
{
    auto blank = [](char ch) { return std::isspace((unsigned char)ch) != 0; };
    while (!line.empty() && blank(line.front()))
        line.remove_prefix(1);
    while (!line.empty() && blank(line.back()))
        line.remove_suffix(1);
    std::string out;
    char prev = 'x';
    for (char ch : line) {
        if (blank(ch) && blank(prev))
            continue;   // "status   json" is "status json"
        out += blank(ch) ? ' ' : char(std::tolower((unsigned char)ch));
        prev = ch;
    }
    return out;
}

std::string utc(std::int64_t when, const char* format)
{
    time_t t = time_t(when);
    tm parts{};
    ::gmtime_r(&t, &parts);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &parts);
    return buf;
}

std::string draining_text(const std::vector<std::uint32_t>& generations)
{
    std::string out;
    for (std::uint32_t g : generations)
        out += (out.empty() ? "" : ", ") + std::to_string(g);
    return out;
}

std::string pool_line(const Snapshot& s, const Totals& t)
{
    if (s.paused)
        return "pool: " + std::to_string(t.workers) +
               " workers: stopped by SIGWINCH (SIGHUP starts a new generation)";
    int moved = s.floor - s.floor_configured;
    return "pool: " + std::to_string(t.workers) + " workers (" + std::to_string(t.busy) +
           " busy, " + std::to_string(t.idle) + " idle), floor " + std::to_string(s.floor) +
           (moved ? " (workers.start " + std::to_string(s.floor_configured) + ", " +
                        (moved > 0 ? "+" : "") + std::to_string(moved) + " by TTIN/TTOU)"
                  : "") +
           ", max " + std::to_string(s.max);
}

// Fixed columns as in apachectl fullstatus; the request goes last so a long
// one does not push the rest out of line.
std::string worker_line(const WorkerRow& w)
{
    char buf[160];
    std::snprintf(buf, sizeof buf, "%8d %4u %-10s %6lld %9llu %12llu  %-16s  %-22s ", int(w.pid),
                  unsigned(w.generation), w.state.c_str(), (long long)w.seconds,
                  (unsigned long long)w.requests, (unsigned long long)w.bytes, w.sandbox.c_str(),
                  w.client.empty() ? "-" : w.client.c_str());
    return buf + (w.request.empty() ? std::string("-") : w.request) + "\n";
}

// mod_status's one-letter states (its "Scoreboard Key").
char state_letter(const std::string& state)
{
    static constexpr std::pair<std::string_view, char> kLetters[] = {
        {"starting", 'S'}, {"idle", '_'},      {"reading", 'R'},
        {"writing", 'W'},  {"keepalive", 'K'}, {"draining", 'G'},
    };
    for (const auto& [name, letter] : kLetters)
        if (state == name)
            return letter;
    return '?';
}

// "%g" as mod_status prints its rates.
std::string general(double value)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", value);
    return buf;
}

// The row of the live slot `i`, read field by field (each an atomic, the
// texts advisory), at CLOCK_MONOTONIC `now`.
WorkerRow row_of(const scoreboard::Slot& slot, int i, std::int64_t now)
{
    using std::memory_order_relaxed;
    WorkerRow row;
    row.slot = i;
    row.pid = slot.pid.load(memory_order_relaxed);
    row.generation = slot.generation.load(memory_order_relaxed);
    row.state = scoreboard::state_name(slot.state.load(memory_order_relaxed));
    row.seconds = std::max<std::int64_t>(0, now - slot.state_since_ms.load(memory_order_relaxed)) / 1000;
    row.requests = slot.requests.load(memory_order_relaxed);
    row.bytes = slot.bytes.load(memory_order_relaxed);
    row.client = scoreboard::text_of(slot.client);
    row.request = scoreboard::text_of(slot.request);
    std::uint8_t confined = slot.sandboxed.load(memory_order_relaxed);
    bool seccomp = confined & scoreboard::kSeccomp, landlock = confined & scoreboard::kLandlock;
    row.sandbox = seccomp && landlock ? "seccomp+landlock"
                  : seccomp           ? "seccomp"
                  : landlock          ? "landlock"
                                      : "none";
    return row;
}

// Older generations that still have a worker, oldest first.
std::vector<std::uint32_t> older_generations(const Snapshot& s)
{
    std::vector<std::uint32_t> out;
    for (const WorkerRow& w : s.workers)
        if (w.generation < s.generation &&
            std::find(out.begin(), out.end(), w.generation) == out.end())
            out.push_back(w.generation);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

Command parse(std::string_view line)
{
    std::string word = lower_trimmed(line);
    if (word == "status")
        return Command::status;
    if (word == "status json")
        return Command::status_json;
    if (word == "reload")
        return Command::reload;
    return Command::unknown;
}

Totals totals(const Snapshot& s)
{
    Totals t;
    for (const WorkerRow& w : s.workers) {
        ++t.workers;
        bool idle = w.state == "idle" || w.state == "starting";
        ++(idle ? t.idle : t.busy);
        t.requests += w.requests;
        t.bytes += w.bytes;
    }
    return t;
}

std::string render_text(const Snapshot& s)
{
    Totals t = totals(s);
    std::string out = "preforkd " + s.version + ", master pid " + std::to_string(s.master) +
                      (s.stopping ? ", stopping" : "") + "\n";
    out += "configuration: " + s.config_file + ", loaded " +
           utc(s.config_loaded, "%Y-%m-%d %H:%M:%S UTC") + "\n";
    out += "uptime: " + std::to_string(s.uptime) + " s (since " +
           utc(s.started, "%Y-%m-%d %H:%M:%S UTC") + ")\n";
    out += "generation: " + std::to_string(s.generation);
    if (!s.draining.empty())
        out += " (draining: " + draining_text(s.draining) + ")";
    out += "\n" + pool_line(s, t) + "\n";
    out += "parked: " + (s.parking ? std::to_string(s.parked) + " connections" : "off (http.parking)") + "\n";
    out += "totals: " + std::to_string(t.requests) + " requests, " + std::to_string(t.bytes) +
           " bytes, by the live workers\n";
    if (s.workers.empty())
        return out + "\nno workers\n";
    out += "\n     PID  GEN STATE        SECS  REQUESTS        BYTES  SANDBOX           CLIENT"
           "                 REQUEST\n";
    for (const WorkerRow& w : s.workers)
        out += worker_line(w);
    return out;
}

std::string json_string(std::string_view text)
{
    std::string out = "\"";
    for (char ch : text) {
        unsigned char u = (unsigned char)ch;
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (u < 0x20 || u == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

std::string render_json(const Snapshot& s)
{
    Totals t = totals(s);
    auto num = [](auto v) { return std::to_string(v); };
    std::string draining;
    for (std::uint32_t g : s.draining)
        draining += (draining.empty() ? "" : ",") + num(g);
    std::string out = "{\"version\":" + json_string(s.version) + ",\"pid\":" + num(s.master) +
                      ",\"config_file\":" + json_string(s.config_file) +
                      ",\"config_loaded\":" + json_string(utc(s.config_loaded, "%Y-%m-%dT%H:%M:%SZ")) +
                      ",\"uptime\":" + num(s.uptime) + ",\"generation\":" + num(s.generation) +
                      ",\"draining\":[" + draining + "]" +
                      ",\"stopping\":" + (s.stopping ? "true" : "false") +
                      ",\"pool\":{\"workers\":" + num(t.workers) + ",\"busy\":" + num(t.busy) +
                      ",\"idle\":" + num(t.idle) + ",\"floor\":" + num(s.floor) +
                      ",\"floor_configured\":" + num(s.floor_configured) + ",\"max\":" + num(s.max) +
                      ",\"paused\":" + (s.paused ? "true" : "false") + "}" +
                      ",\"parking\":" + (s.parking ? "true" : "false") + ",\"parked\":" + num(s.parked) +
                      ",\"totals\":{\"requests\":" + num(t.requests) + ",\"bytes\":" + num(t.bytes) + "}" +
                      ",\"workers\":[";
    for (std::size_t i = 0; i < s.workers.size(); ++i) {
        const WorkerRow& w = s.workers[i];
        out += std::string(i ? "," : "") + "{\"pid\":" + num(w.pid) + ",\"generation\":" +
               num(w.generation) + ",\"state\":" + json_string(w.state) + ",\"seconds\":" +
               num(w.seconds) + ",\"requests\":" + num(w.requests) + ",\"bytes\":" + num(w.bytes) +
               ",\"sandbox\":" + json_string(w.sandbox) + ",\"client\":" + json_string(w.client) +
               ",\"request\":" + json_string(w.request) + "}";
    }
    return out + "]}\n";
}

// mod_status's short report (`?auto`) as Apache 2.4 writes it, in its order
// and with its names, so that the Munin, Nagios, collectd and other plugins
// written for it read it unchanged.  Given: ServerVersion, ServerMPM,
// ParentServerConfigGeneration, ServerUptimeSeconds, Total Accesses, Total
// kBytes, Uptime, ReqPerSec, BytesPerSec, BytesPerReq (the rates left out
// when their divisor is 0, as Apache does), BusyWorkers, IdleWorkers and
// Scoreboard (a letter per slot, up to workers.max or the last live slot).
// Left out, as nothing here measures them: the host name line, the times,
// Load*, CPU*, Total Duration, DurationPerReq and the event MPM's
// connection counts.  The totals are those of the live workers, as in
// `-s status`, so they fall when a worker is recycled: plugins that take
// rates (DERIVE with a minimum of 0, as Munin's do) drop that one sample.
// BusyWorkers and IdleWorkers count as totals() does (starting is idle).
std::string render_auto(const Snapshot& s)
{
    Totals t = totals(s);
    std::string out = "ServerVersion: preforkd/" + s.version + "\nServerMPM: prefork\n";
    out += "ParentServerConfigGeneration: " + std::to_string(s.generation) + "\n";
    out += "ServerUptimeSeconds: " + std::to_string(s.uptime) + "\n";
    out += "Total Accesses: " + std::to_string(t.requests) + "\n";
    out += "Total kBytes: " + std::to_string(t.bytes / 1024) + "\n";
    out += "Uptime: " + std::to_string(s.uptime) + "\n";
    if (s.uptime > 0) {
        out += "ReqPerSec: " + general(double(t.requests) / double(s.uptime)) + "\n";
        out += "BytesPerSec: " + general(double(t.bytes) / double(s.uptime)) + "\n";
    }
    if (t.requests > 0)
        out += "BytesPerReq: " + general(double(t.bytes) / double(t.requests)) + "\n";
    out += "BusyWorkers: " + std::to_string(t.busy) + "\nIdleWorkers: " + std::to_string(t.idle) + "\n";
    std::size_t slots = std::size_t(std::max(s.max, 0));
    for (const WorkerRow& w : s.workers)
        slots = std::max(slots, std::size_t(w.slot) + 1);
    std::string board(slots, '.');
    for (const WorkerRow& w : s.workers)
        board[std::size_t(w.slot)] = state_letter(w.state);
    return out + "Scoreboard: " + board + "\n";
}

Snapshot snapshot_of(const scoreboard::Board& board, std::int64_t now_ms)
{
    using std::memory_order_relaxed;
    const scoreboard::Facts& m = board.master;
    Snapshot s;
    s.version = PREFORKD_VERSION;
    s.master = m.pid.load(memory_order_relaxed);
    s.config_file = scoreboard::text_of(m.config_file);
    s.config_loaded = m.config_loaded_at.load(memory_order_relaxed);
    s.started = m.started_at.load(memory_order_relaxed);
    std::int64_t started_ms = m.started_ms.load(memory_order_relaxed);
    s.uptime = started_ms ? std::max<std::int64_t>(0, now_ms - started_ms) / 1000 : 0;
    s.generation = m.generation.load(memory_order_relaxed);
    s.paused = m.paused.load(memory_order_relaxed);
    s.stopping = m.stopping.load(memory_order_relaxed);
    s.floor = m.floor.load(memory_order_relaxed);
    s.floor_configured = m.floor_configured.load(memory_order_relaxed);
    s.max = m.max.load(memory_order_relaxed);
    s.parking = m.parking.load(memory_order_relaxed);
    s.parked = board.parked.load(memory_order_relaxed);
    for (int i = 0; i < config::kMaxWorkers; ++i)
        if (board.slots[i].pid.load(memory_order_relaxed) != 0)
            s.workers.push_back(row_of(board.slots[i], i, now_ms));
    s.draining = older_generations(s);
    return s;
}

std::string render_page(const scoreboard::Board& board, http::StatusFormat format)
{
    Snapshot s = snapshot_of(board, scoreboard::now_ms());
    switch (format) {
    case http::StatusFormat::json: return render_json(s);
    case http::StatusFormat::automatic: return render_auto(s);
    case http::StatusFormat::off:
    case http::StatusFormat::text: break;
    }
    return render_text(s);
}

std::string summary(const Snapshot& s)
{
    Totals t = totals(s);
    std::string out = "generation " + std::to_string(s.generation) + ": ";
    if (s.paused)
        out += std::to_string(t.workers) + " workers (stopped by SIGWINCH)";
    else
        out += std::to_string(t.busy) + " busy, " + std::to_string(t.idle) +
               " idle workers, floor " + std::to_string(s.floor);
    out += "; " + std::to_string(t.requests) + " requests served by live workers";
    if (!s.draining.empty())
        out += "; draining generation " + draining_text(s.draining);
    if (s.parking)
        out += "; " + std::to_string(s.parked) + " connections parked";
    return out;
}

std::string path_for(const std::string& pid_file)
{
    const std::string suffix = ".pid";
    if (pid_file.size() > suffix.size() &&
        pid_file.compare(pid_file.size() - suffix.size(), suffix.size(), suffix) == 0)
        return pid_file.substr(0, pid_file.size() - suffix.size()) + ".ctl";
    return pid_file + ".ctl";
}

std::string path_of(const config::Config& config)
{
    return config.control_socket.empty() ? path_for(config.pid_file) : config.control_socket;
}

}  // namespace preforkd::control

namespace preforkd::control {
namespace {

// Waits until `fd` is ready for `events` or `deadline` (CLOCK_MONOTONIC ms)
// passes; false on timeout or error.
bool wait_ready(int fd, short events, std::int64_t deadline)
{
    for (;;) {
        std::int64_t left = deadline - scoreboard::now_ms();
        if (left <= 0)
            return false;
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, int(left));
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

}  // namespace

Fd accept_client(int listener)
{
    return Fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

std::optional<std::string> read_line(int fd, int timeout_ms, bool& too_long)
{
    too_long = false;
    std::int64_t deadline = scoreboard::now_ms() + timeout_ms;
    std::string line;
    char buf[kMaxLine + 1];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            line.append(buf, std::size_t(n));
            std::size_t end = line.find('\n');
            if (end != std::string::npos)
                return line.substr(0, end);
            if (line.size() > kMaxLine) {
                too_long = true;
                return std::nullopt;
            }
            continue;
        }
        if (n == 0)   // closed without a newline: a line all the same
            return line.empty() ? std::nullopt : std::optional<std::string>(line);
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || !wait_ready(fd, POLLIN, deadline))
            return std::nullopt;
    }
}

bool write_all(int fd, std::string_view data, int timeout_ms)
{
    std::int64_t deadline = scoreboard::now_ms() + timeout_ms;
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(std::size_t(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || errno != EAGAIN || !wait_ready(fd, POLLOUT, deadline))
            return false;
    }
    return true;
}

std::optional<std::string> ask(const std::string& path, const std::string& command,
                               int timeout_ms, std::string& error)
{
    sockaddr_un sun{};
    if (path.size() >= sizeof sun.sun_path) {
        error = "control socket path is too long: " + path;
        return std::nullopt;
    }
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        error = sys_message("socket", path, errno);
        return std::nullopt;
    }
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) != 0) {
        error = sys_message("connect", path, errno);
        return std::nullopt;
    }
    std::string line = command + "\n";
    if (::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL) != ssize_t(line.size())) {
        error = sys_message("send", path, errno);
        return std::nullopt;
    }
    std::int64_t deadline = scoreboard::now_ms() + timeout_ms;
    std::string answer;
    char buf[65536];
    for (;;) {
        if (!wait_ready(fd.get(), POLLIN, deadline)) {
            error = "no answer on " + path + " within " + std::to_string(timeout_ms / 1000) + " s";
            return std::nullopt;
        }
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n == 0)
            return answer;
        if (n < 0 && errno != EINTR) {
            error = sys_message("recv", path, errno);
            return std::nullopt;
        }
        if (n > 0)
            answer.append(buf, std::size_t(n));
    }
}

}  // namespace preforkd::control
