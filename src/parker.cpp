// parker.cpp - holding connections that are not sending, in one epoll loop.
//
// Each held connection is a Parcel plus its descriptor.  Deadlines sit in an
// ordered set, so the next one to expire is the first element and a loop
// pass costs O(log n) per connection that moved, whatever the number held.
// A connection becomes ready when head_progress() (or hello_progress() for
// TLS) says so; it is then sent to the ready queue, where exactly one idle
// worker takes it.  If the queue is full (every worker busy), ready
// connections wait in order in `backlog_` and the loop watches the queue for
// room, so a burst never drops a connection that did nothing wrong.
//
// A connection whose client stopped reading its answer comes with the rest
// of that answer (Kind::sending): bytes, then a range of a file whose
// descriptor came along.  The loop sends them as the socket takes them
// (sendfile for the file), each bit of progress moving the deadline
// send_timeout on, and then holds the connection as an idle keep-alive one,
// or closes it if the answer said so.  It still parses nothing: what it
// sends was decided, and logged, by the worker.
//
// Rejected: a thread per connection (the point is not to hold a stack per
// idle client), and timers per connection (timerfd costs a descriptor each;
// one ordered set and the epoll timeout do the same).
#include "preforkd/parker.hpp"

#include <cerrno>
#include <csignal>
#include <deque>
#include <string>
#include <set>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>
#include <tuple>
#include <utility>
#include <vector>

#include "preforkd/handoff.hpp"
#include "preforkd/log.hpp"
#include "preforkd/proctitle.hpp"
#include "preforkd/sandbox.hpp"
#include "preforkd/signals.hpp"

namespace preforkd::parker {
namespace {

using handoff::Kind;
using handoff::Parcel;

// A ClientHello is one handshake message; a record holds at most 16 KiB of
// it, and no hello worth answering needs more than 64 KiB in all.
constexpr std::size_t kMaxHello = 65536;
constexpr std::size_t kRecordHeader = 5;
constexpr unsigned char kHandshake = 0x16;

struct Held {
    Fd fd;
    Parcel parcel;
    std::int64_t deadline = 0;
    Fd file;   // Kind::sending: where the rest of the answer comes from
    // When the keep-alive wait began, for a connection whose next request
    // began here after it (-1: none).  The head's clock replaces it in the
    // parcel meanwhile; the worker gets it back with the head.
    std::int64_t idle_since = -1;
};

// What became of an answer's rest after the socket took what it could.
enum class Sent { more, done, failed, shrank };

class Loop {
public:
    explicit Loop(const Context& c) : c_(c) {}
    void run();

private:
    void take_parcels();
    void on_readable(int fd);
    void on_writable(int fd);
    void answer_sent(int fd, Held& h);
    void move_deadline(int fd, Held& h);
    void expire(std::int64_t now);
    void hand_back(int fd, Kind why);
    void flush_backlog();
    void drop(int fd);
    void watch_ready_queue(bool want);
    void publish();
    int timeout_ms(std::int64_t now) const;
    Progress progress(const Parcel& p) const;

    const Context& c_;
    Fd epoll_;
    std::unordered_map<int, Held> held_;
    std::set<std::pair<std::int64_t, int>> deadlines_;
    std::deque<Held> backlog_;
    bool watching_ready_ = false;
    bool orphaned_ = false;   // nobody holds the park queue's other end
    bool stopping_ = false;   // told to quit, or orphaned: finishing answers
    bool stop_here();
    void hand_over();
    bool resend(Held& h);
};

void add(int ep, int fd, std::uint32_t events)
{
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        throw sys_error("epoll_ctl", std::to_string(fd));
}

void Loop::run()
{
    epoll_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_)
        throw sys_error("epoll_create1");
    add(epoll_.get(), c_.park, EPOLLIN);
    epoll_event events[64];
    while (!stop_here()) {
        if (c_.slot)
            scoreboard::progress(*c_.slot);
        std::int64_t now = scoreboard::now_ms();
        expire(now);
        int n = ::epoll_pwait(epoll_.get(), events, 64, timeout_ms(now), c_.wait_mask);
        if (n < 0 && errno != EINTR)
            throw sys_error("epoll_pwait");
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == c_.park)
                take_parcels();
            else if (fd == c_.ready)
                flush_backlog();
            else if (auto it = held_.find(fd); it != held_.end() && it->second.parcel.kind == Kind::sending)
                on_writable(fd);
            else
                on_readable(fd);
        }
        publish();
    }
}

