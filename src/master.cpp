// master.cpp - the master process.
//
// Signals are blocked except inside wait_for_event(); handlers only set
// flags, and the loop handles them one at a time between reaping and pool
// maintenance.  The loop wakes at least once a second (pool maintenance and
// the watchdog are per-second decisions), and every 50 ms while it waits for
// workers to come up, because a worker becoming idle sends no signal.
//
// Rejected: a thread per concern (signals do not mix well with threads and
// the scoreboard would need locks), and waiting in sigsuspend (no timeout).
#include "preforkd/master.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
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
#include "preforkd/notify.hpp"
#include "preforkd/proctitle.hpp"
#include "preforkd/sandbox.hpp"
#include "preforkd/signals.hpp"
#include "preforkd/worker.hpp"

#ifndef PREFORKD_VERSION
#define PREFORKD_VERSION "0.0.0"
#endif

namespace preforkd::master {
namespace {

using scoreboard::State;

constexpr std::int64_t kFastStopGraceMs = 500;   // TERM, then KILL
constexpr std::int64_t kAbortGraceMs = 2000;     // watchdog: ABRT, then KILL
constexpr std::int64_t kMaxBackoffMs = 30000;
constexpr int kCrashBurst = 5;
constexpr std::int64_t kCrashWindowMs = 10000;

std::string display_name(const listener::Listener& l)
{
    const listener::Address& a = l.address;
    if (a.family == listener::Family::unix_path || a.port != 0)
        return a.canonical;
    std::string port = std::to_string(listener::bound_port(l.fd.get()));
    return a.family == listener::Family::inet6 ? "[" + a.host + "]:" + port : a.host + ":" + port;
}

// 0.1 s doubling with `level` (1, 2, ...), at most kMaxBackoffMs.
std::int64_t backoff_ms(int level)
{
    return std::min<std::int64_t>(kMaxBackoffMs, std::int64_t(100) << std::min(level - 1, 9));
}

std::string exit_text(pid_t pid, int status)
{
    std::string text = "worker " + std::to_string(pid);
    if (WIFSIGNALED(status))
        return text + " exited on signal " + std::to_string(WTERMSIG(status)) + " (" +
               strsignal(WTERMSIG(status)) + ")";
    return text + " exited with status " + std::to_string(WEXITSTATUS(status));
}

// A worker's exit as the log says it: a death by SIGSYS names the call its
// sandbox trapped, as the worker's handler recorded it in the slot; a
// SIGSYS with nothing recorded (sent from outside) is said as a signal.
std::string exit_text(pid_t pid, int status, const scoreboard::Slot& slot)
{
    std::int32_t call = slot.sandbox_call.load() - 1;
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
        return exit_text(pid, status);
    std::string text = "worker " + std::to_string(pid);
    if (call < 0)
        return text + " killed by SIGSYS";
    std::string name = sandbox::syscall_name(call);
    return text + " killed by its sandbox (system call " +
           (name.empty() ? std::to_string(call) : name) + ")";
}

std::string join(const std::vector<std::string>& lines, const char* sep)
{
    std::string out;
    for (const auto& l : lines)
        out += (out.empty() ? "" : sep) + l;
    return out;
}

// The configuration is the one source of every value here: each field is
// named, none is left to the struct's own initialiser.
connection::Settings settings_of(const config::Config& c)
{
    const config::Http& h = c.http;
    return connection::Settings{
        .limits = {.max_header_size = std::size_t(h.max_header_size),
                   .max_headers = std::size_t(h.max_headers),
                   .max_discard_body = std::uint64_t(h.max_discard_body)},
        .keepalive_timeout_ms = h.keepalive_timeout * 1000,
        .keepalive_requests = h.keepalive_requests,
        .header_timeout_ms = h.header_timeout * 1000,
        .header_timeout_max_ms = h.header_timeout_max * 1000,
        .header_min_rate = h.header_min_rate,
        .adaptive_keepalive = h.adaptive_keepalive,
        .send_timeout_ms = h.send_timeout * 1000,
        .parking = h.parking,
    };
}

// Each worker holds the listeners, its log and channel, one connection and
// one file; the master a channel per worker.  When the configuration needs
// more than the soft limit allows, the soft limit goes up toward the hard one.
void raise_descriptor_limit(const config::Config& c)
{
    rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t need = rlim_t(c.workers.max) + rlim_t(c.listen.size()) + 64;
    if (rl.rlim_cur >= need)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = std::min(rl.rlim_max, need);
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = was;
    if (rl.rlim_cur < need)
        log::warning("RLIMIT_NOFILE " + std::to_string(rl.rlim_cur) + " is below the " +
                     std::to_string(need) + " descriptors workers.max = " +
                     std::to_string(c.workers.max) + " needs; raise it (ulimit -n, LimitNOFILE=)");
    else
        log::notice("raised RLIMIT_NOFILE from " + std::to_string(was) + " to " +
                    std::to_string(rl.rlim_cur));
}

}  // namespace

Master::Master(config::Config config, cli::Options options, Fd& ready_pipe,
               std::vector<listener::Listener> inherited)
    : config_(std::move(config)), options_(std::move(options)), ready_pipe_(ready_pipe),
      inherited_(std::move(inherited)), workers_(config::kMaxWorkers)
{
}

Master::~Master()
{
    close_listeners();
    close_control();
}

// ---- the loop -------------------------------------------------------------

int Master::run()
{
    start();
    for (;;) {
        reap_workers();
        if (!startup_error_.empty())
            break;
        handle_signals();
        kill_hung_workers();
        kill_overdue_workers();
        if (phase_ != Phase::running && live_workers() == 0 && parker_pid_ == 0)
            break;
        maintain_pool();
        keep_parker();
        report_progress();
        wait_for_event();
    }
    close_listeners();
    close_control();
    if (!startup_error_.empty()) {
        signal_all(SIGKILL);
        while ((live_workers() > 0 || parker_pid_) && ::waitpid(-1, nullptr, 0) > 0)
            reap_workers();
        throw std::runtime_error(startup_error_);
    }
    pid_file_.remove();
    log::notice("exiting");
    return 0;
}

void Master::start()
{
    // The first line of every start: which build the log lines come from.
    log::notice("preforkd " PREFORKD_VERSION " starting");
    signals::install_master(wait_mask_);
    raise_descriptor_limit(config_);
    identity_ = privileges::resolve(config_);
    mime_ = std::make_shared<const http::MimeMap>(http::load_mime_types(config_.http.mime_types));
    sites_ = site_setup::build(config_, *mime_);
    access_log_ = access_log::open(config_);
    // Before the listeners: whether workers wait in epoll decides how the
    // listeners are tuned.
    if (config_.http.parking)
        queues_ = parker::make_queues();
    open_listeners();
    pid_file_ = pidfile::PidFile(config_.pid_file);
    open_control();
    board_ = scoreboard::create();
    proctitle::set("preforkd: master process " + proctitle::original());
    log::notice("master process started (pid " + std::to_string(::getpid()) +
                "), generation " + std::to_string(generation_));
    apply_cpu_scheduling();
    if (queues_.park_parker)
        spawn_parker();
    for (int i = 0; i < std::min(config_.workers.start, config_.workers.max); ++i)
        spawn_worker();
    next_tick_ms_ = scoreboard::now_ms() + 1000;
}

void Master::open_listeners()
{
    for (const std::string& text : config_.listen) {
        listener::ParseResult p = listener::parse(text);
        if (!p.address)
            throw std::runtime_error(p.error);
        listeners_.push_back(bind_or_adopt(*p.address, config_));
        log::notice("listening on " + display_name(listeners_.back()));
    }
    // A socket systemd passed for an address the configuration does not
    // name would queue connections nobody accepts: better closed, and said.
    for (const listener::Listener& l : inherited_)
        log::warning("socket " + l.address.canonical + " passed by systemd is not in listen; closing it");
    inherited_.clear();
    tune_listeners();
}

// Workers inherit the master's CPU scheduling policy (fork keeps it), so the
// master takes the configured one before it forks a generation.  Under
// SCHED_BATCH a worker woken by a new connection does not preempt the task
// that is running (often the one that sent the packet) but waits for its
// turn, which saves a pair of context switches per request when the CPUs
// are busy and changes nothing when they are idle.
void Master::apply_cpu_scheduling()
{
    sched_param none{};
    if (::sched_setscheduler(0, config_.workers.cpu_policy, &none) != 0)
        log::warning(sys_message("sched_setscheduler", config_.workers.cpu_scheduling, errno) +
                     "; workers keep the scheduling policy they have");
}

// Applied after every change of the listener set or the configuration.  A
// failure leaves the listener working as it was, so it is said, not fatal.
void Master::tune_listeners()
{
    for (const listener::Listener& l : listeners_) {
        try {
            // Workers that also wait on the parker's ready queue wait in
            // epoll, where a listener must not block.
            bool blocking = listeners_.size() == 1 && !queues_.ready_worker;
            listener::tune(l, config_.defer_accept, blocking);
        } catch (const std::exception& e) {
            log::warning(e.what());
        }
    }
}

// Socket activation: a socket systemd bound for this address is used as is
// (systemd keeps its copy, so it survives our restarts); otherwise we bind.
listener::Listener Master::bind_or_adopt(const listener::Address& address,
                                         const config::Config& c)
{
    auto same = [&](const listener::Listener& l) { return l.address.canonical == address.canonical; };
    auto it = std::find_if(inherited_.begin(), inherited_.end(), same);
    if (it == inherited_.end())
        return listener::open(address,
                              listener::unix_access(c.unix_mode_bits, c.unix_owner, c.unix_group));
    listener::Listener l = std::move(*it);
    inherited_.erase(it);
    log::info("using the socket passed by systemd for " + address.canonical);
    return l;
}

void Master::close_listeners()
{
    for (listener::Listener& l : listeners_) {
        if (l.created_path && l.fd)
            ::unlink(l.address.path.c_str());
        l.fd.reset();
    }
    listeners_.clear();
}

void Master::wait_for_event()
{
    bool waiting = !announced_ready_ || retire_older_pending_ || phase_ != Phase::running;
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
        for (std::size_t i = 0; i < workers_.size(); ++i)
            if (workers_[i].pid == pid) {
                on_worker_exit(int(i), status);
                break;
            }
    }
}

