// master.cpp - the master process: its loop, its workers, its signals.
//
// Signals are blocked except inside wait_for_event(); handlers only set
// flags, and the loop handles them one at a time between reaping and pool
// maintenance.  The loop wakes at least once a second (pool maintenance and
// the watchdog are per-second decisions), and every 50 ms while it waits for
// workers to come up, because a worker becoming idle sends no signal.
//
// What each step decides on comes from one walk of the worker table
// (worker_table.hpp); the watchdog's deadlines, the listener set, the
// reload transaction and the control socket are in files of their own, so
// that this file is the loop and the life cycle of a worker.
//
// Rejected: a thread per concern (signals do not mix well with threads and
// the scoreboard would need locks), and waiting in sigsuspend (no timeout).
#include "preforkd/master.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "preforkd/access_log.hpp"
#include "preforkd/daemon.hpp"
#include "preforkd/log.hpp"
#include "preforkd/master_support.hpp"
#include "preforkd/notify.hpp"
#include "preforkd/proctitle.hpp"
#include "preforkd/sandbox.hpp"
#include "preforkd/signals.hpp"
#include "preforkd/watchdog.hpp"
#include "preforkd/worker.hpp"

#ifndef PREFORKD_VERSION
#define PREFORKD_VERSION "0.0.0"
#endif

namespace preforkd::master {
namespace {

using scoreboard::State;

constexpr std::int64_t kFastStopGraceMs = 500;   // TERM, then KILL
constexpr int kCrashBurst = 5;
constexpr std::int64_t kCrashWindowMs = 10000;

// A worker's channel: the reopened access logs travel over it as datagrams.
bool channel_pair(Fd& master_end, Fd& worker_end)
{
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    master_end.reset(sv[0]);
    worker_end.reset(sv[1]);
    return true;
}

}  // namespace

Master::Master(config::Config config, cli::Options options, Fd& ready_pipe,
               std::vector<listener::Listener> inherited)
    : options_(std::move(options)), ready_pipe_(ready_pipe), listeners_(std::move(inherited))
{
    serving_.config = std::move(config);
}

Master::~Master()
{
    listeners_.close();
    close_control();
}

// ---- the loop -------------------------------------------------------------

int Master::run()
{
    try {
        start();
    } catch (const std::exception& e) {
        give_back(e.what());   // an upgrade that cannot start returns to the old binary
        throw;
    }
    for (;;) {
        reap_workers();
        check_upgrade();
        if (!startup_error_.empty())
            break;
        handle_signals();
        kill_hung_workers();
        kill_overdue_workers();
        if (stopped())
            break;
        maintain_pool();
        tls::tickets::tick(scoreboard::now_ms());
        keep_parker();
        finish_reload();
        report_progress();
        wait_for_event();
    }
    listeners_.close();
    close_control();
    if (!startup_error_.empty()) {
        signal_all(SIGKILL);
        while ((workers_.tally(generation_).live > 0 || parker_pid_) && ::waitpid(-1, nullptr, 0) > 0)
            reap_workers();
        throw std::runtime_error(startup_error_);
    }
    pid_file_.remove();
    log::notice("exiting");
    return 0;
}

void Master::start()
{
    if (const upgrade::Handover* handed = upgrade::received())
        return start_adopted(*handed);
    // The first line of every start: which build the log lines come from.
    log::notice("preforkd " PREFORKD_VERSION " starting");
    signals::install_master(wait_mask_);
    raise_descriptor_limit(serving_.config);
    // Before any TLS context is built (they use the keys) and any fork.
    tls::tickets::start(serving_.config.tls);
    serving_ = build_serving(std::move(serving_.config));
    // Before the listeners: whether workers wait in epoll decides how the
    // listeners are tuned.
    if (serving_.config.http.parking)
        queues_ = parker::make_queues();
    listeners_.open(serving_.config);
    tune_listeners();
    pid_file_ = pidfile::PidFile(serving_.config.pid_file);
    open_control();
    board_ = scoreboard::create(board_memory_);
    workers_.attach(board_);
    proctitle::set("preforkd: master process " + proctitle::original());
    log::notice("master process started (pid " + std::to_string(::getpid()) +
                "), generation " + std::to_string(generation_));
    apply_cpu_scheduling();
    if (queues_.park_parker)
        spawn_parker();
    for (int i = 0; i < pool_target(); ++i)
        spawn_worker();
    next_tick_ms_ = scoreboard::now_ms() + 1000;
}

// Stopping, and nothing left to wait for.
bool Master::stopped() const
{
    return phase_ != Phase::running && workers_.tally(generation_).live == 0 && parker_pid_ == 0;
}

void Master::wait_for_event()
{
    bool waiting = !announced_ready_ || reload_.open || phase_ != Phase::running;
    // Short of idle workers, the count that adaptive keep-alive reads must
    // stay fresh: a quarter of a second is the most it may lag.
    bool pressed = board_->idle_workers.load() < board_->spare_target.load();
    std::int64_t cap = pressed ? 250 : 1000;
    std::int64_t ms = waiting ? 50 : std::clamp<std::int64_t>(next_tick_ms_ - scoreboard::now_ms(), 1, cap);
    timespec ts{time_t(ms / 1000), long(ms % 1000) * 1000000};
    // The control socket is the one descriptor waited on; a client is
    // served here, within bounds of its own (serve_control()).
    pollfd control{control_.fd.get(), POLLIN, 0};
    if (::ppoll(&control, 1, &ts, &wait_mask_) > 0 && (control.revents & POLLIN))
        serve_control();
}

// Workers inherit the master's CPU scheduling policy (fork keeps it), so the
// master takes the configured one before it forks a generation.  Under
// SCHED_BATCH a worker woken by a new connection does not preempt the task
// that is running (often the one that sent the packet) but waits for its
// turn, which saves a pair of context switches per request when the CPUs
// are busy and changes nothing when they are idle.
void Master::apply_cpu_scheduling()
{
    const config::Workers& w = serving_.config.workers;
    sched_param none{};
    if (::sched_setscheduler(0, w.cpu_policy, &none) != 0)
        log::warning(sys_message("sched_setscheduler", w.cpu_scheduling, errno) +
                     "; workers keep the scheduling policy they have");
}

void Master::tune_listeners()
{
    listeners_.tune(serving_.config, bool(queues_.ready_worker));
}

// ---- workers ----------------------------------------------------------------

void Master::reap_workers()
{
    for (;;) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        if (pid == parker_pid_)
            on_parker_exit(status);
        int slot = workers_.slot_of(pid);
        if (slot >= 0)
            on_worker_exit(slot, status);
    }
}

