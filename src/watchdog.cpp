// watchdog.cpp - SIGABRT for hung workers, SIGKILL for overdue ones.
//
// A worker's progress stamp moves on every read, write and accept (the
// scoreboard's progress()); only a busy worker can hang, since an idle one
// sleeps in accept() by design.  SIGABRT rather than SIGKILL first: the
// core file is the only witness of where it hung.
#include "preforkd/watchdog.hpp"

#include <csignal>
#include <string>

#include "preforkd/log.hpp"

namespace preforkd::watchdog {

void kill_hung(master::WorkerTable& table, int timeout_s, std::int64_t now)
{
    std::int64_t limit = std::int64_t(timeout_s) * 1000;
    for (int i = 0; i < table.size(); ++i) {
        master::WorkerInfo& w = table.row(i);
        scoreboard::Slot& s = table.slot(i);
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

void kill_overdue(master::WorkerTable& table, int graceful_timeout_s, std::int64_t now)
{
    std::int64_t grace = std::int64_t(graceful_timeout_s) * 1000;
    for (int i = 0; i < table.size(); ++i) {
        master::WorkerInfo& w = table.row(i);
        if (!w.pid || w.killed || !w.quit_sent_ms || now - w.quit_sent_ms < grace)
            continue;
        log::warning("worker " + std::to_string(w.pid) + " still busy after graceful_timeout (" +
                     std::to_string(graceful_timeout_s) + " s) on \"" + table.slot(i).request +
                     "\"; killing it");
        ::kill(w.pid, SIGKILL);
        w.killed = true;
    }
}

}  // namespace preforkd::watchdog