void Master::on_worker_exit(int slot, int status)
{
    WorkerInfo& w = workers_[std::size_t(slot)];
    scoreboard::Slot& s = board_->slots[slot];
    bool at_startup = s.state.load() == State::starting;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    bool expected = w.quit_sent_ms != 0 || w.killed || phase_ != Phase::running;
    // A clean exit is routine (a reload retires every worker, max_requests
    // recycles them): debug.  What the master caused otherwise is notice.
    std::string text = exit_text(w.pid, status, s);
    log::write(clean ? LOG_DEBUG : expected ? LOG_NOTICE : LOG_WARNING, text);
    if (at_startup && !clean && phase_ == Phase::running) {
        std::string why = s.note[0] ? s.note : text;
        if (!started_)
            startup_error_ = "worker could not start: " + why;
        else
            back_off(++startup_failures_, "workers are dying at start-up (" + why + ")");
    } else if (!clean && !expected) {
        note_crash();
    }
    // An unexpected death is made good now rather than at the next tick; a
    // retirement is not, or each exit would trigger the next retirement.
    if (!expected)
        next_tick_ms_ = 0;
    w.pid = 0;
    w.channel.reset();
    s.pid.store(0);
    s.state.store(State::empty);
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
    if (config_.http.parking && !queues_.park_parker) {
        // Parking turned on by a reload: the queues first, and listeners
        // that suit workers waiting in epoll; keep_parker() starts the parker.
        queues_ = parker::make_queues();
        tune_listeners();
    }
    int slot = -1;
    for (std::size_t i = 0; i < workers_.size() && slot < 0; ++i)
        if (workers_[i].pid == 0)
            slot = int(i);
    int sv[2];
    if (slot < 0 || ::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) {
        log::err(slot < 0 ? "no free scoreboard slot" : sys_message("socketpair", "", errno));
        return;
    }
    scoreboard::Slot& s = board_->slots[slot];
    s.generation.store(generation_);
    s.state.store(State::starting);
    s.requests.store(0);
    s.request[0] = s.note[0] = '\0';
    s.sandboxed.store(0);
    s.sandbox_call.store(0);
    scoreboard::progress(s);
    scoreboard::clear_status(s);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(sv[0]);
        become_worker(slot, Fd(sv[1]));
    }
    ::close(sv[1]);
    if (pid < 0) {
        ::close(sv[0]);
        s.state.store(State::empty);
        log::err(sys_message("fork", "worker", errno));
        return;
    }
    WorkerInfo& w = workers_[std::size_t(slot)];
    w = WorkerInfo{};
    w.pid = pid;
    w.generation = generation_;
    w.channel.reset(sv[0]);
    s.pid.store(pid);
}

