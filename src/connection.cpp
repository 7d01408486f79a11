// connection.cpp - the life of one connection in a worker.
//
// States: wait for bytes (keep-alive wait or header wait), parse, respond,
// send, log, repeat.  The buffer keeps unparsed bytes between requests, so
// pipelined requests are answered in order.  A request whose head never
// completes within header_timeout gets 408; an idle keep-alive connection is
// closed silently after keepalive_timeout, or at once when the worker is
// asked to quit.  A parse error gets its 4xx and the connection is closed,
// because after a malformed head nothing that follows can be trusted.  The
// same goes for a malformed chunked body, which is why such a body is read
// through before the request is answered (body_before_answer).
//
// With parking on, no wait on a client that does not send or does not read
// happens here for long: an idle keep-alive connection (after a short grace
// while idle workers are short), a head incomplete after the first read,
// and the rest of an answer the client stopped taking all go to the parker
// (handoff.hpp).
#include "preforkd/connection.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "preforkd/http/body.hpp"
#include "preforkd/http/rules.hpp"
#include "preforkd/log.hpp"
#include "preforkd/tls/stream.hpp"

namespace preforkd::connection {
namespace {

using scoreboard::State;

// park: an idle keep-alive connection should go to the parker now.
enum class Wait { ready, timeout, quit, error, park };

// While idle workers are not short, a worker holding an idle keep-alive
// connection looks at the pool this often, so that it gives the connection
// to the parker soon after they run short; within a longer grace it looks
// as often, so that the grace shrinks as they run out.
constexpr std::int64_t kIdleLookMs = 50;

struct Conn {
    int fd;
    const std::string& remote;
    const Settings& settings;
    const http::SiteTable& sites;
    Env& env;
    std::string buffer;
    std::size_t start = 0;   // first unparsed byte
    int requests = 0;
    std::int64_t keepalive_since_ms = 0;
    bool client_closes = false;   // the last request said Connection: close
    bool parked = false;          // handed to the parker: no linger, no close
    bool park_refused = false;    // the park queue was full: wait here instead
    // The answer being sent may go to the parker if its client stops
    // taking it (serve_one decides per request), and whether the
    // connection closes once it is sent.
    bool send_may_park = false;
    bool close_after_send = false;
    // The request being served, parsed afresh for each one; the same
    // object each time, so that its strings keep their storage.
    http::Request req{};
    // Resumed after its client was idle kReparkIdleMs or more: parked again
    // with no grace (repark_at_once()).
    bool repark_at_once = false;
};

// What follows the bytes being sent: a range of a file (none: file -1).
struct FileRest {
    int file = -1;
    off_t offset = 0;
    std::uint64_t left = 0;
};

// The most answer bytes a parcel carries beside a file range (the parcel
// must fit one message of the park queue).
constexpr std::size_t kMaxParkedBytes = 65536;

// The deadline for a request head, in the manner of Apache's
// RequestReadTimeout header=20-40,MinRate=500: header_timeout from the first
// byte, one more second for every header_min_rate bytes received, never more
// than header_timeout_max in all.  A slowloris client trickling bytes gets
// the base deadline; an honest slow link that keeps sending gets more.
struct HeadClock {
    std::int64_t start_ms = 0;
    std::int64_t deadline_ms = 0;

