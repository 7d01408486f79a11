// handshake.cpp - the front door of a TLS listener (handshake.hpp).
//
// Every wait here is a ppoll() in slices with the worker's wait mask, as in
// the connection loop: TERM ends it at once, QUIT lets the handshake finish
// (it is the request in progress), and the scoreboard sees a heartbeat.
// The handshake's deadline is absolute, from the connection's first
// moment, and a parcel carries it through the parker: however the client
// trickles its hello, the connection is done with or closed by then.
#include "preforkd/handshake.hpp"

#include <cerrno>
#include <ctime>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "preforkd/log.hpp"
#include "preforkd/parker.hpp"
#include "preforkd/tls/stream.hpp"

namespace preforkd::handshake {

const std::string_view kPlainHttpAnswer =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 38\r\n"
    "Connection: close\r\n"
    "\r\n"
    "plain HTTP request sent to HTTPS port\n";

namespace {

constexpr unsigned char kHandshakeRecord = 0x16;
constexpr std::int64_t kLingerMs = 2000;

enum class Wait { ready, timeout, quit, error };

Wait wait_for(int fd, short events, std::int64_t deadline_ms, connection::Env& env)
{
    for (;;) {
        if (env.quit && *env.quit && env.on_quit) {
            env.on_quit();
            env.on_quit = nullptr;
        }
        if (env.quit && *env.quit >= connection::kQuitNow)
            return Wait::quit;
        std::int64_t left = deadline_ms - scoreboard::now_ms();
        if (left <= 0)
            return Wait::timeout;
        scoreboard::progress(*env.slot);
        std::int64_t slice = std::min<std::int64_t>(left, 1000);
        timespec ts{time_t(slice / 1000), long(slice % 1000) * 1000000};
        pollfd p{fd, events, 0};
        int n = ::ppoll(&p, 1, &ts, env.wait_mask);
        if (n > 0)
            return Wait::ready;
        if (n < 0 && errno != EINTR)
            return Wait::error;
    }
}

// The first bytes of the connection; false if it ended or timed out first.
bool read_first(int fd, std::string& into, std::int64_t deadline_ms, connection::Env& env)
{
    char buf[16384];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            into.append(buf, std::size_t(n));
            return true;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            return false;
        if (errno == EAGAIN && wait_for(fd, POLLIN, deadline_ms, env) != Wait::ready)
            return false;
    }
}

// The 400 in clear text, logged like any answer; then the rest the client
// sent is read away (briefly) so that the close does not reset the answer.
void refuse_plain_http(int fd, const std::string& remote, std::string_view bytes,
                       connection::Env& env)
{
    ssize_t sent = ::send(fd, kPlainHttpAnswer.data(), kPlainHttpAnswer.size(), MSG_NOSIGNAL);
    if (env.log) {
        std::string line = http::first_line(bytes);
        access_log::Entry e;
        e.remote = remote;
        e.request_line = line.empty() ? std::string_view("-") : std::string_view(line);
        e.status = 400;
        e.bytes = sent > 0 ? 38 : 0;
        e.when = ::time(nullptr);
        env.log(e);
    }
    if (::shutdown(fd, SHUT_WR) != 0)
        return;
    std::int64_t deadline = scoreboard::now_ms() + kLingerMs;
    char sink[4096];
    while (scoreboard::now_ms() < deadline) {
        ssize_t n = ::recv(fd, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return;
        if (n < 0 && wait_for(fd, POLLIN, deadline, env) != Wait::ready)
            return;
    }
}

bool park_hello(int fd, const std::string& remote, const std::string& prefix,
                std::int64_t since_ms, const tls::Generation& tls,
                const connection::Settings& settings, connection::Env& env)
{
    if (!settings.parking || !env.park)
        return false;
    handoff::Parcel p = handoff::parcel_for(handoff::Kind::tls_hello, settings, env.listener, 0,
                                            since_ms, tls.handshake_timeout_ms, remote);
    p.tls = true;
    p.bytes = prefix;
    return env.park(fd, p, -1);
}

// The handshake, step by step; true once it is done.
bool complete(tls::Stream& s, int fd, std::int64_t deadline_ms, const std::string& remote,
              connection::Env& env)
{
    for (;;) {
        Wait w = Wait::ready;
        switch (s.handshake()) {
        case tls::Stream::Step::done: return true;
        case tls::Stream::Step::want_read: w = wait_for(fd, POLLIN, deadline_ms, env); break;
        case tls::Stream::Step::want_write: w = wait_for(fd, POLLOUT, deadline_ms, env); break;
        case tls::Stream::Step::failed:
            log::debug("TLS handshake with " + remote + " failed: " + s.failure());
            return false;
        }
        if (w == Wait::timeout)
            log::debug("TLS handshake with " + remote + " timed out");
        if (w != Wait::ready)
            return false;
    }
}

}  // namespace

connection::Served serve(int fd, const std::string& remote, std::string prefix,
                         std::int64_t since_ms, const tls::Generation& tls,
                         const connection::Settings& settings, const http::SiteTable& sites,
                         connection::Env& env)
{
    scoreboard::set_state(*env.slot, scoreboard::State::reading);
    scoreboard::set_text(env.slot->client, remote);
    std::int64_t deadline = since_ms + tls.handshake_timeout_ms;
    if (prefix.empty() && !read_first(fd, prefix, deadline, env))
        return {0, false};
    if (static_cast<unsigned char>(prefix[0]) != kHandshakeRecord) {
        refuse_plain_http(fd, remote, prefix, env);
        return {0, false};
    }
    if (parker::hello_progress(prefix) == parker::Progress::waiting &&
        park_hello(fd, remote, prefix, since_ms, tls, settings, env))
        return {0, true};
    int listener = env.listener;
    std::size_t fallback = sites.index_of(sites.find("", listener));
    SSL_CTX* initial = tls.contexts.for_site(fallback);
    if (!initial)
        return {0, false};   // the loader requires a certificate here
    tls::Stream stream(initial, &tls.contexts,
                       [&sites, listener](std::string_view name) {
                           return sites.index_of(sites.find(name, listener));
                       },
                       fd, std::move(prefix));
    if (!complete(stream, fd, deadline, remote, env))
        return {0, false};
    env.tls = &stream;
    connection::Served served = connection::serve(fd, remote, settings, sites, env);
    env.tls = nullptr;
    return served;
}

}  // namespace preforkd::handshake