void Master::become_worker(int slot, Fd channel)
{
    close_inherited_in_child();
    queues_.park_parker.reset();
    queues_.ready_parker.reset();
    worker::Context c;
    c.park = config_.http.parking ? queues_.park_worker.get() : -1;
    c.ready = queues_.ready_worker.get();
    for (const listener::Listener& l : listeners_)
        c.listeners.push_back(l.fd.get());
    c.board = board_;
    c.slot = slot;
    c.generation = generation_;
    c.log_epoch = board_->log_epoch.load();
    c.access_log_fd = access_log_.get();
    c.access_log_path = config_.log.access_log;
    c.log_mode = access_log::mode_of(config_);
    c.log_format = access_log::format_of(config_.log.access_format);
    c.log_priority = access_log::syslog_priority(config_);
    c.log_buffer = std::size_t(config_.log.access_buffer);
    c.log_flush_seconds = config_.log.access_flush;
    c.channel = channel.release();
    c.max_requests = config_.workers.max_requests;
    c.identity = identity_;
    c.sandbox = config_.sandbox;
    c.settings = settings_of(config_);
    c.sites = *sites_.table;
    c.tls = sites_.tls;
    for (const site_setup::LogFile& l : sites_.logs)
        c.site_logs.push_back({l.fd.get(), l.path, l.format});
    worker::run(c);
}