void Master::on_worker_exit(int slot, int status)
{
    WorkerInfo& w = workers_.row(slot);
    scoreboard::Slot& s = workers_.slot(slot);
    bool at_startup = s.state.load() == State::starting;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    bool expected = w.quit_sent_ms != 0 || w.killed || phase_ != Phase::running;
    // A clean exit is routine (a reload retires every worker, max_requests
    // recycles them): debug.  What the master caused otherwise is notice.
    std::string text = exit_text(w.pid, status, s);
    log::write(clean ? LOG_DEBUG : expected ? LOG_NOTICE : LOG_WARNING, text);
    // Start-up failures of the current generation only: a straggler of a
    // generation rolled back dies at start-up too, as the master asked.
    if (at_startup && !clean && phase_ == Phase::running && w.generation == generation_) {
        std::string why = s.note[0] ? s.note : text;
        if (!started_)
            startup_error_ = "worker could not start: " + why;
        else
            back_off(++startup_failures_, "workers are dying at start-up (" + why + ")");
        // For finish_reload(): a new generation that cannot start is rolled back.
        if (reload_.open && w.generation == generation_) {
            ++reload_.startup_deaths;
            reload_.why = why;
        }
    } else if (!clean && !expected) {
        note_crash();
    }
    // An unexpected death is made good now rather than at the next tick; a
    // retirement is not, or each exit would trigger the next retirement.
    if (!expected)
        next_tick_ms_ = 0;
    workers_.release(slot);
}

// Crashes of running workers: a few are bad luck, a burst is a crash loop
// (a request of death, a broken file system) that forking faster would only
// feed.  kCrashBurst deaths within kCrashWindowMs slow the spawning down.
void Master::note_crash()
{
    std::int64_t now = scoreboard::now_ms();
    while (!recent_crashes_.empty() && now - recent_crashes_.front() > kCrashWindowMs)
        recent_crashes_.pop_front();
    if (recent_crashes_.empty())
        crash_level_ = 0;
    recent_crashes_.push_back(now);
    if (int(recent_crashes_.size()) >= kCrashBurst)
        back_off(++crash_level_, "workers are dying too fast (" +
                                     std::to_string(recent_crashes_.size()) + " in the last " +
                                     std::to_string(kCrashWindowMs / 1000) + " s)");
}

