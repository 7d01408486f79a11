// master_control.cpp - the master's side of the control socket.
//
// The master owns the socket for its life: bound after the pid file is
// locked (so a second master never unlinks the first one's socket), mode
// 0600 before listen() (root's alone), closed by workers and the parker
// right after fork, and unlinked when the master exits.  Its loop waits on
// it in wait_for_event(); serve_control() answers one client at a time with
// the time bounds of control::serve_one(), so a client that connects and
// says nothing costs the loop half a second, not its liveness.
//
// The status is a snapshot of the scoreboard and of what the master alone
// knows (generations draining, the floor TTIN/TTOU moved, SIGWINCH); the
// rendering is control.cpp's, where it is tested without a daemon.
#include <algorithm>
#include <cstring>
#include <ctime>
#include <unistd.h>

#include "preforkd/log.hpp"
#include "preforkd/master.hpp"

#ifndef PREFORKD_VERSION
#define PREFORKD_VERSION "0.0.0"
#endif

namespace preforkd::master {
namespace {

// A field another process writes: never trust its terminating NUL.
std::string text_of(const char* field, std::size_t size)
{
    return std::string(field, ::strnlen(field, size));
}

}  // namespace

// A control socket that cannot be bound fails the start, like a listener:
// -s reload and -s status would otherwise fail later, far from the cause.
void Master::open_control()
{
    started_at_ = config_loaded_at_ = ::time(nullptr);
    started_ms_ = scoreboard::now_ms();
    std::string path = control::path_of(config_);
    listener::ParseResult p = listener::parse("unix:" + path);
    if (!p.address)
        throw std::runtime_error("control_socket " + path + ": " + p.error.substr(p.error.find(": ") + 2));
    control_ = listener::open(*p.address, listener::UnixAccess{.mode = 0600}, 16);
    log::info("control socket " + path);
}

void Master::close_control()
{
    if (control_.created_path && control_.fd)
        ::unlink(control_.address.path.c_str());
    control_.fd.reset();
    control_client_.reset();
}

void Master::serve_control()
{
    control::serve_one(control_.fd.get(), control_client_,
                       [this](const std::string& line) { return control_answer(line); });
}

std::string Master::control_answer(const std::string& line)
{
    switch (control::parse(line)) {
    case control::Command::status:
        return control::render_text(snapshot());
    case control::Command::status_json:
        return control::render_json(snapshot());
    case control::Command::reload:
        return control_reload();
    case control::Command::upgrade:
        return control_upgrade();
    case control::Command::unknown:
        break;
    }
    return "error: unknown command " + control::json_string(line.substr(0, 64)) +
           " (status, status json, reload, upgrade)\n";
}

// The reload runs here, as a SIGHUP's would, and its verdict is the answer.
std::string Master::control_reload()
{
    if (phase_ != Phase::running)
        return "failed: the server is stopping\n";
    log::notice("control socket: reload requested");
    reload();
    return (last_reload_.ok ? "ok: " : "failed: ") + last_reload_.message + "\n";
}

// Returns only when the upgrade did not happen: the new image answers the
// client, whose connection it inherits, once it serves or has returned to
// this binary.
std::string Master::control_upgrade()
{
    if (phase_ != Phase::running)
        return "failed: the server is stopping\n";
    log::notice("control socket: upgrade requested");
    return "failed: " + upgrade_binary() + "\n";
}

control::Snapshot Master::snapshot() const
{
    control::Snapshot s;
    std::int64_t now = scoreboard::now_ms();
    s.version = PREFORKD_VERSION;
    s.master = ::getpid();
    s.config_file = options_.config_file;
    s.config_loaded = config_loaded_at_;
    s.started = started_at_;
    s.uptime = (now - started_ms_) / 1000;
    s.generation = generation_;
    s.draining = draining_;
    s.paused = paused_;
    s.stopping = phase_ != Phase::running;
    s.floor = limits().floor;
    s.floor_configured = std::min(config_.workers.start, config_.workers.max);
    s.max = config_.workers.max;
    s.parking = parker_pid_ != 0 || config_.http.parking;
    s.parked = board_->parked.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        const WorkerInfo& w = workers_[i];
        if (!w.pid)
            continue;
        const scoreboard::Slot& slot = board_->slots[i];
        control::WorkerRow row;
        row.pid = w.pid;
        row.generation = w.generation;
        row.state = scoreboard::state_name(slot.state.load(std::memory_order_relaxed));
        row.seconds = std::max<std::int64_t>(0, now - slot.state_since_ms.load()) / 1000;
        row.requests = slot.requests.load(std::memory_order_relaxed);
        row.bytes = slot.bytes.load(std::memory_order_relaxed);
        row.client = text_of(slot.client, sizeof slot.client);
        row.request = text_of(slot.request, sizeof slot.request);
        std::uint8_t confined = slot.sandboxed.load(std::memory_order_relaxed);
        bool seccomp = confined & scoreboard::kSeccomp, landlock = confined & scoreboard::kLandlock;
        row.sandbox = seccomp && landlock ? "seccomp+landlock"
                      : seccomp           ? "seccomp"
                      : landlock          ? "landlock"
                                          : "none";
        s.workers.push_back(std::move(row));
    }
    return s;
}

}  // namespace preforkd::master