// Descriptors only the master may hold: the pid file's lock must die with
// the master, the verdict pipe's EOF must reach the launcher, and a worker's
// channel belongs to that worker alone.
void Master::close_inherited_in_child()
{
    pid_file_.forget();
    ready_pipe_.reset();
    control_.fd.reset();
    control_client_.reset();
    for (WorkerInfo& w : workers_)
        w.channel.reset();
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
    pid_t pid = ::fork();
    if (pid == 0) {
        close_inherited_in_child();
        for (listener::Listener& l : listeners_)
            l.fd.reset();   // not close_listeners(): the socket files stay
        access_log_.reset();
        for (site_setup::LogFile& l : sites_.logs)
            l.fd.reset();
        queues_.park_worker.reset();
        queues_.ready_worker.reset();
        parker::become(queues_, board_, identity_, config_.sandbox);
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

void Master::retire(int slot)
{
    WorkerInfo& w = workers_[std::size_t(slot)];
    if (w.pid == 0 || w.quit_sent_ms != 0)
        return;
    ::kill(w.pid, SIGQUIT);
    w.quit_sent_ms = scoreboard::now_ms();
}

void Master::retire_generation(std::uint32_t generation)
{
    for (std::size_t i = 0; i < workers_.size(); ++i)
        if (workers_[i].pid && workers_[i].generation <= generation)
            retire(int(i));
}

void Master::signal_all(int number)
{
    if (parker_pid_)
        ::kill(parker_pid_, number);
    for (WorkerInfo& w : workers_) {
        if (!w.pid)
            continue;
        ::kill(w.pid, number);
        if (number == SIGKILL)
            w.killed = true;
    }
}

int Master::live_workers() const
{
    return int(std::count_if(workers_.begin(), workers_.end(),
                             [](const WorkerInfo& w) { return w.pid != 0; }));
}

pool::Counts Master::count(std::uint32_t generation) const
{
    pool::Counts c;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        const WorkerInfo& w = workers_[i];
        if (!w.pid || w.generation != generation || w.quit_sent_ms)
            continue;
        ++c.total;
        State s = board_->slots[i].state.load();
        // A starting worker counts as idle, as in Apache: it will be soon,
        // and counting it as missing would fork a second one for the gap.
        if (s == State::idle || s == State::starting)
            ++c.idle;
    }
    return c;
}

int Master::workers_up(std::uint32_t generation) const
{
    int up = 0;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        State s = board_->slots[i].state.load();
        if (workers_[i].pid && workers_[i].generation == generation &&
            s != State::starting && s != State::empty)
            ++up;
    }
    return up;
}

