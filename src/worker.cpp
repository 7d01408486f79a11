// worker.cpp - the worker process.
//
// With one listener a worker sleeps in a blocking accept(), and the kernel
// hands each new connection to exactly one sleeper.  With several, it waits
// on its own epoll set holding every listener with EPOLLEXCLUSIVE, so a new
// connection wakes one idle worker, not the whole pool; losing the accept()
// race to another worker (EAGAIN) is then normal.  It serves one connection
// at a time.  SIGQUIT asks it to finish the current request and exit; the
// signal is blocked except while the worker waits, so the request in
// progress is never interrupted.  SIGTERM ends it at once.  If the master
// dies, the kernel sends SIGQUIT (PR_SET_PDEATHSIG), so no orphan keeps
// serving an old configuration.  After the privilege drop and before the
// first accept() it confines itself (sandbox.hpp): a forbidden system call
// then raises SIGSYS, whose handler records the call in the worker's slot
// for the master's log and lets the signal kill the worker.
#include "preforkd/worker.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include "preforkd/control.hpp"
#include "preforkd/handoff.hpp"
#include "preforkd/handshake.hpp"
#include "preforkd/log.hpp"
#include "preforkd/proctitle.hpp"
#include "preforkd/sandbox.hpp"
#include "preforkd/signals.hpp"

namespace preforkd::worker {
namespace {

// Facts recorded by the signal handlers.  QUIT, TERM and ALRM are blocked
// except while the worker waits (g_wait_mask), so they land between
// requests, never in the middle of building or logging one.
volatile sig_atomic_t g_quit = 0;        // connection::kQuitGraceful or kQuitNow
volatile sig_atomic_t g_flush_due = 0;   // the access-log buffer is old enough
sigset_t g_wait_mask;
// The listener a blocking accept() is waiting on (-1 outside that wait), and
// a descriptor accept() fails on at once, for the handler to put in its
// place: the worker's channel to the master, a datagram socket.
volatile sig_atomic_t g_accept_fd = -1;
int g_not_listening = -1;

// accept() cannot swap the signal mask atomically as ppoll() does: the
// signal may land after the last look at g_quit, before the call.  With
// another socket in the listener's place (in this process only), that
// accept() fails at once instead of sleeping on.
void stop_accepting()
{
    int fd = g_accept_fd;
    if (fd >= 0) {
        int saved = errno;
        ::dup2(g_not_listening, fd);
        errno = saved;
    }
}

extern "C" void on_quit(int)
{
    if (g_quit < connection::kQuitGraceful)
        g_quit = connection::kQuitGraceful;
    stop_accepting();
}

extern "C" void on_terminate(int)
{
    g_quit = connection::kQuitNow;
    stop_accepting();
}

extern "C" void on_alarm(int)
{
    g_flush_due = 1;
}

void setup_signals()
{
    signals::reset_for_child();
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_quit;
    sigaction(SIGQUIT, &sa, nullptr);
    sa.sa_handler = on_terminate;
    sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    // SIGINT too: Ctrl-C in a foreground run reaches the whole process group,
    // and the master ends its workers itself, after it has decided to stop.
    for (int s : {SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU, SIGPIPE, SIGXFSZ})
        sigaction(s, &sa, nullptr);
    sigset_t block;
    sigemptyset(&block);
    for (int s : {SIGQUIT, SIGTERM, SIGALRM})
        sigaddset(&block, s);
    sigprocmask(SIG_BLOCK, &block, &g_wait_mask);
    for (int s : {SIGQUIT, SIGTERM, SIGALRM})
        sigdelset(&g_wait_mask, s);
}

// The flush timer runs while the access-log buffer holds lines: it interrupts
// whatever wait the worker is in once `seconds` have passed, and again every
// `seconds` after, in case one signal landed just before a blocking accept().
void set_flush_timer(int seconds)
{
    itimerval t{};
    t.it_value.tv_sec = t.it_interval.tv_sec = seconds;
    ::setitimer(ITIMER_REAL, &t, nullptr);
}

void watch_master(pid_t master)
{
    ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
    // The master may have died between fork() and prctl().
    if (::getppid() != master)
        g_quit = connection::kQuitGraceful;
}

// Every listener, and the parker's ready queue if there is one: a new
// connection or a parked one that is ready wakes one idle worker.
Fd make_epoll(const std::vector<int>& listeners, int ready)
{
    Fd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (!ep)
        throw sys_error("epoll_create1");
    std::vector<int> all = listeners;
    if (ready >= 0)
        all.push_back(ready);
    for (int fd : all) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ev.data.fd = fd;
        if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
            throw sys_error("epoll_ctl", std::to_string(fd));
    }
    return ep;
}

std::string remote_name(const sockaddr_storage& ss)
{
    char buf[INET6_ADDRSTRLEN] = "-";
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
    else if (ss.ss_family == AF_UNIX)
        return "unix";
    return buf;
}

// A full disk takes part of a line: the file then ends in a fragment that
// the next line would be glued to.  If nothing was appended after it, cut
// it off again, so the log holds whole lines or none.
void take_back(int fd, ssize_t written)
{
    off_t end = ::lseek(fd, 0, SEEK_CUR);
    struct stat st;
    if (written > 0 && end >= written && ::fstat(fd, &st) == 0 && st.st_size == end) {
        int ignored = ::ftruncate(fd, end - written);
        (void)ignored;
    }
}

// Out of descriptors: pause instead of spinning on a connection that stays
// pending; the pause ends early if the worker is told to quit.
void back_off_accept(int err)
{
    static std::int64_t last_log = -60000;
    std::int64_t now = scoreboard::now_ms();
    if (now - last_log >= 10000) {
        log::err(sys_message("accept", "", err) + "; pausing accepts for 100 ms");
        last_log = now;
    }
    timespec ts{0, 100 * 1000000};
    ::ppoll(nullptr, 0, &ts, &g_wait_mask);
}

class Worker {
public:
    explicit Worker(Context& c) : c_(c), slot_(c.board->slots[c.slot]) {}
    void start();
    void loop();
    void flush_log();
    void flush_log_if_due();

private:
    int wait_and_accept(int listener, sockaddr_storage& peer);
    void serve(int fd, int listener, const sockaddr_storage& peer);
    bool resume_parked();
    void resume(const handoff::Received& got);
    void sweep();
    connection::Env make_env(int listener, const sockaddr_storage& peer);
    bool park(int fd, handoff::Parcel& parcel);
    // One access log: the main one (sinks_[0]) or a site's.
    struct Sink {
        int fd = -1;
        std::string path;
        access_log::Format format = access_log::Format::combined;
        std::string pending;    // buffered lines, whole lines only
        bool failing = false;
        std::int64_t failure_said_ms = 0;
    };

