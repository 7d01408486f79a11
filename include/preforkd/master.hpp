// master.hpp - the master process: owns listeners, scoreboard and pool.
//
// The master never serves a request.  Its loop reads as its specification:
// reap workers, handle one signal at a time, kill hung and overdue workers,
// restore the pool, finish a reload, report progress, wait.  Its parts live
// in files of their own: the worker table (worker_table.hpp), the watchdog
// (watchdog.hpp), the listener set (listener_set.hpp), the state a
// generation is forked from (worker_context.hpp), the reload transaction
// (master_reload.cpp) and the control socket (master_control.cpp).
//
// A reload is a transaction: prepare_reload() builds the complete new state
// beside the running one and throws on any failure, leaving the running
// state untouched; only then does commit_reload() switch.  The transaction
// stays open until finish_reload() sees a worker of the new generation up
// and retires the old one, so a configuration whose workers cannot start
// never takes the server down; if instead the new workers keep dying at
// start-up, finish_reload() rolls back to the configuration it kept, and the
// old generation, still serving, becomes the current one again.
#pragma once

#include <csignal>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "preforkd/cli.hpp"
#include "preforkd/config.hpp"
#include "preforkd/control.hpp"
#include "preforkd/fd.hpp"
#include "preforkd/listener_set.hpp"
#include "preforkd/parker.hpp"
#include "preforkd/pidfile.hpp"
#include "preforkd/pool.hpp"
#include "preforkd/scoreboard.hpp"
#include "preforkd/upgrade.hpp"
#include "preforkd/worker_context.hpp"
#include "preforkd/worker_table.hpp"
#include "preforkd/site_setup.hpp"
#include "preforkd/tls/tickets.hpp"

namespace preforkd::master {

// The new state a reload builds before anything is switched.
struct Reload {
    Serving serving;
    std::vector<listener::Listener> fresh;   // listeners opened for this reload
    std::vector<tls::tickets::Key> ticket_keys;   // from tls.ticket_key_file; none: keep the running keys
};

// A committed reload that is not over yet: the new generation has no worker
// up so far, and the old one still serves.  What it replaced is kept for a
// rollback until it ends.
struct OpenReload {
    bool open = false;
    bool can_roll_back = false;                // false for adopted workers
    Serving previous;                          // the configuration to return to
    tls::tickets::Running previous_tickets;    // and the session-ticket keys it used
    std::uint32_t previous_generation = 0;     // the generation that ran it
    int previous_floor_adjust = 0;
    std::vector<listener::Listener> dropped;   // listeners it closed, still open
    int startup_deaths = 0;                    // new workers dead before up
    std::string why;                           // the last one's reason
    std::int64_t committed_ms = 0;
    std::vector<Fd> waiting;                   // `-s reload` clients awaiting the verdict
};

// The outcome of the last reload, for logs now and for callers later.
struct ReloadOutcome {
    bool ok = false;
    std::uint32_t generation = 0;
    std::string message;
};

// An in-place upgrade this image received and has not committed yet
// (upgrade.hpp): until a worker of its generation is up, it may still
// return to the image that handed over.
struct Upgrading {
    bool pending = false;
    std::int64_t deadline_ms = 0;               // CLOCK_MONOTONIC
    Fd client;                                  // -s upgrade, waiting for the verdict
    Fd previous;                                // the image to return to
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

    // The loop's steps, in the order run() takes them.
    void start();
    void reap_workers();
    void handle_signals();
    void kill_hung_workers();
    void kill_overdue_workers();
    bool stopped() const;
    void maintain_pool();
    void keep_parker();
    void finish_reload();
    void report_progress();
    void wait_for_event();

    // Workers and the parker.
    void on_worker_exit(int slot, int status);
    void on_parker_exit(int status);
    void spawn_worker();
    void spawn_parker();
    void close_inherited_in_child();
    void note_crash();
    void back_off(int level, const std::string& why);
    [[noreturn]] void become_worker(int slot, Fd channel);
    void retire_generation(std::uint32_t generation);
    void signal_all(int number);
    pool::Limits limits() const;
    int pool_target() const;

    // Signals.
    void handle_signal(int number);
    void stop(Phase phase);
    void adjust_floor(int delta);
    void reopen_logs();
    void tune_listeners();
    void apply_cpu_scheduling();
    void announce_status();

    // The reload transaction, in master_reload.cpp.
    void reload();
    std::string validate_in_child() const;
    [[noreturn]] void check_in_child(int out) const;
    Reload prepare_reload();
    void commit_reload(Reload next);
    void start_generation();
    void start_generation_state();
    void adopt_old_generation();
    void keep_for_rollback(std::vector<listener::Listener> dropped);
    void roll_back();
    void end_reload();
    void answer_waiting(const std::string& verdict);
    void drop_retired_generations();

    // The control socket (control.hpp), in master_control.cpp.
    void open_control();
    void close_control();
    void serve_control();
    std::string control_answer(const std::string& line);
    std::string control_reload();
    control::Snapshot snapshot() const;
    std::string control_upgrade();

    // The in-place upgrade (upgrade.hpp), in master_upgrade.cpp.
    std::string upgrade_binary();
    upgrade::Handover handover() const;
    void start_adopted(const upgrade::Handover& h);
    void take_descriptors(const upgrade::Handover& h);
    void adopt_pool(const upgrade::Handover& h);
    void give_back(const std::string& why);
    void check_upgrade();
    void return_to_previous(const std::string& why);
    void finish_upgrade(bool ok, const std::string& verdict);
    void forget_upgrade_in_child();
    void publish_status() const;

    cli::Options options_;
    Fd& ready_pipe_;
    ListenerSet listeners_;
    Serving serving_;                         // what the current generation runs on
    pidfile::PidFile pid_file_;
    scoreboard::Board* board_ = nullptr;
    Fd board_memory_;                         // the board's memfd, kept for an upgrade
    Upgrading upgrading_;
    WorkerTable workers_;
    parker::Queues queues_;                   // empty with http.parking off
    pid_t parker_pid_ = 0;
    std::int64_t parker_due_ms_ = 0;          // when a dead parker is replaced
    int parker_failures_ = 0;                 // deaths in a row, for the back-off
    std::uint32_t generation_ = 1;            // the current generation
    std::uint32_t newest_generation_ = 1;     // never reused, even after a rollback
    OpenReload reload_;
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
};

}  // namespace preforkd::master
