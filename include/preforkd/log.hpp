// log.hpp - diagnostics: syslog(3), and stderr in the foreground.
//
// One line per event.  Lines an administrator greps for are stable; each names
// the syscall and its object when a syscall failed.  Writing a line never
// blocks serving for long and never fails loudly: a diagnostic that cannot be
// delivered is dropped.
#pragma once

#include <string>

namespace preforkd::log {

// Opens syslog with ident "preforkd", LOG_PID and `facility`; lines with a
// priority above `max_priority` (LOG_ERR..LOG_DEBUG) are dropped.  When
// `to_stderr`, every line is also written to stderr as
// "preforkd[PID]: LEVEL: MESSAGE".
void open(int facility, int max_priority, bool to_stderr);

// Changes the filter and facility after a reload.
void configure(int facility, int max_priority);

// Stops the stderr copy (daemon mode, once stderr is /dev/null).
void set_stderr(bool on);

void write(int priority, const std::string& message);
void err(const std::string& message);
void warning(const std::string& message);
void notice(const std::string& message);
void info(const std::string& message);
void debug(const std::string& message);

}  // namespace preforkd::log
