// daemon.hpp - detaching from the terminal, and telling the launcher how it went.
//
// The launching process does not exit until the master is listening and the
// first workers are up (exit 0), or start-up failed (exit 1, the reason on
// stderr).  A pipe carries that verdict from the master back to it.
#pragma once

#include <string>

#include "preforkd/fd.hpp"

namespace preforkd::daemon {

// fork, setsid, fork, chdir("/"), umask(022), stdin/stdout/stderr to
// /dev/null.  Returns in the grandchild with the pipe's write end; the
// original process waits for the verdict and exits.
Fd detach();

// Sends "ready" (the launcher exits 0) or the failure reason (it prints it
// and exits 1).  Closes the pipe.
void report(Fd& pipe, bool ok, const std::string& message = "");

}  // namespace preforkd::daemon
