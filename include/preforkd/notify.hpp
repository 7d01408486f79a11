// notify.hpp - the systemd readiness protocol (sd_notify), spoken directly.
//
// When NOTIFY_SOCKET is set, state changes are sent as one datagram each to
// that AF_UNIX socket ("@name" is the abstract namespace).  Without it every
// call is a no-op, so the rest of the code calls these unconditionally.
#pragma once

#include <string>

namespace preforkd::notify {

// Reads and removes NOTIFY_SOCKET from the environment (workers must not
// talk to systemd); call once, in the process that will be the master.
void init();

bool enabled() noexcept;
// NOTIFY_SOCKET as init() found it ("" if none): an in-place upgrade sets
// it again for the next image, which is the same service's main process.
const std::string& socket_name() noexcept;

// Sends `state` ("READY=1\nSTATUS=...") as one datagram; false on failure.
bool send(const std::string& state);

void ready(const std::string& status);      // READY=1, MAINPID, STATUS
void reloading();                           // RELOADING=1, MONOTONIC_USEC
void stopping();                            // STOPPING=1
void status(const std::string& status);     // STATUS=

}  // namespace preforkd::notify