// Workers waiting in accept() right now, whatever their generation.
int Master::accepting_workers() const
{
    int n = 0;
    for (std::size_t i = 0; i < workers_.size(); ++i)
        if (workers_[i].pid && !workers_[i].quit_sent_ms &&
            board_->slots[i].state.load() == State::idle)
            ++n;
    return n;
}

int Master::find_idle(std::uint32_t generation) const
{
    for (std::size_t i = workers_.size(); i-- > 0;) {
        const WorkerInfo& w = workers_[i];
        if (w.pid && w.generation == generation && !w.quit_sent_ms &&
            board_->slots[i].state.load() == State::idle)
            return int(i);
    }
    return -1;
}

// ---- pool, watchdog, deadlines ---------------------------------------------

pool::Limits Master::limits() const
{
    const config::Workers& w = config_.workers;
    pool::Limits l;
    l.max = w.max;
    l.floor = std::clamp(w.start + floor_adjust_, 0, w.max);
    l.min_spare = std::max(0, w.min_spare + floor_adjust_);
    l.max_spare = std::max(l.min_spare, w.max_spare + floor_adjust_);
    return l;
}

void Master::maintain_pool()
{
    std::int64_t now = scoreboard::now_ms();
    if (phase_ != Phase::running || paused_ || now < next_tick_ms_)
        return;
    next_tick_ms_ = std::max(now + 1000, backoff_until_ms_);
    if (now < backoff_until_ms_)
        return;
    pool::Counts counts = count(generation_);
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
        int slot = find_idle(generation_);
        if (slot >= 0)
            retire(slot);
    }
}

void Master::kill_hung_workers()
{
    std::int64_t limit = std::int64_t(config_.workers.watchdog_timeout) * 1000;
    std::int64_t now = scoreboard::now_ms();
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        WorkerInfo& w = workers_[i];
        scoreboard::Slot& s = board_->slots[i];
        if (!w.pid || w.killed)
            continue;
        if (w.abort_sent_ms && now - w.abort_sent_ms > kAbortGraceMs) {
            ::kill(w.pid, SIGKILL);
            w.killed = true;
        }
        std::int64_t idle_ms = now - s.progress_ms.load();
        if (limit == 0 || w.abort_sent_ms || !scoreboard::is_busy(s.state.load()) || idle_ms < limit)
            continue;
        log::err("watchdog: worker " + std::to_string(w.pid) + " made no progress for " +
                 std::to_string(idle_ms / 1000) + " s on \"" + s.request + "\"; killing it");
        // SIGCONT too: a stopped worker would otherwise never act on SIGABRT.
        ::kill(w.pid, SIGABRT);
        ::kill(w.pid, SIGCONT);
        w.abort_sent_ms = now;
    }
}

void Master::kill_overdue_workers()
{
    std::int64_t now = scoreboard::now_ms();
    std::int64_t grace = std::int64_t(config_.workers.graceful_timeout) * 1000;
    if (phase_ == Phase::stopping_fast && now >= stop_deadline_ms_) {
        signal_all(SIGKILL);
        return;
    }
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        WorkerInfo& w = workers_[i];
        if (!w.pid || w.killed || !w.quit_sent_ms || now - w.quit_sent_ms < grace)
            continue;
        log::warning("worker " + std::to_string(w.pid) + " still busy after graceful_timeout (" +
                     std::to_string(config_.workers.graceful_timeout) + " s) on \"" +
                     board_->slots[i].request + "\"; killing it");
        ::kill(w.pid, SIGKILL);
        w.killed = true;
    }
}