    void write_log(const access_log::Entry& e);
    void write_lines(Sink& sink);
    void refresh_log_fds();
    void close_listeners();
    bool logging() const;
    std::vector<std::string> readable_roots() const;
    void confine();

    Context& c_;
    scoreboard::Slot& slot_;
    Fd epoll_;
    long served_ = 0;
    long limit_ = 0;
    std::vector<Sink> sinks_;
    std::size_t pending_bytes_ = 0;   // over all sinks
};

void Worker::start()
{
    pid_t master = ::getppid();
    slot_.pid.store(::getpid());
    setup_signals();
    proctitle::set("preforkd: worker process");
    if (c_.sandbox)
        sandbox::prepare();
    privileges::drop(c_.identity);
    // After the drop: changing credentials clears the parent-death signal.
    watch_master(master);
    g_not_listening = c_.channel;
    if (c_.listeners.size() > 1 || c_.ready >= 0)
        epoll_ = make_epoll(c_.listeners, c_.ready);
    limit_ = jittered_limit(c_.max_requests, unsigned(::getpid()));
    sinks_.push_back(Sink{c_.access_log_fd, c_.access_log_path, c_.log_format, {}, false, 0});
    for (const SiteLog& l : c_.site_logs)
        sinks_.push_back(Sink{l.fd, l.path, l.format, {}, false, 0});
    confine();
}

// Every directory of this generation a request may read beneath: each
// site's root, and each location's root or alias.
std::vector<std::string> Worker::readable_roots() const
{
    return c_.sites.roots();
}

// The last step before serving.  A mechanism the kernel lacks is said once
// for the whole pool (the board remembers), not once per worker.
void Worker::confine()
{
    http::open_roots(readable_roots());
    if (!c_.sandbox)
        return;
    sandbox::record_forbidden_calls(slot_.sandbox_call);
    sandbox::Outcome o = sandbox::install(readable_roots());
    slot_.sandboxed.store(std::uint8_t((o.seccomp ? scoreboard::kSeccomp : 0) |
                                       (o.landlock ? scoreboard::kLandlock : 0)));
    if ((o.seccomp && o.landlock) || c_.board->sandbox_gap_said.exchange(true))
        return;
    if (!o.landlock)
        log::warning("sandbox: landlock not available (ABI " + std::to_string(o.landlock_abi) + ")");
    if (!o.seccomp)
        log::warning("sandbox: seccomp not available (" + sys_message("seccomp_load", "", o.seccomp_error) + ")");
}

void Worker::loop()
{
    scoreboard::set_state(slot_, scoreboard::State::idle);
    while (!g_quit && (limit_ == 0 || served_ < limit_)) {
        flush_log_if_due();
        int listener = -1;
        if (epoll_) {
            epoll_event ev;
            int n = ::epoll_pwait(epoll_.get(), &ev, 1, -1, &g_wait_mask);
            if (n < 0 && errno != EINTR)
                throw sys_error("epoll_wait");
            if (n == 1 && !g_quit)
                listener = ev.data.fd;
        } else if (!c_.listeners.empty()) {
            listener = c_.listeners.front();
        }
        if (listener < 0)
            continue;
        if (listener == c_.ready) {
            resume_parked();
            continue;
        }
        sockaddr_storage peer{};
        int fd = wait_and_accept(listener, peer);
        if (fd >= 0) {
            Fd conn(fd);
            serve(conn.get(), listener, peer);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            back_off_accept(errno);
        }
        // Otherwise: EAGAIN (another worker won the race), ECONNABORTED (the
        // client gave up), EINTR or a failed accept on the swapped-in
        // socket (told to quit).
    }
    scoreboard::set_state(slot_, scoreboard::State::draining);
    if (g_quit < connection::kQuitNow)
        sweep();
}

// Leaving gracefully from an epoll wait.  EPOLLEXCLUSIVE wakes one waiting
// worker per event: if that was this one, told to quit at the same moment,
// the connection (or parcel) that woke it waits on with no worker woken for
// it.  So: leave the wait set first - from then on events wake the others -
// then take whatever is still queued.  New connections are served here
// (with Connection: close, as the worker is leaving); a parcel from the
// ready queue goes back to the parker, which hands it on at once to a
// worker that stays, unless the server is stopping for good.
void Worker::sweep()
{
    if (!epoll_)
        return;
    epoll_.reset();
    for (int listener : c_.listeners) {
        // A reload may have made the listener blocking meanwhile: ask first.
        pollfd p{listener, POLLIN, 0};
        while (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
            sockaddr_storage peer{};
            socklen_t len = sizeof peer;
            int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                break;
            Fd conn(fd);
            serve(conn.get(), listener, peer);
        }
    }
    bool stopping = c_.board->stopping.load();
    while (c_.ready >= 0) {
        auto got = handoff::receive_parcel(c_.ready);
        if (!got)
            break;
        if (!stopping && got->parcel.kind == handoff::Kind::ready &&
            handoff::send_parcel(c_.park, got->fd.get(), got->parcel))
            continue;
        resume(*got);
    }
}

// accept() with QUIT, TERM and ALRM let through: a blocking listener sleeps
// here.  A listener that turns out non-blocking (a reload to several
// listeners makes them so while this worker's generation drains) is waited
// for with ppoll, which takes the signal mask atomically.
int Worker::wait_and_accept(int listener, sockaddr_storage& peer)
{
    if (epoll_) {
        // Woken by epoll for a non-blocking listener: nothing to wait for,
        // and QUIT must not swap the listener out under a pending wake-up.
        socklen_t len = sizeof peer;
        return ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    sigset_t serving;
    ::sigprocmask(SIG_SETMASK, &g_wait_mask, &serving);
    g_accept_fd = listener;
    int fd = -1;
    errno = EINTR;
    if (!g_quit && !g_flush_due) {
        socklen_t len = sizeof peer;
        fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    int err = errno;
    g_accept_fd = -1;
    ::sigprocmask(SIG_SETMASK, &serving, nullptr);
    if (fd < 0 && err == EAGAIN && !epoll_) {
        pollfd p{listener, POLLIN, 0};
        ::ppoll(&p, 1, nullptr, &g_wait_mask);
    }
    errno = err;
    return fd;
}

// The listener's index in the configuration: sites bound to listeners name
// them by it.
int listener_index(const std::vector<int>& listeners, int fd)
{
    for (std::size_t i = 0; i < listeners.size(); ++i)
        if (listeners[i] == fd)
            return int(i);
    return -1;
}

// `listener` is the listener's index in the configuration.
connection::Env Worker::make_env(int listener, const sockaddr_storage& peer)
{
    connection::Env env;
    env.listener = listener;
    env.client = http::client_address(peer);
    env.slot = &slot_;
    env.board = c_.board;
    env.wait_mask = &g_wait_mask;
    env.quit = &g_quit;
    if (logging())
        env.log = [this](const access_log::Entry& e) { write_log(e); };
    env.on_quit = [this] { close_listeners(); };
    env.on_wait = [this] { flush_log_if_due(); };
    if (c_.park >= 0)
        env.park = [this](int fd, handoff::Parcel& p) { return park(fd, p); };
    // A status location reads the shared scoreboard: memory, no system call.
    env.status = [board = c_.board](http::StatusFormat f) { return control::render_page(*board, f); };
    return env;
}

void Worker::serve(int fd, int listener, const sockaddr_storage& peer)
{
    connection::Env env = make_env(listener_index(c_.listeners, listener), peer);
    if (c_.tls && c_.tls->on(env.listener))
        handshake::serve(fd, remote_name(peer), {}, scoreboard::now_ms(), *c_.tls, c_.settings,
                         c_.sites, env);
    else
        connection::serve(fd, remote_name(peer), c_.settings, c_.sites, env);
    ++served_;
    scoreboard::set_state(slot_, scoreboard::State::idle);
}

// A connection the parker holds no longer: its head is complete.  Losing
// the race for it to another worker (EAGAIN) is normal.
bool Worker::resume_parked()
{
    auto got = handoff::receive_parcel(c_.ready);
    if (!got && errno == EPIPE) {
        // The master and the parker are gone (the master holds the sending
        // end for any parker it will start): the queue stays readable at
        // EOF, so stop waiting on it, or the loop would spin.
        if (epoll_)
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c_.ready, nullptr);
        c_.ready = -1;
        g_quit = connection::kQuitGraceful;
    }
    if (!got)
        return false;
    resume(*got);
    return true;
}

// The listener travelled with the parcel; the client's address is the
// connection's own.
void Worker::resume(const handoff::Received& got)
{
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    ::getpeername(got.fd.get(), reinterpret_cast<sockaddr*>(&peer), &len);
    connection::Env env = make_env(int(got.parcel.listener), peer);
    // A TLS connection comes back with its ClientHello; one whose hello
    // missed the handshake deadline is closed (there is no one to tell).
    if (got.parcel.tls && c_.tls && got.parcel.kind == handoff::Kind::ready)
        handshake::serve(got.fd.get(), got.parcel.remote, got.parcel.bytes, got.parcel.since_ms,
                         *c_.tls, c_.settings, c_.sites, env);
    else if (!got.parcel.tls)
        connection::resume(got.fd.get(), got.parcel, c_.settings, c_.sites, env);
    scoreboard::set_state(slot_, scoreboard::State::idle);
}

// A full park queue (the parker is behind, or gone) keeps the connection
// here, as if parking were off: nothing is lost, a worker is only held.
bool Worker::park(int fd, handoff::Parcel& parcel)
{
    return handoff::send_parcel(c_.park, fd, parcel);
}

// Told to quit while busy: stop holding the listeners at once, so that once
// the master and the other workers have let go, new connections are refused
// instead of waiting in a backlog nobody will accept from.
void Worker::close_listeners()
{
    epoll_.reset();
    for (int fd : c_.listeners)
        ::close(fd);
    c_.listeners.clear();
}

bool Worker::logging() const
{
    return c_.log_mode != access_log::Mode::off || !c_.site_logs.empty();
}

// A reopen since the last look: take the new descriptors in place of the
// old ones, so every buffered line goes to the new files.
void Worker::refresh_log_fds()
{
    std::uint32_t epoch = c_.board->log_epoch.load(std::memory_order_acquire);
    if (epoch == c_.log_epoch)
        return;
    for (const access_log::Received& r : access_log::receive_fds(c_.channel)) {
        if (r.sink < sinks_.size() && sinks_[r.sink].fd >= 0)
            ::dup2(r.fd, sinks_[r.sink].fd);
        ::close(r.fd);
    }
    c_.log_epoch = epoch;
}

// Lines are gathered in a buffer per log and written whole, many per
// write(2): when the buffers hold log_buffer bytes, when the oldest line is
// log_flush_seconds old (the timer's signal interrupts any wait), and
// before the worker exits.
void Worker::write_log(const access_log::Entry& e)
{
    bool site_log = e.sink > 0 && std::size_t(e.sink) < sinks_.size();
    if (e.sink < 0 || (!site_log && c_.log_mode == access_log::Mode::off))
        return;
    if (!site_log && c_.log_mode == access_log::Mode::syslog) {
        std::string line = access_log::format(e, c_.log_format);
        line.pop_back();
        ::syslog(c_.log_priority, "%s", line.c_str());
        return;
    }
    Sink& sink = sinks_[site_log ? std::size_t(e.sink) : 0];
    bool was_empty = pending_bytes_ == 0;
    std::size_t before = sink.pending.size();
    access_log::append(sink.pending, e, sink.format);
    pending_bytes_ += sink.pending.size() - before;
    if (pending_bytes_ >= c_.log_buffer)
        flush_log();
    else if (was_empty)
        set_flush_timer(c_.log_flush_seconds);
}

// The flush timer's signal only records that the buffer is due; the write
// happens here, outside the handler, before the worker's next wait.
void Worker::flush_log_if_due()
{
    if (g_flush_due)
        flush_log();
}

void Worker::flush_log()
{
    g_flush_due = 0;
    if (pending_bytes_ == 0)
        return;
    if (c_.log_buffer > 0)
        set_flush_timer(0);
    // A reopen since the last write: these lines go to the new files, so
    // the renamed ones stop growing once the reopen is done.
    refresh_log_fds();
    for (Sink& sink : sinks_) {
        if (!sink.pending.empty())
            write_lines(sink);
        sink.pending.clear();
    }
    pending_bytes_ = 0;
}

// One write(2) of whole lines on an O_APPEND file: lines of concurrent
// workers never interleave.  A failed write (disk full) must not fail the
// request; it is said once a minute, and the recovery once.
void Worker::write_lines(Sink& sink)
{
    ssize_t n = ::write(sink.fd, sink.pending.data(), sink.pending.size());
    if (n >= 0 && std::size_t(n) < sink.pending.size()) {
        take_back(sink.fd, n);
        n = -1;
        errno = ENOSPC;
    }
    std::int64_t now = scoreboard::now_ms();
    if (n < 0) {
        if (!sink.failing || now - sink.failure_said_ms >= 60000) {
            log::err(sys_message("write", sink.path, errno) + "; access log lines are being lost");
            sink.failure_said_ms = now;
        }
        sink.failing = true;
    } else if (sink.failing) {
        log::notice("access log " + sink.path + " is writable again");
        sink.failing = false;
    }
}

}  // namespace

long jittered_limit(long max_requests, unsigned seed) noexcept
{
    if (max_requests <= 0)
        return 0;
    long spread = max_requests / 10;
    if (spread == 0)
        return max_requests;
    // A cheap integer hash of the pid: enough to spread recycling out.
    unsigned h = seed * 2654435761u;
    return max_requests - long(h % unsigned(spread + 1));
}

void run(Context& context)
{
    Worker w(context);
    try {
        w.start();
    } catch (const std::exception& e) {
        scoreboard::set_text(context.board->slots[context.slot].note, e.what());
        log::err(std::string("worker could not start: ") + e.what());
        ::_exit(3);
    }
    int status = 0;
    try {
        w.loop();
    } catch (const std::exception& e) {
        log::err(std::string("worker failed: ") + e.what());
        status = 1;
    }
    w.flush_log();
    ::_exit(status);
}

}  // namespace preforkd::worker
