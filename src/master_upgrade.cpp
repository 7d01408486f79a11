// master_upgrade.cpp - the master's side of the in-place binary upgrade.
//
// The sending image checks the new binary (upgrade::check) and executes it
// with handover(): what it owns, by descriptor number.  The receiving image
// starts in start_adopted() instead of start(): it takes the descriptors
// into their owners, binds nothing it was given, adopts the workers as the
// generation they were, and starts the next one as commit_reload() does.
// The upgrade commits in report_progress(), when the old generation is
// retired because a new worker is up; before that check_upgrade() and
// give_back() return to the previous image on any failure.  A returning
// image (a handover with a failure) keeps the workers as its own
// generation and starts none: it was serving with them a moment ago.
//
// Rejected: committing at exec time and leaving a failed image to the
// crash back-off, which would leave the server on a binary that cannot
// serve; and starting the new generation in the sending image, which would
// run the old binary's workers under the new one.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <sys/wait.h>
#include <unistd.h>

#include "preforkd/access_log.hpp"
#include "preforkd/control.hpp"
#include "preforkd/log.hpp"
#include "preforkd/master.hpp"
#include "preforkd/notify.hpp"
#include "preforkd/proctitle.hpp"
#include "preforkd/signals.hpp"

#ifndef PREFORKD_VERSION
#define PREFORKD_VERSION "0.0.0"
#endif

namespace preforkd::master {
namespace {

listener::Listener listener_of(const upgrade::Listener& l)
{
    listener::ParseResult p = listener::parse(l.canonical);
    if (!p.address)
        throw std::runtime_error("handed-over socket " + l.canonical + ": " + p.error);
    return listener::Listener{*p.address, Fd(l.fd), l.created_path};
}

upgrade::Listener handed(const listener::Listener& l)
{
    return upgrade::Listener{l.fd.get(), l.created_path, l.address.canonical};
}

}  // namespace

// ---- the sending image ----------------------------------------------------------

// Returns only when nothing changed, with the reason; on success the
// process is the new image by then.
std::string Master::upgrade_binary()
{
    if (phase_ != Phase::running)
        return "the server is stopping";
    const std::string& path = upgrade::binary_path();
    if (path.empty() || upgrade::own_image() < 0)
        return "the running binary could not be opened at start, so there would be no way back";
    log::notice("upgrade: checking " + path + " with -t");
    std::string problem = upgrade::check(path, options_);
    if (!problem.empty()) {
        log::err("upgrade refused, the running binary stays: " + problem);
        return "refused: " + problem;
    }
    notify::reloading();
    log::notice("upgrade: executing " + path);
    upgrade::Handover h = handover();
    std::string error = upgrade::exec(path, -1, h.arguments, h);
    log::err("upgrade failed, the running binary stays: " + error);
    notify::ready("upgrade failed, running generation " + std::to_string(generation_));
    return error;
}

upgrade::Handover Master::handover() const
{
    upgrade::Handover h;
    h.board_size = sizeof(scoreboard::Board);
    h.board = board_memory_.get();
    h.control = handed(control_);
    h.client = control_client_.get();
    h.pid_file = pid_file_.descriptor();
    h.pid_path = pid_file_.path();
    h.previous = upgrade::own_image();
    h.queues[0] = queues_.park_worker.get();
    h.queues[1] = queues_.park_parker.get();
    h.queues[2] = queues_.ready_parker.get();
    h.queues[3] = queues_.ready_worker.get();
    h.parker = parker_pid_;
    h.generation = generation_;
    h.started_at = started_at_;
    h.started_ms = started_ms_;
    h.arguments = upgrade::arguments(options_);
    for (const listener::Listener& l : listeners_)
        h.listeners.push_back(handed(l));
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        const WorkerInfo& w = workers_[i];
        if (w.pid)
            h.workers.push_back({w.pid, int(i), w.generation, w.channel.get(), w.quit_sent_ms, w.killed});
    }
    return h;
}

// ---- the receiving image -----------------------------------------------------------

