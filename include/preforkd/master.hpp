// master.hpp - the master process: owns listeners, scoreboard and pool.
//
// The master never serves a request.  Its loop reads as its specification:
// reap workers, handle one signal at a time, kill hung and overdue workers,
// restore the pool, report progress, wait.  A reload is a transaction:
// prepare_reload() builds the complete new state beside the running one and
// throws on any failure, leaving the running state untouched; only then does
// commit_reload() switch.  The old generation is retired once a worker of
// the new generation is up, so a configuration whose workers cannot start
// never takes the server down.
#pragma once

#include <csignal>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "preforkd/cli.hpp"
#include "preforkd/config.hpp"
#include "preforkd/control.hpp"
#include "preforkd/fd.hpp"
#include "preforkd/http/static_file.hpp"
#include "preforkd/listener.hpp"
#include "preforkd/parker.hpp"
#include "preforkd/pidfile.hpp"
#include "preforkd/pool.hpp"
#include "preforkd/privileges.hpp"
#include "preforkd/scoreboard.hpp"
#include "preforkd/site_setup.hpp"

namespace preforkd::master {

// What the master knows about a worker that the scoreboard does not say.
struct WorkerInfo {
    pid_t pid = 0;
    std::uint32_t generation = 0;
    std::int64_t quit_sent_ms = 0;    // when SIGQUIT was sent, 0 if not
    std::int64_t abort_sent_ms = 0;   // when the watchdog fired, 0 if not
    bool killed = false;              // SIGKILL sent
    Fd channel;                       // master's end of the worker's socketpair
};

// The new state a reload builds before anything is switched.
struct Reload {
    config::Config config;
    privileges::Identity identity;
    std::shared_ptr<const http::MimeMap> mime;   // its address is in `sites`
    site_setup::Sites sites;
    Fd access_log;
    std::vector<listener::Listener> fresh;   // listeners opened for this reload
};

// The outcome of the last reload, for logs now and for callers later.
struct ReloadOutcome {
    bool ok = false;
    std::uint32_t generation = 0;
    std::string message;
};

class Master {
public:
    // `config` is already loaded and checked.  `ready_pipe` (daemon mode)
    // receives the start-up verdict.
    // `inherited` are sockets passed by systemd, adopted for the listen
    // entries whose address they are bound to.
    Master(config::Config config, cli::Options options, Fd& ready_pipe,
           std::vector<listener::Listener> inherited = {});
    Master(const Master&) = delete;
    Master& operator=(const Master&) = delete;
    ~Master();

    // Binds, writes the pid file, starts the pool and runs until stopped.
    // Returns the exit status.  Start-up failures throw.
    int run();

    const ReloadOutcome& last_reload() const noexcept { return last_reload_; }

private:
    enum class Phase { running, stopping_fast, stopping_graceful };

    void start();
    void open_listeners();
    void reap_workers();
    void handle_signals();
    void handle_signal(int number);
    void kill_hung_workers();
    void kill_overdue_workers();
    void maintain_pool();
    void keep_parker();
    void report_progress();
    void wait_for_event();

    void on_worker_exit(int slot, int status);
    void on_parker_exit(int status);
    void spawn_worker();
    void spawn_parker();
    void close_inherited_in_child();
    void note_crash();
    void back_off(int level, const std::string& why);
    [[noreturn]] void become_worker(int slot, Fd channel);
    void retire(int slot);
    void retire_generation(std::uint32_t generation);
    void signal_all(int number);
    pool::Counts count(std::uint32_t generation) const;
    int workers_up(std::uint32_t generation) const;
    int find_idle(std::uint32_t generation) const;
    int accepting_workers() const;
    pool::Limits limits() const;
    int live_workers() const;

    std::string validate_in_child() const;
    [[noreturn]] void check_in_child(int out) const;
    void reload();
    Reload prepare_reload();
    void commit_reload(Reload next);
    void reopen_logs();
    void stop(Phase phase);
    void adjust_floor(int delta);
    void close_listeners();
    void tune_listeners();
    void apply_cpu_scheduling();
    listener::Listener bind_or_adopt(const listener::Address& address, const config::Config& c);
    void announce_status();

    // The control socket (control.hpp), in master_control.cpp.
    void open_control();
    void close_control();
    void serve_control();
    std::string control_answer(const std::string& line);
    std::string control_reload();
    control::Snapshot snapshot() const;
    void publish_status() const;

    config::Config config_;
    cli::Options options_;
    Fd& ready_pipe_;
    std::vector<listener::Listener> listeners_;
    std::vector<listener::Listener> inherited_;
    Fd access_log_;
    std::shared_ptr<const http::MimeMap> mime_;   // the site table points into it
    site_setup::Sites sites_;
    privileges::Identity identity_;
    pidfile::PidFile pid_file_;
    scoreboard::Board* board_ = nullptr;
    std::vector<WorkerInfo> workers_;
    parker::Queues queues_;                   // empty with http.parking off
    pid_t parker_pid_ = 0;
    std::int64_t parker_due_ms_ = 0;          // when a dead parker is replaced
    int parker_failures_ = 0;                 // deaths in a row, for the back-off
    std::uint32_t generation_ = 1;
    bool retire_older_pending_ = false;       // waiting for a new-generation worker
    std::vector<std::uint32_t> draining_;     // old generations with live workers
    std::string startup_error_;               // a worker could not start before ready
    pool::Maintainer maintainer_;
    int floor_adjust_ = 0;
    Phase phase_ = Phase::running;
    bool paused_ = false;                  // after SIGWINCH
    bool announced_ready_ = false;         // "ready:" logged for generation_
    bool started_ = false;                 // first generation came up
    std::string last_status_;
    std::int64_t next_tick_ms_ = 0;
    std::int64_t stop_deadline_ms_ = 0;
    std::int64_t backoff_until_ms_ = 0;
    int startup_failures_ = 0;
    std::deque<std::int64_t> recent_crashes_;   // times of unexpected deaths
    int crash_level_ = 0;
    sigset_t wait_mask_;
    ReloadOutcome last_reload_;
    listener::Listener control_;              // the control socket
    Fd control_client_;                       // the client being answered
    std::int64_t started_at_ = 0;             // Unix time of start()
    std::int64_t started_ms_ = 0;             // CLOCK_MONOTONIC of start()
    std::int64_t config_loaded_at_ = 0;       // Unix time of the last (re)load
};


}  // namespace preforkd::master