// No spawning for 0.1 s doubling with `level`, at most kMaxBackoffMs: one log
// line each time, never a fork storm.
void Master::back_off(int level, const std::string& why)
{
    std::int64_t delay = backoff_ms(level);
    backoff_until_ms_ = scoreboard::now_ms() + delay;
    log::err(why + "; next spawn in " + std::to_string(delay) + " ms");
}

void Master::spawn_worker()
{
    if (serving_.config.http.parking && !queues_.park_parker) {
        // Parking turned on by a reload: the queues first, and listeners
        // that suit workers waiting in epoll; keep_parker() starts the parker.
        queues_ = parker::make_queues();
        tune_listeners();
    }
    int slot = workers_.free_slot();
    if (slot < 0) {
        log::err("no free scoreboard slot");
        return;
    }
    Fd master_end, worker_end;
    if (!channel_pair(master_end, worker_end)) {
        log::err(sys_message("socketpair", "", errno));
        return;
    }
    workers_.claim(slot, generation_);
    if (serving_.config.sandbox)
        sandbox::compile();   // once: the worker only loads it
    pid_t pid = ::fork();
    if (pid == 0) {
        master_end.reset();
        become_worker(slot, std::move(worker_end));
    }
    worker_end.reset();
    if (pid < 0) {
        workers_.slot(slot).state.store(State::empty);
        log::err(sys_message("fork", "worker", errno));
        return;
    }
    workers_.adopt(slot, pid, generation_, std::move(master_end));
}

void Master::become_worker(int slot, Fd channel)
{
    close_inherited_in_child();
    queues_.park_parker.reset();
    queues_.ready_parker.reset();
    worker::Context c = worker_context(serving_, listeners_, queues_, board_, slot, generation_,
                                       std::move(channel));
    worker::run(c);
}

// Descriptors only the master may hold: the pid file's lock must die with
// the master, the verdict pipe's EOF must reach the launcher, a worker's
// channel belongs to that worker alone, and what an open reload keeps for a
// rollback (a listener it dropped would otherwise queue connections in the
// new workers that nobody accepts).
void Master::close_inherited_in_child()
{
    pid_file_.forget();
    ready_pipe_.reset();
    control_.fd.reset();
    control_client_.reset();
    workers_.release_in_child();
    reload_.waiting.clear();
    for (listener::Listener& l : reload_.dropped)
        l.fd.reset();
    reload_.previous.access_log.reset();
    for (site_setup::LogFile& l : reload_.previous.sites.logs)
        l.fd.reset();
    forget_upgrade_in_child();
}

void Master::retire_generation(std::uint32_t generation)
{
    workers_.retire_if([generation](std::uint32_t g) { return g <= generation; });
}

void Master::signal_all(int number)
{
    if (parker_pid_)
        ::kill(parker_pid_, number);
    workers_.signal_all(number);
}

// ---- the parker ---------------------------------------------------------------

// The parker belongs to no generation: reloads leave it and the connections
// it holds alone.  It gets no listener and no log, only the two queues.
void Master::spawn_parker()
{
    scoreboard::Slot& s = board_->parker;
    s.state.store(State::starting);
    s.note[0] = '\0';
    s.sandboxed.store(0);
    s.sandbox_call.store(0);
    scoreboard::progress(s);
    if (serving_.config.sandbox)
        sandbox::compile();
    pid_t pid = ::fork();
    if (pid == 0) {
        close_inherited_in_child();
        listeners_.forget();   // not close(): the socket files stay
        serving_.access_log.reset();
        for (site_setup::LogFile& l : serving_.sites.logs)
            l.fd.reset();
        queues_.ready_worker.reset();   // park_worker stays: for a hand-over
        parker::become(queues_, board_, serving_.identity, serving_.config.sandbox);
    }
    if (pid < 0) {
        s.state.store(State::empty);
        log::err(sys_message("fork", "parker", errno));
        parker_due_ms_ = scoreboard::now_ms() + 1000;
        return;
    }
    parker_pid_ = pid;
    s.pid.store(pid);
}