void Master::start_adopted(const upgrade::Handover& h)
{
    bool returning = !h.failure.empty();
    log::notice("preforkd " PREFORKD_VERSION + std::string(returning ? " returning" : " taking over") +
                " in place (pid " + std::to_string(::getpid()) + ")");
    signals::install_master(wait_mask_);
    take_descriptors(h);
    identity_ = privileges::resolve(config_);
    mime_ = std::make_shared<const http::MimeMap>(http::load_mime_types(config_.http.mime_types));
    sites_ = site_setup::build(config_, *mime_);
    access_log_ = access_log::open(config_);
    open_listeners();
    proctitle::set("preforkd: master process " + proctitle::original());
    apply_cpu_scheduling();
    adopt_pool(h);
    if (queues_.park_parker && !parker_pid_)
        spawn_parker();
    next_tick_ms_ = scoreboard::now_ms() + 1000;
    if (returning) {
        started_ = true;
        upgrading_.pending = true;
        return finish_upgrade(false, "the new binary failed before it served, the previous one "
                                     "runs again: " + h.failure);
    }
    started_ = false;   // a worker that cannot start now means: go back
    upgrading_.pending = true;
    upgrading_.deadline_ms = scoreboard::now_ms() + upgrade::kCommitDeadlineMs;
    retire_older_pending_ = true;
    for (int i = 0; i < std::min(config_.workers.start, config_.workers.max); ++i)
        spawn_worker();
    log::notice("upgrade: generation " + std::to_string(generation_) + " starting");
}

// Each descriptor into its owner before anything can fail, so that a
// failure finds them where give_back() expects them: open, at the numbers
// the handover names.
void Master::take_descriptors(const upgrade::Handover& h)
{
    board_memory_.reset(h.board);
    control_ = listener_of(h.control);
    pid_file_ = pidfile::PidFile::adopt(h.pid_path, Fd(h.pid_file));
    if (h.queues[0] >= 0)
        queues_ = parker::Queues{Fd(h.queues[0]), Fd(h.queues[1]), Fd(h.queues[2]), Fd(h.queues[3])};
    upgrading_.client.reset(h.client);
    upgrading_.previous.reset(h.failure.empty() ? h.previous : -1);
    if (!h.failure.empty() && h.previous >= 0)
        ::close(h.previous);   // our own image: upgrade::init() opened it again
    for (const upgrade::Listener& l : h.listeners)
        upgrading_.listeners.push_back(listener_of(l));
    started_at_ = h.started_at;
    started_ms_ = h.started_ms;
    config_loaded_at_ = ::time(nullptr);
    if (h.board_size != sizeof(scoreboard::Board))
        throw std::runtime_error("the scoreboard handed over has another layout (" +
                                 std::to_string(h.board_size) + " bytes, this build's " +
                                 std::to_string(sizeof(scoreboard::Board)) + ")");
    board_ = scoreboard::attach(board_memory_.get());
    if (config_.http.parking && !queues_.park_parker)
        queues_ = parker::make_queues();
}

// The workers are still this process's children: adopted with the slot,
// generation and channel they had.  Forward, they are the old generation,
// retired once a new worker is up; returning, they are ours.
void Master::adopt_pool(const upgrade::Handover& h)
{
    generation_ = h.generation + (h.failure.empty() ? 1 : 0);
    for (const upgrade::Worker& a : h.workers) {
        if (a.slot < 0 || std::size_t(a.slot) >= workers_.size())
            continue;
        WorkerInfo& w = workers_[std::size_t(a.slot)];
        w = WorkerInfo{};
        w.pid = a.pid;
        w.generation = a.generation;
        w.quit_sent_ms = a.quit_sent_ms;
        w.killed = a.killed;
        w.channel.reset(a.channel);
        if (a.generation < generation_ &&
            std::find(draining_.begin(), draining_.end(), a.generation) == draining_.end())
            draining_.push_back(a.generation);
    }
    std::sort(draining_.begin(), draining_.end());
    parker_pid_ = h.parker;
    log::notice("master process took over (pid " + std::to_string(::getpid()) + "): " +
                std::to_string(live_workers()) + " workers" + (parker_pid_ ? " and the parker" : "") +
                ", generation " + std::to_string(generation_));
}

