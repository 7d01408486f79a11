// master_support.hpp - small pieces the master's files share.
//
// Not a subsystem: the wording of a worker's exit, the spawn back-off's
// arithmetic and the descriptor limit, each used by more than one of
// master.cpp, master_reload.cpp and master_control.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

#include "preforkd/config.hpp"
#include "preforkd/scoreboard.hpp"

namespace preforkd::master {

inline constexpr std::int64_t kMaxBackoffMs = 30000;

// 0.1 s doubling with `level` (1, 2, ...), at most kMaxBackoffMs.
std::int64_t backoff_ms(int level);

// "worker 42 exited with status 3", "worker 42 exited on signal 9 (Killed)".
std::string exit_text(pid_t pid, int status);
// The same, with a death by SIGSYS said as the call the sandbox trapped,
// as the worker recorded it in `slot`.
std::string exit_text(pid_t pid, int status, const scoreboard::Slot& slot);

std::string join(const std::vector<std::string>& lines, const char* sep);

// Raises RLIMIT_NOFILE toward what `config` needs, and says so, or warns
// when the hard limit is too low.
void raise_descriptor_limit(const config::Config& config);

}  // namespace preforkd::master