// A parker that dies takes the connections it held with it (their clients
// see a close, as with a crashed worker); workers keep theirs, and the park
// queue keeps what was on its way.  It is replaced at once the first time,
// then with the workers' back-off, so a parker that cannot start does not
// fork in a loop.
void Master::on_parker_exit(int status)
{
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    bool expected = phase_ != Phase::running;
    std::string text = "parker " + exit_text(parker_pid_, status, board_->parker).substr(7);
    log::write(clean || expected ? LOG_INFO : LOG_ERR, text);
    parker_pid_ = 0;
    board_->parker.pid.store(0);
    board_->parker.state.store(State::empty);
    board_->parked.store(0);
    if (expected)
        return;
    std::int64_t delay = parker_failures_ ? backoff_ms(parker_failures_ + 1) : 0;
    ++parker_failures_;
    parker_due_ms_ = scoreboard::now_ms() + delay;
}

void Master::keep_parker()
{
    if (!queues_.park_parker || parker_pid_ || phase_ != Phase::running ||
        scoreboard::now_ms() < parker_due_ms_)
        return;
    spawn_parker();
    // Up and serving for a while: its next death is bad luck, not a loop.
    if (parker_failures_ && scoreboard::now_ms() - parker_due_ms_ > kCrashWindowMs)
        parker_failures_ = 0;
}

// ---- pool, deadlines, progress ----------------------------------------------

pool::Limits Master::limits() const
{
    const config::Workers& w = serving_.config.workers;
    pool::Limits l;
    l.max = w.max;
    l.floor = std::clamp(w.start + floor_adjust_, 0, w.max);
    l.min_spare = std::max(0, w.min_spare + floor_adjust_);
    l.max_spare = std::max(l.min_spare, w.max_spare + floor_adjust_);
    return l;
}

// The workers a generation starts with, and "ready" waits for.
int Master::pool_target() const
{
    return std::min(serving_.config.workers.start, serving_.config.workers.max);
}

void Master::maintain_pool()
{
    std::int64_t now = scoreboard::now_ms();
    if (phase_ != Phase::running || paused_ || now < next_tick_ms_)
        return;
    next_tick_ms_ = std::max(now + 1000, backoff_until_ms_);
    if (now < backoff_until_ms_)
        return;
    pool::Counts counts = workers_.tally(generation_).pool;
    pool::Decision d = maintainer_.tick(counts, limits());
    // Apache's "server seems busy" line: a doubled rate is worth a word, a
    // single replacement is not.
    if (d.spawn >= 4)
        log::info("pool: spawning " + std::to_string(d.spawn) + " workers (" +
                  std::to_string(counts.idle) + " idle of " + std::to_string(counts.total) +
                  "; the rate doubles each second while short of min_spare)");
    for (int i = 0; i < d.spawn; ++i)
        spawn_worker();
    if (d.retire) {
        int slot = workers_.tally(generation_).idle_slot;
        if (slot >= 0)
            workers_.retire(slot);
    }
}

void Master::kill_hung_workers()
{
    watchdog::kill_hung(workers_, serving_.config.workers.watchdog_timeout, scoreboard::now_ms());
}

// A fast stop's deadline is the master's own: TERM, then KILL.
void Master::kill_overdue_workers()
{
    std::int64_t now = scoreboard::now_ms();
    if (phase_ == Phase::stopping_fast && now >= stop_deadline_ms_) {
        signal_all(SIGKILL);
        return;
    }
    watchdog::kill_overdue(workers_, serving_.config.workers.graceful_timeout, now);
}

// The figures adaptive keep-alive reads, "ready" once per generation, and
// the status line.  Nothing is decided here.
void Master::report_progress()
{
    publish_status();
    Tally t = workers_.tally(generation_);
    board_->idle_workers.store(t.accepting, std::memory_order_relaxed);
    board_->spare_target.store(limits().min_spare, std::memory_order_relaxed);
    if (!announced_ready_ && t.up >= pool_target()) {
        announced_ready_ = true;
        log::notice("ready: generation " + std::to_string(generation_) + ", " +
                    std::to_string(t.up) + " workers");
        if (!started_) {
            started_ = true;
            daemon::report(ready_pipe_, true);
        }
        notify::ready("generation " + std::to_string(generation_) + " ready");
    }
    if (startup_failures_ && t.idle_slot >= 0)
        startup_failures_ = 0;
    announce_status();
}

// STATUS= for `systemctl status`, sent only when it changed.
void Master::announce_status()
{
    if (!notify::enabled())
        return;
    std::string text = control::summary(snapshot());
    if (text != last_status_)
        notify::status(text);
    last_status_ = text;
}

