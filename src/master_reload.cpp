// master_reload.cpp - the reload transaction: check, prepare, commit, finish.
//
// A reload is built beside the running state and switched only when it is
// complete: prepare_reload() checks the file in a child, builds a whole new
// Serving (identity, sites, MIME map, access log) and binds the new
// listeners, throwing on the first failure while the running state is
// untouched.  commit_reload() switches to it and forks the new generation;
// the transaction then stays open until finish_reload(), a step of its own
// in the master's loop, sees a worker of the new generation up and retires
// the old one.  Nothing else ends a reload, so the loop shows where the old
// generation goes away.
#include <algorithm>
#include <cerrno>
#include <sys/wait.h>
#include <unistd.h>

#include "preforkd/control.hpp"
#include "preforkd/log.hpp"
#include "preforkd/master.hpp"
#include "preforkd/master_support.hpp"
#include "preforkd/notify.hpp"
#include "preforkd/signals.hpp"

namespace preforkd::master {
namespace {

// New workers dead at start-up, with none up, that make a crash loop.  One
// can be bad luck (a descriptor limit hit for a moment); three in a row of
// a generation that never had a worker up is a configuration that cannot
// work, and waiting for more only grows the back-off before the rollback.
constexpr int kRollbackDeaths = 3;
// How long `-s reload` may wait for a generation to come up or fail; its
// client waits 60 s.
constexpr std::int64_t kVerdictWaitMs = 30000;
constexpr int kVerdictWriteMs = 2000;

}  // namespace

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

Reload Master::prepare_reload()
{
    std::string checked = validate_in_child();
    config::Config next = config::load_checked(checked, options_.config_file);
    if (!options_.pid_file.empty())
        next.pid_file = options_.pid_file;
    std::vector<std::string> problems = config::check_environment(next);
    if (!problems.empty())
        throw config::ConfigError(problems);
    for (const std::string& kept : config::keep_until_restart(serving_.config, next))
        log::warning(kept);
    Reload r;
    r.ticket_keys = tls::tickets::prepare(next.tls);
    r.serving = build_serving(std::move(next));
    r.fresh = listeners_.open_missing(r.serving.config);
    return r;
}

void Master::commit_reload(Reload next)
{
    std::vector<listener::Listener> dropped = listeners_.switch_to(next.serving.config, std::move(next.fresh));
    keep_for_rollback(std::move(dropped));
    serving_ = std::move(next.serving);
    tls::tickets::commit(serving_.config.tls, std::move(next.ticket_keys));
    tune_listeners();
    log::configure(serving_.config.log.facility_code, serving_.config.log.level_priority);
    raise_descriptor_limit(serving_.config);
    std::uint32_t old = generation_;
    generation_ = ++newest_generation_;
    if (workers_.tally(generation_).live > 0 &&
        std::find(draining_.begin(), draining_.end(), old) == draining_.end())
        draining_.push_back(old);
    reload_.open = reload_.can_roll_back = true;
    reload_.startup_deaths = 0;
    reload_.committed_ms = scoreboard::now_ms();
    start_generation();
    last_reload_ = {true, generation_, "generation " + std::to_string(generation_) + " started"};
    log::notice("reload: generation " + std::to_string(generation_) + " starting");
}

// What a rollback returns to is the state of the last generation that came
// up, its session-ticket keys included: a reload on top of an open one
// (whose generation never came up) keeps the first one's, and adds what it
// drops to what is kept open.
void Master::keep_for_rollback(std::vector<listener::Listener> dropped)
{
    if (!reload_.open) {
        reload_.previous_tickets = tls::tickets::running();
        reload_.previous = std::move(serving_);
        reload_.previous_generation = generation_;
        reload_.previous_floor_adjust = floor_adjust_;
    }
    for (listener::Listener& l : dropped)
        reload_.dropped.push_back(std::move(l));
}

// A new generation starts afresh: no pause, no floor moved by TTIN/TTOU, no
// back-off left from the one before.
void Master::start_generation()
{
    start_generation_state();
    for (int i = 0; i < pool_target(); ++i)
        spawn_worker();
    next_tick_ms_ = scoreboard::now_ms() + 1000;
}

// A generation that becomes current, new or rolled back to, is announced
// "ready" once it has its workers up (for systemd, after RELOADING=1).
void Master::start_generation_state()
{
    announced_ready_ = paused_ = false;
    floor_adjust_ = startup_failures_ = 0;
    backoff_until_ms_ = 0;
    maintainer_.reset();
    apply_cpu_scheduling();
}

// The loop's step that ends a reload, one of two ways.  A worker of the new
// generation is up (at once when workers.start is 0): the older generations
// are told to finish their requests and exit.  Or kRollbackDeaths workers of
// the new generation died at start-up and none came up: the configuration
// cannot work, and the master returns to the one it kept.  A verdict still
// undecided after kVerdictWaitMs is said to the `-s reload` clients waiting
// for it, who would otherwise give up without one.
void Master::finish_reload()
{
    if (reload_.open) {
        Tally t = workers_.tally(generation_);
        if (t.up > 0 || pool_target() == 0) {
            retire_generation(generation_ - 1);
            end_reload();
            finish_upgrade(true, "");   // the new image serves: an upgrade commits here
        } else if (reload_.can_roll_back && reload_.startup_deaths >= kRollbackDeaths) {
            roll_back();
        } else if (!reload_.waiting.empty() &&
                   scoreboard::now_ms() - reload_.committed_ms > kVerdictWaitMs) {
            answer_waiting("failed: generation " + std::to_string(generation_) +
                           " started, but none of its workers is up after " +
                           std::to_string(kVerdictWaitMs / 1000) + " s; generation " +
                           std::to_string(reload_.previous_generation) + " still serves\n");
        }
    }
    drop_retired_generations();
}

// The new generation's state goes, the kept one comes back whole, and its
// generation, whose workers were never retired, is the current one again;
// the pool refills it from the kept configuration if it is short.
void Master::roll_back()
{
    std::uint32_t failed = generation_;
    std::vector<listener::Listener> unused =
        listeners_.switch_to(reload_.previous.config, std::move(reload_.dropped));
    reload_.dropped.clear();
    retire_listeners(unused);
    serving_ = std::move(reload_.previous);
    tls::tickets::restore(serving_.config.tls, reload_.previous_tickets);
    tune_listeners();
    log::configure(serving_.config.log.facility_code, serving_.config.log.level_priority);
    generation_ = reload_.previous_generation;
    workers_.retire_if([this](std::uint32_t g) { return g > generation_; });
    std::erase(draining_, generation_);
    if (workers_.has(failed))
        draining_.push_back(failed);
    start_generation_state();
    floor_adjust_ = reload_.previous_floor_adjust;
    next_tick_ms_ = 0;
    last_reload_ = {false, generation_,
                    "rolled back: the workers of generation " + std::to_string(failed) +
                        " could not start (" + std::to_string(reload_.startup_deaths) +
                        " died at start-up: " + reload_.why + "); generation " +
                        std::to_string(generation_) + " serves the previous configuration"};
    log::err("reload " + last_reload_.message);
    end_reload();
}

// The kept state goes (its access log, the listeners the reload dropped),
// and whoever asked for the reload over the control socket hears how it went.
void Master::end_reload()
{
    retire_listeners(reload_.dropped);
    reload_.previous = Serving{};
    reload_.previous_tickets = {};
    reload_.open = false;
    reload_.why.clear();
    answer_waiting((last_reload_.ok ? "ok: " : "failed: ") + last_reload_.message + "\n");
}

// A client too slow to take its answer loses it; the reload's outcome does
// not depend on who hears it.
void Master::answer_waiting(const std::string& verdict)
{
    for (Fd& client : reload_.waiting)
        control::write_all(client.get(), verdict, kVerdictWriteMs);
    reload_.waiting.clear();
}

// The seam for an in-place upgrade, to be called in start() once the
// inherited scoreboard is attached and before the first generation is
// forked: the workers the previous image left are adopted as the old
// generation, and this image's first generation is numbered after them and
// retires them as a reload does, through finish_reload().  There is
// nothing to roll back to here; undoing an upgrade is re-executing the
// previous image.
void Master::adopt_old_generation()
{
    std::uint32_t old = workers_.adopt_board();
    if (old == 0)
        return;
    for (int i = 0; i < workers_.size(); ++i) {
        const WorkerInfo& w = workers_.row(i);
        if (w.pid && std::find(draining_.begin(), draining_.end(), w.generation) == draining_.end())
            draining_.push_back(w.generation);
    }
    generation_ = newest_generation_ = old + 1;
    reload_.open = true;
    reload_.can_roll_back = false;
    reload_.committed_ms = scoreboard::now_ms();
    log::notice("adopted " + std::to_string(workers_.tally(generation_).live) +
                " workers as generation " + std::to_string(old) + " and older");
}

// "generation N retired" once the last worker of a draining one is gone.
void Master::drop_retired_generations()
{
    for (auto it = draining_.begin(); it != draining_.end();) {
        if (workers_.has(*it)) {
            ++it;
            continue;
        }
        log::notice("reload: generation " + std::to_string(*it) + " retired");
        it = draining_.erase(it);
    }
}

}  // namespace preforkd::master