void Master::report_progress()
{
    publish_status();
    board_->idle_workers.store(accepting_workers(), std::memory_order_relaxed);
    board_->spare_target.store(limits().min_spare, std::memory_order_relaxed);
    int up = workers_up(generation_);
    int target = std::min(config_.workers.start, config_.workers.max);
    if (!announced_ready_ && up >= target) {
        announced_ready_ = true;
        log::notice("ready: generation " + std::to_string(generation_) + ", " +
                    std::to_string(up) + " workers");
        if (!started_) {
            started_ = true;
            daemon::report(ready_pipe_, true);
        }
        notify::ready("generation " + std::to_string(generation_) + " ready");
    }
    if (retire_older_pending_ && (up > 0 || target == 0)) {
        retire_older_pending_ = false;
        retire_generation(generation_ - 1);
    }
    for (auto it = draining_.begin(); it != draining_.end();) {
        std::uint32_t g = *it;
        bool alive = std::any_of(workers_.begin(), workers_.end(), [g](const WorkerInfo& w) {
            return w.pid && w.generation == g;
        });
        if (alive) {
            ++it;
            continue;
        }
        log::notice("reload: generation " + std::to_string(g) + " retired");
        it = draining_.erase(it);
    }
    if (startup_failures_ && find_idle(generation_) >= 0)
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
        log::warning("received " + name + ": binary upgrade is not supported yet");
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
    close_listeners();
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
    int floor = config_.workers.start + floor_adjust_ + delta;
    const char* name = delta > 0 ? "SIGTTIN" : "SIGTTOU";
    if (phase_ != Phase::running || floor < 0 || floor > config_.workers.max) {
        log::notice(std::string("received ") + name + ", pool floor stays " +
                    std::to_string(floor - delta));
        return;
    }
    floor_adjust_ += delta;
    log::notice(std::string("received ") + name + ", pool floor is now " + std::to_string(floor));
    if (delta < 0 && count(generation_).total > floor) {
        int slot = find_idle(generation_);
        if (slot >= 0)
            retire(slot);
    }
    next_tick_ms_ = 0;
}

// The main log and every site's own, all or none: a failure keeps every old
// file.  Site logs go to the current generation only, whose sink numbers
// they are; a draining generation keeps writing its old files until it ends.
void Master::reopen_logs()
{
    bool main_file = access_log::mode_of(config_) == access_log::Mode::file;
    if (!main_file && sites_.logs.empty())
        return;
    Fd fresh;
    std::vector<Fd> site_logs;
    try {
        if (main_file)
            fresh = access_log::open(config_);
        site_logs = site_setup::reopen(sites_);
    } catch (const std::exception& e) {
        log::err(std::string("reopening logs failed, keeping the old files: ") + e.what());
        return;
    }
    for (WorkerInfo& w : workers_) {
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
        access_log_ = std::move(fresh);
        log::notice("reopened " + config_.log.access_log);
    }
    for (std::size_t i = 0; i < site_logs.size(); ++i) {
        sites_.logs[i].fd = std::move(site_logs[i]);
        log::notice("reopened " + sites_.logs[i].path);
    }
}

// ---- reload -----------------------------------------------------------------

// libconfig 1.5 calls exit() on some inputs (an @include of a directory), so
// the new file (and what it includes) is parsed in a child that may die
// without harm.  The child answers with the canonical dump of what it
// checked, and the master loads exactly that text: a reload parses the files
// once, and a file edited after the check cannot slip in unchecked.
std::string Master::validate_in_child() const
{
    auto [read_end, write_end] = make_pipe();
    pid_t pid = ::fork();
    if (pid < 0)
        throw sys_error("fork", "configuration check");
    if (pid == 0)
        check_in_child(write_end.get());
    write_end.reset();
    std::string text = read_all(read_end.get());
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return text;
    throw std::runtime_error(WIFEXITED(status) && WEXITSTATUS(status) == 1 && !text.empty()
                                 ? text
                                 : "the configuration parser exited unexpectedly (" +
                                       exit_text(pid, status).substr(7) + ")");
}