std::optional<listener::Listener> Master::take_handed_listener(const std::string& canonical)
{
    auto it = std::find_if(upgrading_.listeners.begin(), upgrading_.listeners.end(),
                           [&](const listener::Listener& l) { return l.address.canonical == canonical; });
    if (it == upgrading_.listeners.end())
        return std::nullopt;
    listener::Listener l = std::move(*it);
    upgrading_.listeners.erase(it);
    return l;
}

// start() failed in a new image: every descriptor is still open at the
// number the handover gave, and no worker was started, so the handover as
// received takes the server back.  Returns when there is nothing to go
// back to (an ordinary start, or a returning image) or going back failed.
void Master::give_back(const std::string& why)
{
    const upgrade::Handover* h = upgrade::received();
    if (!h || !h->failure.empty())
        return;
    std::string error = upgrade::roll_back(*h, why);
    log::err("could not return to the previous binary: " + error);
}

void Master::check_upgrade()
{
    if (!upgrading_.pending)
        return;
    if (!startup_error_.empty())
        return roll_back(startup_error_);
    if (scoreboard::now_ms() > upgrading_.deadline_ms)
        roll_back("no worker of generation " + std::to_string(generation_) + " was up within " +
                  std::to_string(upgrade::kCommitDeadlineMs / 1000) + " s");
}

// The workers of the new generation run the new binary: they go, and the
// previous image gets the rest as its own generation.
void Master::roll_back(const std::string& why)
{
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        WorkerInfo& w = workers_[i];
        if (!w.pid || w.generation != generation_)
            continue;
        ::kill(w.pid, SIGKILL);
        while (::waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        w = WorkerInfo{};
        board_->slots[i].pid.store(0);
        board_->slots[i].state.store(scoreboard::State::empty);
    }
    upgrade::Handover h = handover();
    h.arguments = upgrade::received()->arguments;
    h.generation = generation_ - 1;
    h.client = upgrading_.client.get();
    h.previous = -1;
    for (const listener::Listener& l : upgrading_.listeners)
        h.listeners.push_back(handed(l));
    log::err("upgrade failed, returning to the previous binary: " + why);
    h.failure = why;
    std::string error = upgrade::exec(h.arguments[0], upgrading_.previous.get(), h.arguments, h);
    // Nowhere to go back to: this image serves on, with the pool it has.
    log::err("could not return to the previous binary: " + error + "; the new binary carries on");
    startup_error_.clear();
    started_ = true;
    finish_upgrade(false, "the new binary failed before it served (" + why +
                              ") and the previous one could not be restored: " + error);
}

// The verdict, once: to the log, to systemd, and to the -s upgrade client.
// Handed-over listeners the configuration no longer names are closed now,
// no longer needed to go back.
void Master::finish_upgrade(bool ok, const std::string& verdict)
{
    if (!upgrading_.pending)
        return;
    upgrading_.pending = false;
    started_ = true;
    for (listener::Listener& l : upgrading_.listeners) {
        log::notice("no longer listening on " + l.address.canonical);
        if (l.created_path)
            ::unlink(l.address.path.c_str());
    }
    upgrading_.listeners.clear();
    upgrading_.previous.reset();
    std::string text = ok ? "preforkd " PREFORKD_VERSION " (" + upgrade::binary_path() +
                                ") serves, generation " + std::to_string(generation_)
                          : verdict;
    if (ok) {
        log::notice("upgrade: " + text);
    } else {
        log::err("upgrade failed: " + text);
        notify::ready("upgrade failed, running generation " + std::to_string(generation_));
    }
    if (upgrading_.client)
        control::write_all(upgrading_.client.get(), (ok ? "ok: " : "failed: ") + text + "\n", 2000);
    upgrading_.client.reset();
}

// A worker or the parker holds nothing of an upgrade under way.
void Master::forget_upgrade_in_child()
{
    upgrading_.client.reset();
    upgrading_.previous.reset();
    for (listener::Listener& l : upgrading_.listeners)
        l.fd.reset();
    board_memory_.reset();
    upgrade::close_in_child();
}

}  // namespace preforkd::master
