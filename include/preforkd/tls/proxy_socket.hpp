// tls/proxy_socket.hpp - the PROXY header read off an accepted connection.
//
// On a listener with proxy_protocol = true a worker calls receive() right
// after accept(), before TLS or HTTP sees a byte.  It reads the header and
// not one byte more (what follows belongs to the TLS handshake or the
// request), by peeking at what has arrived and consuming only bytes that
// proxy::parse() says are header: a strict prefix of a header is all
// header, and a complete one says how long it is.  So nothing read needs to
// be handed on, and a client sending slowly costs a wait, not a spin.
#pragma once

#include <csignal>
#include <string>
#include <sys/socket.h>
#include <vector>

#include "preforkd/config.hpp"

namespace preforkd::proxy {

// True when `peer` may send a header: `trusted` is empty (declaring
// proxy_protocol says a proxy sits in front) or one of its blocks holds it.
bool trusted(const std::vector<config::Cidr>& trusted, const sockaddr_storage& peer);

struct Outcome {
    bool ok = false;
    // The client the header speaks for; the connection's own peer for a
    // LOCAL or UNKNOWN header (a health check by the proxy itself).
    sockaddr_storage client{};
    std::string error;   // why the connection is closed, for the log
};

// Reads the header from non-blocking `fd` within `timeout_ms`.  `peer` is
// the connection's own address.  While waiting, signals in `wait_mask` are
// let through; a wait interrupted while *quit is nonzero gives up.
Outcome receive(int fd, const sockaddr_storage& peer, int timeout_ms,
                const sigset_t* wait_mask, const volatile sig_atomic_t* quit);

}  // namespace preforkd::proxy
