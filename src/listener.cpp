// listener.cpp - listening sockets.
//
// Addresses are numeric only: resolving names at start-up would make the
// server depend on DNS at boot and bind to whatever a resolver answered.
// Every socket is non-blocking so that workers waiting on several listeners
// through epoll treat a lost accept() race (EAGAIN) as normal.  A unix socket
// file left by a crashed server is replaced, but only after a connect() to it
// is refused: a live server's socket is never stolen.  Its mode, owner and
// group are set on the path between bind() and listen(), so that
// `unix_mode = "0660"` with the group of a local proxy admits that proxy.
#include "preforkd/listener.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdexcept>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace preforkd::listener {
namespace {

ParseResult fail(const std::string& text, const std::string& why)
{
    return {std::nullopt, "listen address \"" + text + "\": " + why};
}

bool parse_port(const std::string& digits, unsigned& port)
{
    if (digits.empty() || digits.size() > 5)
        return false;
    port = 0;
    for (char c : digits) {
        if (c < '0' || c > '9')
            return false;
        port = port * 10 + unsigned(c - '0');
    }
    return port <= 65535;
}

ParseResult parse_unix(const std::string& text)
{
    Address a;
    a.family = Family::unix_path;
    a.path = text.substr(5);
    sockaddr_un sun{};
    if (a.path.empty() || a.path[0] != '/')
        return fail(text, "unix socket path must be absolute");
    if (a.path.size() >= sizeof sun.sun_path)
        return fail(text, "unix socket path is too long");
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, a.path.c_str(), a.path.size() + 1);
    std::memcpy(&a.storage, &sun, sizeof sun);
    a.length = socklen_t(offsetof(sockaddr_un, sun_path) + a.path.size() + 1);
    a.canonical = "unix:" + a.path;
    return {a, ""};
}

ParseResult parse_inet6(const std::string& text, const std::string& host, unsigned port)
{
    Address a;
    a.family = Family::inet6;
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(uint16_t(port));
    if (inet_pton(AF_INET6, host.c_str(), &sin6.sin6_addr) != 1)
        return fail(text, "not a numeric IPv6 address");
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof buf);
    a.host = buf;
    a.port = port;
    std::memcpy(&a.storage, &sin6, sizeof sin6);
    a.length = sizeof sin6;
    a.canonical = "[" + a.host + "]:" + std::to_string(port);
    return {a, ""};
}

ParseResult parse_inet4(const std::string& text, const std::string& host, unsigned port)
{
    Address a;
    a.family = Family::inet4;
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(uint16_t(port));
    std::string numeric = host == "*" ? "0.0.0.0" : host;
    if (inet_pton(AF_INET, numeric.c_str(), &sin.sin_addr) != 1)
        return fail(text, "not a numeric IPv4 address (names are not resolved)");
    a.host = numeric;
    a.port = port;
    std::memcpy(&a.storage, &sin, sizeof sin);
    a.length = sizeof sin;
    a.canonical = a.host + ":" + std::to_string(port);
    return {a, ""};
}

}  // namespace

ParseResult parse(const std::string& text)
{
    if (text.rfind("unix:", 0) == 0)
        return parse_unix(text);
    auto colon = text.rfind(':');
    if (colon == std::string::npos)
        return fail(text, "expected host:port, [v6]:port, *:port or unix:/path");
    unsigned port = 0;
    if (!parse_port(text.substr(colon + 1), port))
        return fail(text, "port must be a number between 0 and 65535");
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        return parse_inet6(text, host.substr(1, host.size() - 2), port);
    if (host.empty())
        return fail(text, "missing host (use *:port for every IPv4 address)");
    return parse_inet4(text, host, port);
}

namespace {

// True when something accepts connections on the unix socket at `a`.
bool unix_socket_alive(const Address& a)
{
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe)
        return false;
    return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&a.storage),
                     a.length) == 0;
}

void remove_stale_unix_socket(const Address& a)
{
    struct stat st;
    if (::lstat(a.path.c_str(), &st) != 0)
        return;
    if (!S_ISSOCK(st.st_mode))
        throw sys_error("bind", a.canonical, EEXIST);
    if (unix_socket_alive(a))
        throw sys_error("bind", a.canonical, EADDRINUSE);
    if (::unlink(a.path.c_str()) != 0)
        throw sys_error("unlink", a.path);
}

void set_options(int fd, const Address& a)
{
    int on = 1;
    if (a.family == Family::unix_path)
        return;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        throw sys_error("setsockopt(SO_REUSEADDR)", a.canonical);
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one
    // setsockopt here instead of one per connection.  Responses go out in
    // one send (or send + sendfile under MSG_MORE), so Nagle has nothing to
    // coalesce and would only delay pipelined answers behind delayed ACKs.
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0)
        throw sys_error("setsockopt(TCP_NODELAY)", a.canonical);
    // Explicit, so that "[::]:80" beside "0.0.0.0:80" works whatever the
    // system's net.ipv6.bindv6only default is.
    if (a.family == Family::inet6 &&
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0)
        throw sys_error("setsockopt(IPV6_V6ONLY)", a.canonical);
}