// Until the next deadline, and at least once a second for the heartbeat.
int Loop::timeout_ms(std::int64_t now) const
{
    std::int64_t t = 1000;
    if (!deadlines_.empty())
        t = std::min(t, std::max<std::int64_t>(0, deadlines_.begin()->first - now));
    return int(t);
}

void Loop::take_parcels()
{
    while (auto r = handoff::receive_parcel(c_.park)) {
        int fd = r->fd.get();
        Held h{std::move(r->fd), std::move(r->parcel), 0, std::move(r->file)};
        h.deadline = h.parcel.deadline_ms();
        bool sending = h.parcel.kind == Kind::sending;
        if (!sending && progress(h.parcel) == Progress::complete) {
            // Nothing to wait for: the worker sent it whole (it should not).
            h.parcel.kind = Kind::ready;
            backlog_.push_back(std::move(h));
            flush_backlog();
            continue;
        }
        try {
            add(epoll_.get(), fd, sending ? EPOLLOUT : EPOLLIN | EPOLLRDHUP);
        } catch (const std::system_error&) {
            continue;   // the descriptor closes with `h`; the client retries
        }
        deadlines_.emplace(h.deadline, fd);
        held_.emplace(fd, std::move(h));
    }
    // Nobody holds the queue's sending end (a parker started without one):
    // it stays readable at EOF, and waiting on it would spin.  A parker
    // that holds it for a hand-over learns of the master's end by
    // PR_SET_PDEATHSIG instead.
    if (errno == EPIPE)
        orphaned_ = true;
}

Progress Loop::progress(const Parcel& p) const
{
    if (p.kind == Kind::tls_hello)
        return hello_progress(p.bytes);
    if (p.bytes.empty())
        return Progress::waiting;
    return head_progress(p.bytes, p.max_head);
}

void Loop::on_readable(int fd)
{
    auto it = held_.find(fd);
    if (it == held_.end())
        return;
    Held& h = it->second;
    Parcel& p = h.parcel;
    char buf[16384];
    std::size_t room = p.kind == Kind::tls_hello ? kMaxHello : std::max<std::size_t>(p.max_head, 1);
    std::size_t want = std::min(sizeof buf, room > p.bytes.size() ? room - p.bytes.size() : 1);
    ssize_t n = ::recv(fd, buf, want, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0)
        return drop(fd);   // the client left, or reset: nothing to answer
    if (p.kind == Kind::keepalive && p.bytes.empty()) {
        // The next request has begun: from here the head's clock runs.
        p.kind = Kind::partial_head;
        h.idle_since = p.since_ms;
        p.since_ms = scoreboard::now_ms();
    }
    p.bytes.append(buf, std::size_t(n));
    if (progress(p) == Progress::complete)
        return hand_back(fd, Kind::ready);
    move_deadline(fd, h);
}

// Told to quit (or left alone): idle connections and those waiting for a
// worker are closed, as before; answers being sent are finished (a
// download in flight at a graceful stop completes, as in a worker), each
// within its send timeout, and the parker ends when none is left.
bool Loop::stop_here()
{
    bool handing_over = c_.hand_over && *c_.hand_over && c_.handover >= 0;
    if (!stopping_ && !((c_.quit && *c_.quit) || orphaned_ || handing_over))
        return false;
    if (!stopping_) {
        stopping_ = true;
        if (handing_over)
            hand_over();
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c_.park, nullptr);
        backlog_.clear();
        std::vector<int> idle;
        for (const auto& [fd, h] : held_)
            if (h.parcel.kind != Kind::sending)
                idle.push_back(fd);
        for (int fd : idle)
            drop(fd);
        publish();
    }
    return held_.empty();
}