    // `now_ms`: the caller has just read the clock.
    void start(const Settings& s, std::int64_t now_ms)
    {
        start_ms = now_ms;
        deadline_ms = start_ms + s.header_timeout_ms;
    }
    void received(const Settings& s, std::size_t total_bytes)
    {
        deadline_ms = handoff::head_deadline_ms(start_ms, s.header_timeout_ms,
                                                s.header_timeout_max_ms, s.header_min_rate,
                                                total_bytes);
    }
};

bool quitting(const Env& env)
{
    return env.quit && *env.quit;
}

// Whether this connection can be handed to the parker now.
bool can_park(const Conn& c)
{
    // A TLS session lives in this process's memory: it stays here.
    return c.settings.parking && c.env.park && !c.park_refused && !c.env.tls;
}

// Idle workers short of min_spare: an idle keep-alive client should give its
// worker back to the clients waiting in the accept queue or the ready queue.
bool under_pressure(const Conn& c)
{
    const scoreboard::Board* board = c.env.board;
    return board && board->idle_workers.load(std::memory_order_relaxed) <
                        board->spare_target.load(std::memory_order_relaxed);
}

// Told to stop at once (TERM): every wait ends, whatever it waits for.
bool quitting_now(const Env& env)
{
    return env.quit && *env.quit >= kQuitNow;
}

// How long an idle keep-alive connection may still hold this worker.  With
// adaptive keep-alive the timeout shrinks in proportion as the idle workers
// fall short of min_spare, to zero when none is left: an idle client then
// gives its worker back to the clients waiting in the accept queue.  A
// connection that can be parked is parked instead (park_due), and keeps
// its whole keepalive_timeout.
std::int64_t keepalive_deadline(const Conn& c)
{
    std::int64_t timeout = c.settings.keepalive_timeout_ms;
    const scoreboard::Board* board = c.env.board;
    if (c.settings.adaptive_keepalive && board && !can_park(c)) {
        int target = board->spare_target.load(std::memory_order_relaxed);
        int idle = board->idle_workers.load(std::memory_order_relaxed);
        if (target > 0 && idle < target)
            timeout = timeout * std::max(idle, 0) / target;
    }
    return c.keepalive_since_ms + timeout;
}

// The grace an idle keep-alive connection has before it is parked, by how
// many workers are idle now.
std::int64_t park_grace_ms(const Conn& c)
{
    const scoreboard::Board* board = c.env.board;
    if (!board)
        return kParkGraceMs;
    return connection::park_grace_ms(board->idle_workers.load(std::memory_order_relaxed),
                                     board->spare_target.load(std::memory_order_relaxed));
}

// This connection's grace: none for one that came back from the parker
// after a long idle (kReparkIdleMs).
std::int64_t grace_ms(const Conn& c)
{
    return c.repark_at_once ? 0 : park_grace_ms(c);
}

// An idle keep-alive connection goes to the parker once idle workers are
// short and it has been idle for its grace.
bool park_due(const Conn& c, std::int64_t now)
{
    return can_park(c) && under_pressure(c) && now - c.keepalive_since_ms >= grace_ms(c);
}

// How long an idle keep-alive wait sleeps before it looks again: until the
// grace is over when it could be parked (at most kIdleLookMs), kIdleLookMs
// while idle workers are not short, a quarter of a second when it cannot be
// parked at all.
std::int64_t idle_slice_ms(const Conn& c, std::int64_t now)
{
    if (!can_park(c))
        return 250;
    if (!under_pressure(c))
        return kIdleLookMs;
    std::int64_t left = c.keepalive_since_ms + grace_ms(c) - now;
    return std::clamp<std::int64_t>(left, 1, kIdleLookMs);
}

// Waits for `events` until `deadline_ms` (for an idle keep-alive connection:
// its adaptive deadline, and a quit request ends the wait, as does
// park_due()).  It waits in slices so the scoreboard shows a heartbeat: a
// waiting worker is not a hung worker.
Wait wait_for(Conn& c, short events, std::int64_t deadline_ms, bool idle_keepalive)
{
    for (;;) {
        if (quitting(c.env) && c.env.on_quit) {
            c.env.on_quit();
            c.env.on_quit = nullptr;
        }
        if ((idle_keepalive && quitting(c.env)) || quitting_now(c.env))
            return Wait::quit;
        if (c.env.on_wait)
            c.env.on_wait();
        std::int64_t now = scoreboard::now_ms();
        std::int64_t slice_ms = 1000;
        if (idle_keepalive) {
            if (park_due(c, now))
                return Wait::park;
            deadline_ms = keepalive_deadline(c);
            slice_ms = idle_slice_ms(c, now);
        }
        std::int64_t left = deadline_ms - now;
        if (left <= 0)
            return Wait::timeout;
        scoreboard::progress(*c.env.slot);
        std::int64_t slice = std::min<std::int64_t>(left, slice_ms);
        timespec ts{time_t(slice / 1000), long(slice % 1000) * 1000000};
        pollfd p{c.fd, events, 0};
        int n = ::ppoll(&p, 1, &ts, c.env.wait_mask);
        if (n > 0)
            return Wait::ready;
        if (n < 0 && errno != EINTR)
            return Wait::error;
    }
}

bool park_send(Conn& c, std::string_view bytes, const FileRest& rest);

// Sends `size` bytes.  When the client takes no more and `rest` is given,
// what is left of them and `rest` may go to the parker instead of being
// waited for (then true, with c.parked set).
bool send_bytes(Conn& c, const char* data, std::size_t size, bool more,
                const FileRest* rest = nullptr)
{
    while (size > 0) {
        ssize_t n = c.env.tls ? c.env.tls->write(data, size)
                              : ::send(c.fd, data, size, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (n > 0) {
            data += n;
            size -= std::size_t(n);
            scoreboard::progress(*c.env.slot);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return false;
        if (rest && park_send(c, std::string_view(data, size), *rest))
            return true;
        std::int64_t deadline = scoreboard::now_ms() + c.settings.send_timeout_ms;
        if (wait_for(c, POLLOUT, deadline, false) != Wait::ready)
            return false;
    }
    return true;
}

// Sends `left` bytes of `file` from `offset` with sendfile(2); `may_park` as
// send_bytes' `rest`.
bool send_range(Conn& c, int file, off_t offset, std::uint64_t left, bool may_park = false)
{
    while (left > 0) {
        std::size_t chunk = left > (1u << 20) ? (1u << 20) : std::size_t(left);
        ssize_t n = c.env.tls ? c.env.tls->send_file(file, &offset, chunk)
                              : ::sendfile(c.fd, file, &offset, chunk);
        if (n > 0) {
            left -= std::uint64_t(n);
            scoreboard::progress(*c.env.slot);
            continue;
        }
        if (n == 0) {
            // The file shrank under us: the promised length cannot be kept,
            // so the only honest end is closing the connection.
            log::warning("file shrank while being sent to " + c.remote + "; closing");
            return false;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return false;
        if (may_park && park_send(c, {}, FileRest{file, offset, left}))
            return true;
        std::int64_t deadline = scoreboard::now_ms() + c.settings.send_timeout_ms;
        if (wait_for(c, POLLOUT, deadline, false) != Wait::ready)
            return false;
    }
    return true;
}

// multipart/byteranges: each part's header text, then its range of the file.
bool send_parts(Conn& c, const http::Response& r)
{
    for (std::size_t i = 0; i < r.parts.size(); ++i) {
        const http::FilePart& p = r.parts[i];
        bool more = p.length > 0 || i + 1 < r.parts.size();
        if (!send_bytes(c, p.text.data(), p.text.size(), more))
            return false;
        if (p.length > 0 && !send_range(c, r.file.get(), p.offset, p.length))
            return false;
    }
    return true;
}

bool send_response(Conn& c, http::Response& r)
{
    scoreboard::set_state(*c.env.slot, State::writing);
    bool file = r.file.valid() && r.file_length > 0;
    bool parts = r.file.valid() && !r.parts.empty();
    // The last answer on a connection goes out corked (MSG_MORE): the close
    // that follows at once sends it with the FIN in the same segment.  An
    // answer of bytes, or bytes and one file range, may go to the parker
    // when the client stops taking it; multipart answers stay here.
    FileRest rest;
    if (!file && !parts) {
        r.head += r.body;   // one segment for small bodies
        return send_bytes(c, r.head.data(), r.head.size(), r.close, &rest);
    }
    rest = FileRest{r.file.get(), r.file_offset, file ? r.file_length : 0};
    if (!send_bytes(c, r.head.data(), r.head.size(), file || parts, parts ? nullptr : &rest))
        return false;
    if (c.parked)
        return true;
    if (file)
        return send_range(c, r.file.get(), r.file_offset, r.file_length, true);
    return !parts || send_parts(c, r);
}

// Unique in the pool while pids are: the pid, then a count of this
// process's requests.  The pid is read on the first request, in the worker.
std::uint64_t next_request_id()
{
    thread_local const std::uint64_t pid = std::uint64_t(::getpid());
    thread_local std::uint32_t count = 0;  // thread_local: see worker.cpp
    return pid << 32 | ++count;
}

void log_request(Conn& c, const http::Request* req, std::string_view line, int status,
                 std::uint64_t bytes, std::int64_t started_us,
                 const http::VirtualSite* site = nullptr)
{
    c.env.slot->bytes.fetch_add(bytes, std::memory_order_relaxed);
    if (!c.env.log)
        return;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    access_log::Entry e;
    e.remote = c.remote;
    e.request_line = line.empty() ? std::string_view("-") : line;
    e.status = status;
    e.bytes = bytes;
    if (c.env.tls) {
        e.tls_protocol = c.env.tls->protocol();
        e.tls_cipher = c.env.tls->cipher();
        e.tls_resumed = c.env.tls->resumed();
    }
    if (req) {
        e.referer = req->header("Referer");
        e.user_agent = req->header("User-Agent");
        e.host = req->host;
    }
    if (site) {
        e.site = site->name;
        e.sink = site->log;
    }
    e.request_id = next_request_id();
    e.when = ::time(nullptr);
    e.micros = std::int64_t(now.tv_sec) * 1000000 + now.tv_nsec / 1000 - started_us;
    c.env.log(e);
}

std::int64_t now_us()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// Sends an error the loop decided (408, the parser's 4xx, or 400, 408 or 413
// for the body of a parsed `req`) and logs it; the connection is closed
// afterwards.
void fail(Conn& c, int status, std::int64_t started_us, const http::Request* req = nullptr)
{
    std::string line = req ? req->request_line
                           : http::first_line(std::string_view(c.buffer).substr(c.start));
    http::Response r = http::error_response(status, c.sites.default_site().defaults.files,
                                            req && req->method == "HEAD");
    bool sent = send_response(c, r);
    log_request(c, req, line, status, sent ? r.body_bytes() : 0, started_us);
}

// idle: nothing to read now, and the caller asked to hear it rather than
// wait (a connection it may park).  park: an idle keep-alive connection is
// due for the parker (park_due).
enum class Read { more, eof, timeout, quit, error, idle, park };

// Where a read lands before its bytes join the connection's buffer, and
// where linger() reads away what it discards.  Not a local array: 16 KiB on
// the stack puts whatever is called beneath it 16 KiB deeper, and a worker
// keeps every stack page it has touched (see worker.cpp).  Not thread-local
// either: 16 KiB there would spread the small thread-local caches over one
// more page in every worker, where in .bss only the first page of it
// becomes a worker's own, and only once the worker reads.  Page-aligned,
// so that this first page is not also the last page of .data.
alignas(4096) char g_read_area[16384];

// Reads what is available into the buffer, waiting up to the phase's timeout.
// An idle keep-alive connection is waited on first: the client has only just
// been answered, so its next request is rarely there yet, and a recv() that
// would fail with EAGAIN is a system call per request for nothing.
Read read_more(Conn& c, bool idle_keepalive, std::int64_t deadline, bool may_park = false)
{
    // Bytes TLS already decrypted are not in the socket: no wait for them.
    if (idle_keepalive && !(c.env.tls && c.env.tls->pending())) {
        switch (wait_for(c, POLLIN, deadline, true)) {
        case Wait::ready: break;
        case Wait::timeout: return Read::timeout;
        case Wait::quit: return Read::quit;
        case Wait::error: return Read::error;
        case Wait::park: return Read::park;
        }
    }
    for (;;) {
        char* chunk = g_read_area;
        ssize_t n = c.env.tls ? c.env.tls->read(chunk, sizeof g_read_area)
                              : ::recv(c.fd, chunk, sizeof g_read_area, 0);
        if (n > 0) {
            c.buffer.append(chunk, std::size_t(n));
            scoreboard::progress(*c.env.slot);
            return Read::more;
        }
        if (n == 0)
            return Read::eof;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return Read::error;
        if (may_park)
            return Read::idle;
        switch (wait_for(c, POLLIN, deadline, idle_keepalive)) {
        case Wait::ready: continue;
        case Wait::timeout: return Read::timeout;
        case Wait::quit: return Read::quit;
        case Wait::error: return Read::error;
        case Wait::park: return Read::park;
        }
    }
}

void compact(Conn& c)
{
    if (c.start == c.buffer.size()) {
        c.buffer.clear();
        c.start = 0;
    } else if (c.start > 0) {
        c.buffer.erase(0, c.start);
        c.start = 0;
    }
}

// What became of a request body the loop tried to skip.
enum class Body { skipped, malformed, too_large, incomplete, timeout, gone };

// Skips the body of `req`, which nothing reads, so that the next request is
// parsed from its own first byte.  Anything but skipped ends the connection:
// the body is malformed, over limits.max_discard_body, cut short by the
// client's end of stream, does not arrive within header_timeout, or the
// connection failed or was told to stop.
Body discard_body(Conn& c, const http::Request& req)
{
    http::BodyDiscarder body(req, c.settings.limits.max_discard_body);
    std::int64_t deadline = scoreboard::now_ms() + c.settings.header_timeout_ms;
    scoreboard::set_state(*c.env.slot, State::reading);
    for (;;) {
        http::DiscardResult d = body.feed(std::string_view(c.buffer).substr(c.start));
        c.start += d.consumed;
        if (d.state == http::DiscardState::done)
            return Body::skipped;
        if (d.state == http::DiscardState::error) {
            log::info(std::string(d.reason) + " from " + c.remote + "; closing");
            return d.over_limit ? Body::too_large : Body::malformed;
        }
        compact(c);
        switch (read_more(c, false, deadline)) {
        case Read::more: continue;
        case Read::eof: return Body::incomplete;
        case Read::timeout: return Body::timeout;
        case Read::quit:
        case Read::error:
        case Read::idle:
        case Read::park: return Body::gone;   // idle, park: not asked for here
        }
    }
}

// A chunked body is read through before the answer (RFC 9112 6.3, 7.1): its
// framing is only known to be sound once its last chunk has been read, and a
// 200 sent before then, with the connection kept open, would be followed by
// a reset when the framing turns out bad.  So a bad framing or an
// incomplete body gets 400, a body over max_discard_body 413 (as a
// Content-Length over it does) and a body that stalls 408, each with a
// close, whatever the method.  A Content-Length body needs no check (only
// its length frames it) and is skipped after the answer.  Nor is a body
// waited for when the request says "Expect: 100-continue": the client may
// hold it back until it hears from us, so the answer closes the connection
// instead (static_file.hpp, UnreadBody).  False: the connection ended.
bool body_before_answer(Conn& c, const http::Request& req, std::int64_t started_us)
{
    switch (discard_body(c, req)) {
    case Body::skipped:
        return true;
    case Body::malformed:
    case Body::incomplete:
        fail(c, 400, started_us, &req);
        return false;
    case Body::too_large:
        fail(c, 413, started_us, &req);
        return false;
    case Body::timeout:
        fail(c, 408, started_us, &req);
        return false;
    case Body::gone:
        return false;
    }
    return false;
}

enum class Head { complete, closed, parked };

// Hands the connection to the parker: an idle keep-alive one with its
// keep-alive clock, a begun head with the head's clock and bytes.
handoff::Parcel parcel_of(const Conn& c, handoff::Kind kind, std::int64_t since_ms)
{
    return handoff::parcel_for(kind, c.settings, c.env.listener, std::uint32_t(c.requests), since_ms,
                               c.settings.keepalive_timeout_ms, c.remote);
}

// A full queue (the parker is behind, or gone): the connection waits here,
// as it would without parking.
bool hand_over(Conn& c, handoff::Parcel& p, int file = -1)
{
    c.parked = c.env.park(c.fd, p, file);
    c.park_refused = !c.parked;
    return c.parked;
}

bool park(Conn& c, handoff::Kind kind, std::int64_t since_ms)
{
    if (!can_park(c))
        return false;
    handoff::Parcel p = parcel_of(c, kind, since_ms);
    p.bytes = c.buffer.substr(c.start);
    return hand_over(c, p);
}

// The client takes no more of the answer for now: the parker sends the
// rest as it reads (`bytes`, then `rest`'s range), so a client that reads
// slowly, or not at all, holds no worker.  Requests it pipelined after this
// one travel along, for the parker to hand back once the answer is out.
// Only when serve_one allowed it: no body is left to skip.
bool park_send(Conn& c, std::string_view bytes, const FileRest& rest)
{
    std::string_view input = std::string_view(c.buffer).substr(c.start);
    if (!c.send_may_park || !can_park(c) || bytes.size() + input.size() > kMaxParkedBytes)
        return false;
    handoff::Parcel p = parcel_of(c, handoff::Kind::sending, scoreboard::now_ms());
    p.bytes.reserve(bytes.size() + input.size());
    p.bytes.append(bytes).append(input);
    p.answer_size = std::uint32_t(bytes.size());
    p.file_offset = rest.offset;
    p.file_left = std::int64_t(rest.left);
    p.send_timeout_ms = c.settings.send_timeout_ms;
    p.close_after = c.close_after_send;
    return hand_over(c, p, rest.left > 0 ? rest.file : -1);
}

// An idle keep-alive connection is parked when park_due() says so, or when
// this worker is leaving (a reload, a graceful stop): the client's next
// request then meets a worker that stays.
bool park_idle(Conn& c)
{
    return park(c, handoff::Kind::keepalive, c.keepalive_since_ms);
}

// Reads until `req` holds a complete head.  An idle keep-alive connection
// that ends, times out or is asked to quit closes quietly; a started head
// that stalls gets 408; a malformed one its 4xx.
Head read_head(Conn& c, http::Request& req, std::int64_t& started_us)
{
    bool keepalive_wait = c.requests > 0 && c.buffer.empty();
    scoreboard::set_state(*c.env.slot, keepalive_wait ? State::keepalive : State::reading);
    c.keepalive_since_ms = scoreboard::now_ms();
    c.park_refused = false;
    HeadClock clock;
    clock.start(c.settings, c.keepalive_since_ms);
    for (;;) {
        http::ParseResult p = http::parse(std::string_view(c.buffer), c.settings.limits, req);
        if (p.state == http::ParseState::error) {
            fail(c, p.status, started_us);
            return Head::closed;
        }
        if (p.state == http::ParseState::complete) {
            c.start = p.consumed;
            return Head::complete;
        }
        std::string line = http::first_line(c.buffer);
        if (!line.empty())
            scoreboard::set_text(c.env.slot->request, line);
        if (keepalive_wait && quitting(c.env) && park_idle(c))
            return Head::parked;
        // A head that is not all here after the first read waits in the
        // parker, not in this worker: a slow client holds no process.
        bool may_park = !keepalive_wait && can_park(c);
        Read r = read_more(c, keepalive_wait, clock.deadline_ms, may_park);
        if (r == Read::idle) {
            if (park(c, handoff::Kind::partial_head, clock.start_ms))
                return Head::parked;
            r = read_more(c, false, clock.deadline_ms);
        }
        if (r == Read::park) {
            if (park_idle(c))
                return Head::parked;
            continue;   // refused: wait here, under adaptive keep-alive
        }
        // Told to leave, or cut short by adaptive keep-alive because idle
        // workers ran out while it waited: the parker keeps the connection
        // for the rest of its keep-alive time.
        bool cut_short = r == Read::timeout &&
                         scoreboard::now_ms() < c.keepalive_since_ms + c.settings.keepalive_timeout_ms;
        if (keepalive_wait && (r == Read::quit || cut_short) && park_idle(c))
            return Head::parked;
        if (r != Read::more) {
            if (r == Read::timeout && !keepalive_wait)
                fail(c, 408, started_us);
            return Head::closed;
        }
        if (keepalive_wait) {
            // The first byte of the next request starts its header clock.
            keepalive_wait = false;
            scoreboard::set_state(*c.env.slot, State::reading);
            started_us = now_us();
            clock.start(c.settings, started_us / 1000);
        }
        clock.received(c.settings, c.buffer.size());
    }
}

// A refusal's reason, for the administrator who wonders about a 403: at
// info, at most kRefusalBurst lines per kRefusalWindowMs per worker (a
// scan must not flood syslog), and the rest at debug, so that with
// log.level "debug" every refusal is told once.
constexpr int kRefusalBurst = 10;
constexpr std::int64_t kRefusalWindowMs = 10000;

// A reason may hold names a client chose (a path, a user name): control
// bytes are shown as \xHH, so no client can add a line to the log.
std::string printable(std::string_view text)
{
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (unsigned char ch : text) {
        if (ch >= 0x20 && ch != 0x7f) {
            out += char(ch);
            continue;
        }
        out += "\\x";
        out += hex[ch >> 4];
        out += hex[ch & 15];
    }
    return out;
}

void log_refusal(const Conn& c, const http::Request& req, const http::Response& resp)
{
    thread_local std::int64_t window_start = -kRefusalWindowMs;
    thread_local int told = 0;  // thread_local: see worker.cpp
    std::int64_t now = scoreboard::now_ms();
    if (now - window_start >= kRefusalWindowMs) {
        window_start = now;
        told = 0;
    }
    std::string line = std::to_string(resp.status) + " for \"" +
                       access_log::escaped(req.request_line) + "\" from " + c.remote + ": " +
                       printable(resp.refusal);
    if (++told <= kRefusalBurst)
        log::info(line);
    else
        log::debug(line);
}

// A TLS client named one site in SNI and got its certificate; a Host of
// another site must not be answered on that connection (RFC 9110 section
// 15.5.20: 421, and the client may retry on a connection of its own).
bool misdirected(const Conn& c, const http::Request& req, const http::VirtualSite& site)
{
    return c.env.tls && c.env.tls->sni_given && !req.host.empty() &&
           c.sites.index_of(site) != c.env.tls->sni_site;
}

// Serves one request if a head can be read; false ends the connection.
bool serve_one(Conn& c)
{
    compact(c);
    std::int64_t started = now_us();
    http::Request& req = c.req;
    if (read_head(c, req, started) != Head::complete)
        return false;   // closed, or parked (c.parked)
    ++c.requests;
    scoreboard::set_text(c.env.slot->request, req.request_line);
    c.env.slot->requests.fetch_add(1, std::memory_order_relaxed);
    c.client_closes = !req.wants_keep_alive();
    // A body larger than we would ever read: 413 at once, and close (the
    // rest of it will not be read, so nothing after it can be trusted).
    if (req.content_length > c.settings.limits.max_discard_body) {
        fail(c, 413, started, &req);
        return false;
    }
    bool body_first = req.chunked && !req.expects_continue();
    if (body_first && !body_before_answer(c, req, started))
        return false;
    bool close = c.client_closes || quitting(c.env) ||
                 c.requests >= c.settings.keepalive_requests;
    const http::VirtualSite& site = c.sites.find(req.host, c.env.listener);
    if (misdirected(c, req, site)) {
        fail(c, 421, started, &req);
        return false;
    }
    http::Visit visit{site, c.env.client, close, http::UnreadBody::discard};
    visit.scheme = c.env.tls ? "https" : "http";
    visit.status = &c.env.status;
    http::Response resp = http::answer(req, visit);
    if (!resp.refusal.empty())
        log_refusal(c, req, resp);
    // The answer may be finished by the parker unless a body is still to
    // be skipped after it.
    c.send_may_park = body_first || !req.has_body();
    c.close_after_send = resp.close || close;
    bool sent = send_response(c, resp);
    c.send_may_park = false;
    // Handed to the parker, the answer is logged here as sent whole.
    log_request(c, &req, req.request_line, resp.status, sent ? resp.body_bytes() : 0, started,
                &site);
    bool ends = !sent || resp.close || close || c.parked;
    http::recycle(std::move(resp));
    if (ends)
        return false;
    return body_first || !req.has_body() || discard_body(c, req) == Body::skipped;
}

// Closing a socket whose receive queue still holds bytes makes Linux send a
// reset, and a reset destroys response data still in flight to the client
// (RFC 9112 section 9.6).  So when the client has sent more than we read -
// pipelined requests past the last answered one, a body we refused - we
// half-close and read until the client closes too, for at most
// kLingerMs in all; the common case (nothing pending) closes at once.
constexpr std::int64_t kLingerMs = 2000;

bool input_pending(const Conn& c)
{
    if (c.start < c.buffer.size())
        return true;
    // A client that asked us to close sends nothing after its request; not
    // asking the kernel saves a system call on every such connection.
    if (c.client_closes)
        return false;
    int queued = 0;
    return ::ioctl(c.fd, FIONREAD, &queued) == 0 && queued > 0;
}

void linger(Conn& c)
{
    if (!input_pending(c) || ::shutdown(c.fd, SHUT_WR) != 0)
        return;
    scoreboard::set_state(*c.env.slot, State::keepalive);
    std::int64_t deadline = scoreboard::now_ms() + kLingerMs;
    // The deadline is checked on every pass, not only in the wait: a client
    // that keeps the receive queue full never lets recv() say EAGAIN.
    while (scoreboard::now_ms() < deadline) {
        ssize_t n = ::recv(c.fd, g_read_area, sizeof g_read_area, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return;
        if (n < 0 && wait_for(c, POLLIN, deadline, false) != Wait::ready)
            return;
    }
}

Served run(Conn& c)
{
    scoreboard::set_text(c.env.slot->client, c.remote);   // for preforkd -s status
    while (serve_one(c)) {
    }
    if (c.env.tls)
        c.env.tls->close_notify();
    if (!c.parked)
        linger(c);
    return {c.requests, c.parked};
}

}  // namespace

// Linear between the two ends: a pool that gets a little short keeps its
// busy clients where they are, one that is running out frees its workers
// almost at once.  The constants and the measurements behind them are in
// connection.hpp.
std::int64_t park_grace_ms(int idle, int spare_target) noexcept
{
    if (spare_target <= 0)
        return kParkGraceMs;
    std::int64_t ready = std::clamp(idle, 0, spare_target);
    return kParkGraceMs + (kParkGraceMaxMs - kParkGraceMs) * ready / spare_target;
}

bool repark_at_once(const handoff::Parcel& parcel, std::int64_t now_ms) noexcept
{
    return parcel.kind == handoff::Kind::ready && !parcel.tls &&
           now_ms - parcel.since_ms >= kReparkIdleMs;
}

Served serve(int fd, const std::string& remote, const Settings& settings,
             const http::SiteTable& sites, Env& env)
{
    Conn c{fd, remote, settings, sites, env, {}, 0, 0};
    c.buffer.reserve(4096);
    return run(c);
}

Served resume(int fd, const handoff::Parcel& parcel, const Settings& settings,
              const http::SiteTable& sites, Env& env)
{
    Conn c{fd, parcel.remote, settings, sites, env, parcel.bytes, 0, int(parcel.requests)};
    if (parcel.kind == handoff::Kind::expired) {
        // Its head missed the deadline while parked: the 408 it would have
        // had here, logged the same way.
        fail(c, 408, now_us());
        linger(c);
        return {0, false};
    }
    c.repark_at_once = repark_at_once(parcel, scoreboard::now_ms());
    Served s = run(c);
    s.requests -= int(parcel.requests);
    return s;
}

}  // namespace preforkd::connection