int domain_of(Family f)
{
    switch (f) {
    case Family::inet4: return AF_INET;
    case Family::inet6: return AF_INET6;
    case Family::unix_path: return AF_UNIX;
    }
    return AF_INET;
}

}  // namespace

UnixAccess unix_access(int mode, const std::string& owner, const std::string& group)
{
    UnixAccess a;
    a.mode = mode;
    if (!owner.empty()) {
        const passwd* pw = ::getpwnam(owner.c_str());
        if (!pw)
            throw std::runtime_error("unix_owner \"" + owner + "\": no such user");
        a.owner = pw->pw_uid;
    }
    if (!group.empty()) {
        const struct group* gr = ::getgrnam(group.c_str());
        if (!gr)
            throw std::runtime_error("unix_group \"" + group + "\": no such group");
        a.group = gr->gr_gid;
    }
    return a;
}

Listener open(const Address& address, const UnixAccess& unix, int backlog)
{
    Listener l;
    l.address = address;
    l.fd.reset(::socket(domain_of(address.family),
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!l.fd)
        throw sys_error("socket", address.canonical);
    set_options(l.fd.get(), address);
    if (address.family == Family::unix_path)
        remove_stale_unix_socket(address);
    if (::bind(l.fd.get(), reinterpret_cast<const sockaddr*>(&address.storage),
               address.length) != 0)
        throw sys_error("bind", address.canonical);
    if (address.family == Family::unix_path) {
        l.created_path = true;
        if (::chmod(address.path.c_str(), mode_t(unix.mode)) != 0)
            throw sys_error("chmod", address.path);
        // The path, not the descriptor: fchown() of a socket changes the
        // inode of the socket object, not the file clients open.
        if ((unix.owner != uid_t(-1) || unix.group != gid_t(-1)) &&
            ::chown(address.path.c_str(), unix.owner, unix.group) != 0)
            throw sys_error("chown", address.path);
    }
    if (::listen(l.fd.get(), backlog) != 0)
        throw sys_error("listen", address.canonical);
    return l;
}

void tune(const Listener& l, int defer_seconds, bool blocking)
{
    int fd = l.fd.get();
    if (l.address.family != Family::unix_path &&
        ::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds) != 0)
        throw sys_error("setsockopt(TCP_DEFER_ACCEPT)", l.address.canonical);
    int flags = ::fcntl(fd, F_GETFL);
    int wanted = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
    if (flags < 0 || (wanted != flags && ::fcntl(fd, F_SETFL, wanted) != 0))
        throw sys_error("fcntl(O_NONBLOCK)", l.address.canonical);
}

unsigned bound_port(int fd)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

}  // namespace preforkd::listener

namespace preforkd::listener {
namespace {

constexpr int kFirstInheritedFd = 3;   // SD_LISTEN_FDS_START

std::string format_address(const sockaddr_storage& ss)
{
    char buf[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
        auto& sin = reinterpret_cast<const sockaddr_in&>(ss);
        inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof buf);
        return std::string(buf) + ":" + std::to_string(ntohs(sin.sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        auto& sin6 = reinterpret_cast<const sockaddr_in6&>(ss);
        inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof buf);
        return "[" + std::string(buf) + "]:" + std::to_string(ntohs(sin6.sin6_port));
    }
    if (ss.ss_family == AF_UNIX)
        return "unix:" + std::string(reinterpret_cast<const sockaddr_un&>(ss).sun_path);
    return "";
}

bool read_count(const char* name, long& value)
{
    const char* text = std::getenv(name);
    if (!text || !*text)
        return false;
    char* end = nullptr;
    value = std::strtol(text, &end, 10);
    return *end == '\0' && value >= 0;
}

}  // namespace

std::optional<Address> address_of(int fd)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return std::nullopt;
    return parse(format_address(ss)).address;
}

std::vector<Listener> inherited()
{
    long pid = 0, count = 0;
    bool ours = read_count("LISTEN_PID", pid) && pid == ::getpid() &&
                read_count("LISTEN_FDS", count);
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    std::vector<Listener> out;
    for (int fd = kFirstInheritedFd; ours && fd < kFirstInheritedFd + count; ++fd) {
        Listener l;
        l.fd.reset(fd);
        std::optional<Address> a = address_of(fd);
        if (!a)
            continue;   // not a socket we can describe: closed by l.fd
        // Ours to keep for life, but not to pass to exec'd programs, and
        // non-blocking like every listener we bind ourselves.
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (a->family != Family::unix_path) {
            int on = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        }
        l.address = *a;
        out.push_back(std::move(l));
    }
    return out;
}

}  // namespace preforkd::listener