// Replaced (an upgrade starts a parker of the new binary): what waits for
// its client or for a worker goes back on the park queue, with its bytes
// and deadlines, where the new parker takes it.  This parker reads the
// queue no longer; answers being sent are finished here.
void Loop::hand_over()
{
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c_.park, nullptr);
    for (Held& h : backlog_)
        resend(h);
    backlog_.clear();
    std::vector<int> waiting;
    for (auto& [fd, h] : held_)
        if (h.parcel.kind != Kind::sending)
            waiting.push_back(fd);
    for (int fd : waiting) {
        resend(held_.at(fd));
        drop(fd);   // our copy: the new parker holds its own
    }
}

// One connection onto the park queue, waiting a little for room in it;
// false when there was none (the connection then closes, as at a stop).
bool Loop::resend(Held& h)
{
    Parcel p = h.parcel;
    if (p.kind == Kind::ready)
        p.kind = p.tls ? Kind::tls_hello : Kind::partial_head;
    Fd room;   // epoll, not poll: the parker's sandbox allows no more
    for (int tries = 0; tries < 10; ++tries) {
        if (handoff::send_parcel(c_.handover, h.fd.get(), p, -1))
            return true;
        if (errno != EAGAIN && errno != EINTR)
            return false;
        if (!room) {
            room = Fd(::epoll_create1(EPOLL_CLOEXEC));
            if (!room)
                return false;
            add(room.get(), c_.handover, EPOLLOUT);
        }
        epoll_event ev;
        ::epoll_pwait(room.get(), &ev, 1, 100, c_.wait_mask);
    }
    return false;
}

void Loop::move_deadline(int fd, Held& h)
{
    deadlines_.erase({h.deadline, fd});
    h.deadline = h.parcel.deadline_ms();
    deadlines_.emplace(h.deadline, fd);
}

// Sends what the socket takes: the answer's bytes, then its file range.
Sent send_some(int fd, Held& h)
{
    Parcel& p = h.parcel;
    while (p.answer_size > 0) {
        ssize_t n = ::send(fd, p.bytes.data(), p.answer_size, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? Sent::more : Sent::failed;
        p.bytes.erase(0, std::size_t(n));
        p.answer_size -= std::uint32_t(n);
    }
    while (p.file_left > 0) {
        off_t offset = off_t(p.file_offset);
        std::size_t chunk = std::size_t(std::min<std::int64_t>(p.file_left, 1 << 20));
        ssize_t n = ::sendfile(fd, h.file.get(), &offset, chunk);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? Sent::more : Sent::failed;
        if (n == 0)
            return Sent::shrank;   // the promised length cannot be kept
        p.file_offset += n;
        p.file_left -= n;
    }
    return Sent::done;
}

void Loop::on_writable(int fd)
{
    Held& h = held_.at(fd);
    std::uint32_t before = h.parcel.answer_size;
    std::int64_t left = h.parcel.file_left;
    Sent s = send_some(fd, h);
    if (s == Sent::shrank)
        log::warning("file shrank while being sent to " + h.parcel.remote + "; closing");
    if (s == Sent::failed || s == Sent::shrank)
        return drop(fd);   // the client left or reset, or the answer cannot be whole
    if (s == Sent::done)
        return answer_sent(fd, h);
    if (h.parcel.answer_size != before || h.parcel.file_left != left) {
        h.parcel.since_ms = scoreboard::now_ms();
        move_deadline(fd, h);
    }
}

// The whole answer is out: the connection closes if it said so, or waits
// here for its next request as any idle keep-alive connection.  Requests
// the client sent meanwhile (`bytes`) make it a begun head, or a ready one.
void Loop::answer_sent(int fd, Held& h)
{
    if (h.parcel.close_after || stopping_)
        return drop(fd);
    h.file.reset();
    h.parcel.kind = h.parcel.bytes.empty() ? Kind::keepalive : Kind::partial_head;
    h.parcel.since_ms = scoreboard::now_ms();
    if (!h.parcel.bytes.empty() && progress(h.parcel) == Progress::complete) {
        // hand_back() expects the connection in the wait set, as any held one.
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        deadlines_.erase({h.deadline, fd});
        h.parcel.kind = Kind::ready;
        backlog_.push_back(std::move(h));
        held_.erase(fd);
        return flush_backlog();
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0)
        return drop(fd);
    move_deadline(fd, h);
}

void Loop::expire(std::int64_t now)
{
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        int fd = deadlines_.begin()->second;
        // A head begun, or a new connection that never sent one, goes back
        // to a worker for its 408, which the worker sends and logs as it
        // would have; an idle keep-alive connection, or an answer its client
        // stopped taking for send_timeout, is closed in silence.
        if (held_.at(fd).parcel.kind == Kind::partial_head)
            hand_back(fd, Kind::expired);
        else
            drop(fd);
    }
}