// ---- signals ----------------------------------------------------------------

void Master::handle_signals()
{
    while (int number = signals::take())
        handle_signal(number);
}

void Master::handle_signal(int number)
{
    std::string name = signals::name(number);
    switch (number) {
    case SIGCHLD:
        return;   // reap_workers() does the work
    case SIGTERM:
    case SIGINT:
        log::notice("received " + name + ", shutting down");
        return stop(Phase::stopping_fast);
    case SIGQUIT:
        log::notice("received " + name + ", shutting down gracefully");
        return stop(Phase::stopping_graceful);
    case SIGHUP:
        log::notice("received " + name + ", reloading");
        return reload();
    case SIGUSR1:
        log::notice("received " + name + ", reopening logs");
        return reopen_logs();
    case SIGUSR2:
        log::notice("received " + name + ", upgrading the binary in place");
        upgrade_binary();
        return;
    case SIGWINCH:
        log::notice("received " + name + ", stopping workers");
        paused_ = true;
        return retire_generation(generation_);
    case SIGTTIN:
    case SIGTTOU:
        return adjust_floor(number == SIGTTIN ? 1 : -1);
    }
}

void Master::stop(Phase phase)
{
    if (phase_ == Phase::stopping_fast)
        return;
    phase_ = phase;
    notify::stopping();
    answer_waiting("failed: the server is stopping\n");
    listeners_.close();
    board_->stopping.store(true);
    if (phase == Phase::stopping_fast) {
        stop_deadline_ms_ = scoreboard::now_ms() + kFastStopGraceMs;
        signal_all(SIGTERM);
    } else {
        // The parker closes what it holds (idle connections, heads still
        // coming); what it already handed on is served by the last workers.
        if (parker_pid_)
            ::kill(parker_pid_, SIGQUIT);
        retire_generation(generation_);
    }
}

void Master::adjust_floor(int delta)
{
    int floor = serving_.config.workers.start + floor_adjust_ + delta;
    const char* name = delta > 0 ? "SIGTTIN" : "SIGTTOU";
    if (phase_ != Phase::running || floor < 0 || floor > serving_.config.workers.max) {
        log::notice(std::string("received ") + name + ", pool floor stays " +
                    std::to_string(floor - delta));
        return;
    }
    floor_adjust_ += delta;
    log::notice(std::string("received ") + name + ", pool floor is now " + std::to_string(floor));
    if (delta < 0 && workers_.tally(generation_).pool.total > floor) {
        int slot = workers_.tally(generation_).idle_slot;
        if (slot >= 0)
            workers_.retire(slot);
    }
    next_tick_ms_ = 0;
}

// The main log and every site's own, all or none: a failure keeps every old
// file.  Site logs go to the current generation only, whose sink numbers
// they are; a draining generation keeps writing its old files until it ends.
void Master::reopen_logs()
{
    const config::Config& config = serving_.config;
    site_setup::Sites& sites = serving_.sites;
    bool main_file = access_log::mode_of(config) == access_log::Mode::file;
    if (!main_file && sites.logs.empty())
        return;
    Fd fresh;
    std::vector<Fd> site_logs;
    try {
        if (main_file)
            fresh = access_log::open(config);
        site_logs = site_setup::reopen(sites);
    } catch (const std::exception& e) {
        log::err(std::string("reopening logs failed, keeping the old files: ") + e.what());
        return;
    }
    for (int slot = 0; slot < workers_.size(); ++slot) {
        const WorkerInfo& w = workers_.row(slot);
        if (!w.pid)
            continue;
        bool sent = !main_file || access_log::send_fd(w.channel.get(), fresh.get(), 0);
        for (std::size_t i = 0; sent && w.generation == generation_ && i < site_logs.size(); ++i)
            sent = access_log::send_fd(w.channel.get(), site_logs[i].get(), std::uint32_t(i + 1));
        if (!sent)
            log::warning("could not pass the reopened logs to worker " + std::to_string(w.pid));
    }
    board_->log_epoch.fetch_add(1, std::memory_order_release);
    if (main_file) {
        serving_.access_log = std::move(fresh);
        log::notice("reopened " + config.log.access_log);
    }
    for (std::size_t i = 0; i < site_logs.size(); ++i) {
        sites.logs[i].fd = std::move(site_logs[i]);
        log::notice("reopened " + sites.logs[i].path);
    }
}

}  // namespace preforkd::master
