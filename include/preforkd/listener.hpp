// listener.hpp - listening sockets: parsing addresses, binding, carrying over.
//
// The master opens every listener and owns it for its whole life; workers
// inherit the descriptors.  A listener is keyed by its canonical address so a
// reload can keep an unchanged one (same fd, no lost queued connection).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/types.h>

#include "preforkd/fd.hpp"

namespace preforkd::listener {

enum class Family { inet4, inet6, unix_path };

struct Address {
    Family family = Family::inet4;
    std::string host;        // numeric address, "" for unix
    unsigned port = 0;
    std::string path;        // for unix
    sockaddr_storage storage{};
    socklen_t length = 0;
    std::string canonical;   // "127.0.0.1:80", "[::1]:80", "unix:/run/x.sock"
};

// Parses "host:port", "[v6]:port", "*:port" (all IPv4), "unix:/path".  Host
// must be numeric.  Returns the reason on error (no throw), e.g.
// "listen address \"x\": port must be 1-65535".
struct ParseResult {
    std::optional<Address> address;
    std::string error;
};
ParseResult parse(const std::string& text);

struct Listener {
    Address address;
    Fd fd;
    bool created_path = false;   // unix socket file that we must unlink at exit
};

// Who may connect to a unix socket file: its mode, and its owner and group
// (-1: left as bind() made them, the master's).
struct UnixAccess {
    int mode = 0666;
    uid_t owner = uid_t(-1);
    gid_t group = gid_t(-1);
};

// The access unix_mode, unix_owner and unix_group ask for ("" = keep).
// Throws std::runtime_error naming the key when a name is unknown.
UnixAccess unix_access(int mode, const std::string& owner, const std::string& group);

// Binds and listens (non-blocking, close-on-exec, SO_REUSEADDR, IPV6_V6ONLY
// for v6).  A unix socket file gets `unix`'s mode, then its owner and group,
// before listen(): no client can connect before the file is as configured.
// A stale unix socket file (nobody accepting) is replaced; a live one is an
// error.  Throws std::system_error naming the call (bind, chmod, chown) and
// the address or path.
Listener open(const Address& address, const UnixAccess& unix, int backlog = 511);

// Settings a listener takes from the configuration, applied to bound,
// inherited and kept sockets alike (so a reload can change them):
// - defer_seconds: TCP_DEFER_ACCEPT, so a connection reaches accept() only
//   once its first bytes have arrived (or after about that many seconds);
//   0 turns it off.  Not for unix sockets.
// - blocking: a lone listener is blocking, so workers sleep in accept() and
//   the kernel wakes exactly one; with several, workers wait in epoll and
//   need non-blocking sockets.
// Throws std::system_error naming the option and the address.
void tune(const Listener& l, int defer_seconds, bool blocking);

// The port actually bound (for port 0 in tests).
unsigned bound_port(int fd);

}  // namespace preforkd::listener

namespace preforkd::listener {

// Sockets passed by systemd socket activation (LISTEN_FDS, LISTEN_PID,
// LISTEN_FDNAMES), each described by the address it is bound to.  Empty when
// the variables are absent or meant for another process.  The variables are
// removed from the environment so workers and children do not see them.
std::vector<Listener> inherited();

// The canonical address a bound socket has ("127.0.0.1:80", "unix:/x").
std::optional<Address> address_of(int fd);

}  // namespace preforkd::listener