void Loop::hand_back(int fd, Kind why)
{
    auto it = held_.find(fd);
    Held h = std::move(it->second);
    h.parcel.kind = why;
    // A ready head says since when its client has been waiting: from the
    // keep-alive wait before it, if it came after one here.
    if (why == Kind::ready && h.idle_since >= 0)
        h.parcel.since_ms = h.idle_since;
    held_.erase(it);
    deadlines_.erase({h.deadline, fd});
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    backlog_.push_back(std::move(h));
    flush_backlog();
}

void Loop::flush_backlog()
{
    while (!backlog_.empty()) {
        Held& h = backlog_.front();
        if (!handoff::send_parcel(c_.ready, h.fd.get(), h.parcel)) {
            if (errno == EAGAIN)
                break;   // every worker busy: wait for room
            backlog_.pop_front();   // a broken queue: the client retries
            continue;
        }
        backlog_.pop_front();   // the worker holds its own copy now
    }
    watch_ready_queue(!backlog_.empty());
}

void Loop::watch_ready_queue(bool want)
{
    if (want == watching_ready_)
        return;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.fd = c_.ready;
    ::epoll_ctl(epoll_.get(), want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, c_.ready, &ev);
    watching_ready_ = want;
}

void Loop::drop(int fd)
{
    auto it = held_.find(fd);
    if (it == held_.end())
        return;
    deadlines_.erase({it->second.deadline, fd});
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    held_.erase(it);   // closes the descriptor
}

void Loop::publish()
{
    if (c_.parked)
        c_.parked->store(int(held_.size() + backlog_.size()), std::memory_order_relaxed);
}

// Big-endian integer of `n` bytes at `p`.
std::size_t be(const unsigned char* p, int n) noexcept
{
    std::size_t v = 0;
    for (int i = 0; i < n; ++i)
        v = (v << 8) | p[i];
    return v;
}

}  // namespace

Progress head_progress(std::string_view b, std::size_t max_head) noexcept
{
    std::size_t start = 0;
    while (start < b.size() && (b[start] == '\r' || b[start] == '\n'))
        ++start;
    std::string_view head = b.substr(start);
    // "\n\r\n" ends every proper head; "\n\n" one with bare LFs, which the
    // worker's parser refuses.
    bool ended = head.find("\n\r\n") != std::string_view::npos ||
                 head.find("\n\n") != std::string_view::npos;
    return ended || b.size() >= max_head ? Progress::complete : Progress::waiting;
}

