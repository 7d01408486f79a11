// watchdog.hpp - the master's deadlines for workers that stopped moving.
//
// Two deadlines, both read from the scoreboard and the worker table once a
// loop turn:
// - a busy worker whose progress stamp is older than watchdog_timeout gets
//   SIGABRT (a core file shows where it hung), then SIGKILL if it is still
//   there kAbortGraceMs later;
// - a retiring worker still busy graceful_timeout after its SIGQUIT gets
//   SIGKILL.
// The master's own deadline (a fast stop's TERM, then KILL) is the
// master's, not a worker's, and stays in master.cpp.
#pragma once

#include <cstdint>

#include "preforkd/worker_table.hpp"

namespace preforkd::watchdog {

inline constexpr std::int64_t kAbortGraceMs = 2000;

// `timeout_s` 0 turns the watchdog off (the SIGKILL after an abort still
// follows).  `now` is scoreboard::now_ms().
void kill_hung(master::WorkerTable& table, int timeout_s, std::int64_t now);

void kill_overdue(master::WorkerTable& table, int graceful_timeout_s, std::int64_t now);

}  // namespace preforkd::watchdog