// The child's side: the dump and exit 0, or the problems and exit 1.
void Master::check_in_child(int out) const
{
    signals::reset_for_child();
    std::string answer;
    int code = 1;
    try {
        config::Config checked = config::load_file(options_.config_file);
        std::vector<std::string> problems = config::check_environment(checked);
        for (std::string& p : site_setup::check(checked))
            problems.push_back(std::move(p));
        answer = join(problems, "; ");
        if (answer.empty()) {
            answer = config::dump(checked);
            code = 0;
        }
    } catch (const config::ConfigError& e) {
        answer = join(e.messages(), "; ");
    } catch (const std::exception& e) {
        answer = e.what();
    }
    for (std::size_t done = 0; done < answer.size();) {
        ssize_t n = ::write(out, answer.data() + done, answer.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            ::_exit(2);
        done += std::size_t(n);
    }
    ::_exit(code);
}

void Master::reload()
{
    if (phase_ != Phase::running)
        return;
    notify::reloading();
    try {
        commit_reload(prepare_reload());
    } catch (const config::ConfigError& e) {
        last_reload_ = {false, generation_, join(e.messages(), "; ")};
    } catch (const std::exception& e) {
        last_reload_ = {false, generation_, e.what()};
    }
    if (!last_reload_.ok) {
        log::err("reload failed, keeping the running configuration: " + last_reload_.message);
        notify::ready("reload failed, running generation " + std::to_string(generation_));
    }
}

Reload Master::prepare_reload()
{
    std::string checked = validate_in_child();
    Reload r;
    r.config = config::load_checked(checked, options_.config_file);
    if (!options_.pid_file.empty())
        r.config.pid_file = options_.pid_file;
    std::vector<std::string> problems = config::check_environment(r.config);
    if (!problems.empty())
        throw config::ConfigError(problems);
    for (const std::string& kept : config::keep_until_restart(config_, r.config))
        log::warning(kept);
    r.identity = privileges::resolve(r.config);
    r.mime = std::make_shared<const http::MimeMap>(http::load_mime_types(r.config.http.mime_types));
    r.sites = site_setup::build(r.config, *r.mime);
    r.access_log = access_log::open(r.config);
    for (const std::string& text : r.config.listen) {
        listener::ParseResult p = listener::parse(text);
        if (!p.address)
            throw std::runtime_error(p.error);
        bool kept = std::any_of(listeners_.begin(), listeners_.end(), [&](const listener::Listener& l) {
            return l.address.canonical == p.address->canonical;
        });
        if (!kept)
            r.fresh.push_back(bind_or_adopt(*p.address, r.config));
    }
    return r;
}

void Master::commit_reload(Reload next)
{
    std::vector<listener::Listener> merged;
    for (const std::string& text : next.config.listen) {
        std::string canonical = listener::parse(text).address->canonical;
        auto same = [&](const listener::Listener& l) { return l.fd && l.address.canonical == canonical; };
        auto old = std::find_if(listeners_.begin(), listeners_.end(), same);
        if (old != listeners_.end()) {
            merged.push_back(std::move(*old));
            continue;
        }
        auto fresh = std::find_if(next.fresh.begin(), next.fresh.end(), same);
        merged.push_back(std::move(*fresh));
        log::notice("listening on " + display_name(merged.back()));
    }
    for (listener::Listener& l : listeners_)
        if (l.fd)
            log::notice("no longer listening on " + display_name(l));
    close_listeners();
    listeners_ = std::move(merged);
    config_ = std::move(next.config);
    tune_listeners();
    identity_ = std::move(next.identity);
    mime_ = std::move(next.mime);
    sites_ = std::move(next.sites);
    access_log_ = std::move(next.access_log);
    log::configure(config_.log.facility_code, config_.log.level_priority);
    raise_descriptor_limit(config_);
    config_loaded_at_ = ::time(nullptr);

    std::uint32_t old = generation_++;
    if (live_workers() > 0 && std::find(draining_.begin(), draining_.end(), old) == draining_.end())
        draining_.push_back(old);
    announced_ready_ = paused_ = false;
    floor_adjust_ = startup_failures_ = 0;
    backoff_until_ms_ = 0;
    maintainer_.reset();
    retire_older_pending_ = true;
    apply_cpu_scheduling();
    for (int i = 0; i < std::min(config_.workers.start, config_.workers.max); ++i)
        spawn_worker();
    next_tick_ms_ = scoreboard::now_ms() + 1000;
    last_reload_ = {true, generation_, "generation " + std::to_string(generation_) + " started"};
    log::notice("reload: generation " + std::to_string(generation_) + " starting");
}

}  // namespace preforkd::master