Progress hello_progress(std::string_view b) noexcept
{
    auto u = reinterpret_cast<const unsigned char*>(b.data());
    if (b.empty())
        return Progress::waiting;
    if (u[0] != kHandshake)
        return Progress::complete;   // not TLS: the worker says so to the client
    std::size_t payload = 0;         // handshake bytes gathered from records
    std::size_t need = 0;            // 4 + the hello's length, once known
    std::size_t pos = 0;
    while (pos + kRecordHeader <= b.size()) {
        if (u[pos] != kHandshake)
            return Progress::complete;   // an alert or junk mid-hello: let TLS fail it
        std::size_t len = be(u + pos + 3, 2);
        std::size_t avail = std::min(len, b.size() - pos - kRecordHeader);
        const unsigned char* body = u + pos + kRecordHeader;
        // The handshake header (type, 24-bit length) opens the first record.
        if (payload == 0 && avail >= 4)
            need = 4 + be(body + 1, 3);
        payload += avail;
        if (need && payload >= need)
            return Progress::complete;
        if (avail < len)
            return Progress::waiting;
        pos += kRecordHeader + len;
    }
    return b.size() >= kMaxHello ? Progress::complete : Progress::waiting;
}

void run(const Context& c)
{
    Loop(c).run();
}

namespace {

volatile sig_atomic_t g_quit = 0;
volatile sig_atomic_t g_hand_over = 0;

extern "C" void parker_on_quit(int)
{
    g_quit = 1;
}

extern "C" void parker_on_hand_over(int)
{
    g_hand_over = 1;
}

// A queue holds parcels while every worker is busy: room for a few hundred
// heads, not the default's few dozen.
void enlarge(int fd)
{
    int size = 4 << 20;
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
        ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

std::pair<Fd, Fd> seqpacket_pair()
{
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        throw sys_error("socketpair", "parker queue");
    enlarge(sv[0]);
    enlarge(sv[1]);
    return {Fd(sv[0]), Fd(sv[1])};
}

}  // namespace

Queues make_queues()
{
    Queues q;
    std::tie(q.park_worker, q.park_parker) = seqpacket_pair();
    std::tie(q.ready_parker, q.ready_worker) = seqpacket_pair();
    return q;
}

void become(const Queues& q, scoreboard::Board* board, const privileges::Identity& identity,
            bool sandboxed)
{
    pid_t master = ::getppid();
    signals::reset_for_child();
    struct sigaction sa{};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = parker_on_quit;
    sigaction(SIGQUIT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = parker_on_hand_over;
    sigaction(SIGUSR2, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    for (int sig : {SIGINT, SIGHUP, SIGUSR1, SIGWINCH, SIGTTIN, SIGTTOU, SIGPIPE, SIGALRM})
        sigaction(sig, &sa, nullptr);
    sigset_t block, wait_mask;
    sigemptyset(&block);
    for (int sig : {SIGQUIT, SIGTERM, SIGUSR2})
        sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, &wait_mask);
    for (int sig : {SIGQUIT, SIGTERM, SIGUSR2})
        sigdelset(&wait_mask, sig);
    proctitle::set("preforkd: parker");
    scoreboard::Slot& slot = board->parker;
    slot.pid.store(::getpid());
    int status = 0;
    try {
        privileges::drop(identity);
        ::prctl(PR_SET_PDEATHSIG, SIGQUIT);   // after the drop, which clears it
        if (::getppid() != master)
            g_quit = 1;
        if (sandboxed) {
            sandbox::record_forbidden_calls(slot.sandbox_call);
            sandbox::Outcome o = sandbox::install({}, sandbox::Profile::parker);
            slot.sandboxed.store(std::uint8_t((o.seccomp ? scoreboard::kSeccomp : 0) |
                                               (o.landlock ? scoreboard::kLandlock : 0)));
        }
        scoreboard::set_state(slot, scoreboard::State::idle);
        Context c;
        c.park = q.park_parker.get();
        c.ready = q.ready_parker.get();
        c.slot = &slot;
        c.parked = &board->parked;
        c.quit = &g_quit;
        c.handover = q.park_worker.get();
        c.hand_over = &g_hand_over;
        c.wait_mask = &wait_mask;
        run(c);
    } catch (const std::exception& e) {
        log::err(std::string("parker failed: ") + e.what());
        status = 1;
    }
    board->parked.store(0);
    ::_exit(status);
}

}  // namespace preforkd::parker
