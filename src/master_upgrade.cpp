// master_upgrade.cpp - the master's side of the in-place binary upgrade.
//
// The sending image checks the new binary (upgrade::check) and executes it
// with handover(): what it owns, by descriptor number.  The receiving image
// starts in start_adopted() instead of start(): it takes the descriptors
// into their owners, binds nothing it was given, adopts the workers as the
// old generation (adopt_old_generation(), the reload's seam for this) with
// the channels and retirements the handover names, and starts the next
// generation as a reload does.  The upgrade commits in finish_reload(),
// when the old generation is retired because a new worker is up; before
// that, check_upgrade() and give_back() return to the previous image on
// any failure.  A returning image (a handover with a failure) keeps the
// workers as its own generation and starts none: it was serving with them
// a moment ago.
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

#include "preforkd/control.hpp"
#include "preforkd/log.hpp"
#include "preforkd/master.hpp"
#include "preforkd/master_support.hpp"
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
    // Its clients wait for a verdict this image would take with it, and an
    // upgrade under way (in a new image) has not committed yet.
    if (reload_.open)
        return "a reload or an upgrade is still under way: generation " + std::to_string(generation_) +
               " has no worker up yet";
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
    h.tickets = tls::tickets::memfd();
    h.generation = generation_;
    h.started_at = started_at_;
    h.started_ms = started_ms_;
    h.arguments = upgrade::arguments(options_);
    for (const listener::Listener& l : listeners_.all())
        h.listeners.push_back(handed(l));
    for (int i = 0; i < workers_.size(); ++i) {
        const WorkerInfo& w = workers_.row(i);
        if (w.pid)
            h.workers.push_back({w.pid, i, w.generation, w.channel.get(), w.quit_sent_ms, w.killed});
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
    // The keys every worker encrypts tickets with carry over, so a client
    // resumes across the upgrade as across a reload.
    if (h.tickets >= 0) {
        try {
            tls::tickets::adopt(h.tickets);
        } catch (const std::exception& e) {
            log::warning(std::string("upgrade: new session-ticket keys: ") + e.what());
        }
    }
    tls::tickets::start(serving_.config.tls);
    serving_ = build_serving(std::move(serving_.config));
    listeners_.open(serving_.config);
    tune_listeners();
    proctitle::set("preforkd: master process " + proctitle::original());
    apply_cpu_scheduling();
    adopt_pool(h);
    if (queues_.park_parker && !parker_pid_)
        spawn_parker();
    next_tick_ms_ = scoreboard::now_ms() + 1000;
    upgrading_.pending = true;
    if (returning) {
        started_ = true;
        return finish_upgrade(false, "the new binary failed before it served, the previous one "
                                     "runs again: " + h.failure);
    }
    started_ = false;   // a worker that cannot start now means: go back
    upgrading_.deadline_ms = scoreboard::now_ms() + upgrade::kCommitDeadlineMs;
    start_generation();
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
    std::vector<listener::Listener> handed_over;
    for (const upgrade::Listener& l : h.listeners)
        handed_over.push_back(listener_of(l));
    listeners_ = ListenerSet(std::move(handed_over), "the previous binary");
    started_at_ = h.started_at;
    started_ms_ = h.started_ms;
    if (h.board_size != sizeof(scoreboard::Board))
        throw std::runtime_error("the scoreboard handed over has another layout (" +
                                 std::to_string(h.board_size) + " bytes, this build's " +
                                 std::to_string(sizeof(scoreboard::Board)) + ")");
    board_ = scoreboard::attach(board_memory_.get());
    workers_.attach(board_);
    if (serving_.config.http.parking && !queues_.park_parker)
        queues_ = parker::make_queues();
}

// The workers are still this process's children.  Forward, the board's
// live workers become the old generation through the reload's seam, and
// get back the channel and the retirement the handover names; returning,
// they are the current generation again.
void Master::adopt_pool(const upgrade::Handover& h)
{
    parker_pid_ = h.parker;
    if (h.failure.empty())
        adopt_old_generation();
    for (const upgrade::Worker& a : h.workers) {
        if (a.slot < 0 || a.slot >= workers_.size()) {
            ::close(a.channel);
            continue;
        }
        if (!h.failure.empty())
            workers_.adopt(a.slot, a.pid, a.generation, Fd());
        WorkerInfo& w = workers_.row(a.slot);
        w.channel.reset(w.pid == a.pid ? a.channel : -1);
        w.quit_sent_ms = a.quit_sent_ms;
        w.killed = a.killed;
    }
    if (h.failure.empty()) {
        generation_ = newest_generation_ = std::max(generation_, h.generation + 1);
        reload_.open = true;   // retired as a reload retires: finish_reload()
        reload_.can_roll_back = false;
        reload_.committed_ms = scoreboard::now_ms();
    } else {
        generation_ = h.generation;
        newest_generation_ = h.generation + 1;   // the failed one's number is not reused
    }
    for (int i = 0; i < workers_.size(); ++i) {
        std::uint32_t g = workers_.row(i).generation;
        if (workers_.row(i).pid && g < generation_ && std::find(draining_.begin(), draining_.end(), g) == draining_.end())
            draining_.push_back(g);
    }
    log::notice("master process took over (pid " + std::to_string(::getpid()) + "): " +
                std::to_string(workers_.tally(generation_).live) + " workers" +
                (parker_pid_ ? " and the parker" : "") + ", generation " + std::to_string(generation_));
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
        return return_to_previous(startup_error_);
    if (scoreboard::now_ms() > upgrading_.deadline_ms)
        return_to_previous("no worker of generation " + std::to_string(generation_) + " was up within " +
                           std::to_string(upgrade::kCommitDeadlineMs / 1000) + " s");
}

// The workers of the new generation run the new binary: they go, and the
// previous image gets the rest as its own generation.
void Master::return_to_previous(const std::string& why)
{
    for (int i = 0; i < workers_.size(); ++i) {
        const WorkerInfo& w = workers_.row(i);
        if (!w.pid || w.generation != generation_)
            continue;
        ::kill(w.pid, SIGKILL);
        while (::waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        workers_.release(i);
    }
    const upgrade::Handover* received = upgrade::received();
    upgrade::Handover h = handover();
    h.arguments = received->arguments;
    h.generation = received->generation;
    h.client = upgrading_.client.get();
    h.previous = -1;
    h.failure = why;
    log::err("upgrade failed, returning to the previous binary: " + why);
    std::string error = upgrade::exec(h.arguments[0], upgrading_.previous.get(), h.arguments, h);
    // Nowhere to go back to: this image serves on, with the pool it has.
    log::err("could not return to the previous binary: " + error + "; the new binary carries on");
    startup_error_.clear();
    finish_upgrade(false, "the new binary failed before it served (" + why +
                              ") and the previous one could not be restored: " + error);
}

// The verdict, once: to the log, to systemd, and to the -s upgrade client.
void Master::finish_upgrade(bool ok, const std::string& verdict)
{
    if (!upgrading_.pending)
        return;
    upgrading_.pending = false;
    started_ = true;
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
    board_memory_.reset();
    upgrade::close_in_child();
    tls::tickets::forget_in_child();   // the key block's read-write descriptor
}

}  // namespace preforkd::master
