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
// knows (generations draining, the floor TTIN/TTOU moved, SIGWINCH), which
// publish_status() copies into the scoreboard on every pass of the loop so
// that a worker's HTTP status page shows the same; the walk over the slots
// and the rendering are control.cpp's, where they are tested without a
// daemon.
#include <algorithm>
#include <cstring>
#include <ctime>
#include <unistd.h>

#include "preforkd/log.hpp"
#include "preforkd/master.hpp"

namespace preforkd::master {
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
    case control::Command::unknown:
        break;
    }
    return "error: unknown command " + control::json_string(line.substr(0, 64)) +
           " (status, status json, reload)\n";
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

// What only the master knows, for the status pages workers serve.  Called
// on every pass of the loop and before each snapshot; cheap: a few stores,
// and the configuration file's name copied only when it changed.
void Master::publish_status() const
{
    using std::memory_order_relaxed;
    scoreboard::Facts& m = board_->master;
    if (m.pid.load(memory_order_relaxed) == 0)
        m.pid.store(::getpid(), memory_order_relaxed);
    m.started_ms.store(started_ms_, memory_order_relaxed);
    m.started_at.store(started_at_, memory_order_relaxed);
    m.config_loaded_at.store(config_loaded_at_, memory_order_relaxed);
    m.generation.store(generation_, memory_order_relaxed);
    m.floor.store(limits().floor, memory_order_relaxed);
    m.floor_configured.store(std::min(config_.workers.start, config_.workers.max), memory_order_relaxed);
    m.max.store(config_.workers.max, memory_order_relaxed);
    m.paused.store(paused_, memory_order_relaxed);
    m.stopping.store(phase_ != Phase::running, memory_order_relaxed);
    m.parking.store(parker_pid_ != 0 || config_.http.parking, memory_order_relaxed);
    if (scoreboard::text_of(m.config_file) != options_.config_file)
        scoreboard::set_text(m.config_file, options_.config_file);
}

// The scoreboard as every status page sees it, with the master's exact
// list of draining generations in place of the one read from the slots.
control::Snapshot Master::snapshot() const
{
    publish_status();
    control::Snapshot s = control::snapshot_of(*board_, scoreboard::now_ms());
    s.draining = draining_;
    return s;
}

}  // namespace preforkd::master
