// handshake.hpp - the front door of a TLS listener, in a worker.
//
// Between accept() and the connection loop: the first bytes are read; a
// connection that does not open with a TLS handshake record (plain HTTP
// sent to an HTTPS port) gets a cleartext 400 saying so and is closed; a
// ClientHello still incomplete after the first read goes to the parker
// (Kind::tls_hello), so a slow client holds no worker; otherwise the
// handshake runs without blocking, bounded by tls.handshake_timeout from
// the connection's first moment, and the connection loop then serves HTTP
// over the session.  A failed handshake (an alert, a malformed hello, a
// timeout) closes the connection and is told at debug level only: the
// internet sends plenty of them.
#pragma once

#include <cstdint>
#include <string>

#include "preforkd/connection.hpp"
#include "preforkd/tls/context.hpp"

namespace preforkd::handshake {

// Serves `fd`, accepted on a TLS listener (env.listener), until it ends or
// is parked.  `prefix` holds bytes already read from it (a parcel's
// ClientHello), `since_ms` the scoreboard::now_ms() at which its handshake
// clock started.
connection::Served serve(int fd, const std::string& remote, std::string prefix,
                         std::int64_t since_ms, const tls::Generation& tls,
                         const connection::Settings& settings, const http::SiteTable& sites,
                         connection::Env& env);

// The cleartext answer to plain HTTP on a TLS port, whole.
extern const std::string_view kPlainHttpAnswer;

}  // namespace preforkd::handshake
