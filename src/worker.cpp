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
// for the master's log and lets the signal kill the worker.  Its access
// logs are a log_writer::Writer's (log_writer.hpp); the flush timer's
// SIGALRM only records here that the writer is due.
//
// Per-process state written after the fork is thread_local, not static,
// though every process has one thread: the caches written on every request
// (the Date text, the access log's time stamps, the request counter, the
// file cache), the wait mask, and what a child resets to forget the
// master's (tls/tickets.cpp, upgrade.cpp).  A worker writes its page of
// thread-local storage anyway, while each page of .data or .bss written
// after the fork becomes a private copy in each of hundreds of workers:
// written by the worker, or by the master, whose later writes leave every
// worker forked before them holding the old page alone.  The exception is
// what a signal handler touches (the flags below, signals.cpp,
// sandbox.cpp): C++ leaves a handler's access to a thread-local object
// undefined.  The same goes for the stack: every page a worker's deepest
// call ever reached stays its own, so the request path keeps no large
// arrays on the stack and formats no text with the printf family, whose
// frames run deep.
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
#include <unistd.h>

#include "preforkd/control.hpp"
#include "preforkd/handoff.hpp"
#include "preforkd/handshake.hpp"
#include "preforkd/log.hpp"
#include "preforkd/log_writer.hpp"
#include "preforkd/proctitle.hpp"
#include "preforkd/sandbox.hpp"
#include "preforkd/signals.hpp"
#include "preforkd/tls/proxy_socket.hpp"

namespace preforkd::worker {
namespace {

// Facts recorded by the signal handlers.  QUIT, TERM and ALRM are blocked
// except while the worker waits (g_wait_mask), so they land between
// requests, never in the middle of building or logging one.  Static, in
// .data (PREFORKD_HANDLER_STATE, signals.hpp).
PREFORKD_HANDLER_STATE volatile sig_atomic_t g_quit = 0;   // connection::kQuitGraceful or kQuitNow
PREFORKD_HANDLER_STATE volatile sig_atomic_t g_flush_due = 0;   // the access-log buffer is old enough
// The listener a blocking accept() is waiting on (-1 outside that wait), and
// a descriptor accept() fails on at once, for the handler to put in its
// place: the worker's channel to the master, a datagram socket.
volatile sig_atomic_t g_accept_fd = -1;
int g_not_listening = -1;
// No handler reads it: thread-local like the caches (see the top of this
// file).
thread_local sigset_t g_wait_mask;

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

void watch_master(pid_t master)
{
    ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
    // The master may have died between fork() and prctl().
    if (::getppid() != master)
        g_quit = connection::kQuitGraceful;
}

// Every listener, and the parker's ready queue if there is one: a new
// connection or a parked one that is ready wakes one idle worker.
Fd make_epoll(const std::vector<Fd>& listeners, int ready)
{
    Fd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (!ep)
        throw sys_error("epoll_create1");
    std::vector<int> all;
    for (const Fd& l : listeners)
        all.push_back(l.get());
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

// The address remote_name() wrote, back (without the port, which nothing
// after accept uses).  False for "unix" and anything else not numeric.
bool address_of(const std::string& text, sockaddr_storage& out)
{
    out = {};
    auto& in4 = reinterpret_cast<sockaddr_in&>(out);
    auto& in6 = reinterpret_cast<sockaddr_in6&>(out);
    if (inet_pton(AF_INET, text.c_str(), &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        return true;
    }
    return false;
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
    bool through_proxy(int fd, int listener, sockaddr_storage& client);
    bool resume_parked();
    void resume(const handoff::Received& got);
    void sweep();
    connection::Env make_env(int listener, const sockaddr_storage& peer);
    bool park(int fd, handoff::Parcel& parcel, int file);
    void count_idle(int delta);
    void open_log();
    void close_listeners();
    std::vector<std::string> readable_roots() const;
    void check_roots_in_jail() const;
    void confine();

    Context& c_;
    scoreboard::Slot& slot_;
    Fd epoll_;
    long served_ = 0;
    long limit_ = 0;
    log_writer::Writer log_;
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
    g_not_listening = c_.channel.get();
    if (c_.listeners.size() > 1 || c_.ready)
        epoll_ = make_epoll(c_.listeners, c_.ready.get());
    limit_ = jittered_limit(c_.max_requests, unsigned(::getpid()));
    open_log();
    confine();
}

// The writer takes the log descriptors over from the context: the main log
// first, then each site's at its sink number.
void Worker::open_log()
{
    std::vector<log_writer::Sink> sinks;
    sinks.push_back({std::move(c_.access_log), c_.access_log_path, c_.log_format});
    for (SiteLog& l : c_.site_logs)
        sinks.push_back({std::move(l.fd), l.path, l.format});
    log_writer::Settings settings{.mode = c_.log_mode,
                                  .format = c_.log_format,
                                  .syslog_priority = c_.log_priority,
                                  .buffer = c_.log_buffer,
                                  .flush_seconds = c_.log_flush_seconds};
    log_ = log_writer::Writer(settings, std::move(sinks),
                              {c_.channel.get(), &c_.board->log_epoch, c_.log_epoch});
}

// Every directory of this generation a request may read beneath: each
// site's root, and each location's root or alias.
std::vector<std::string> Worker::readable_roots() const
{
    return c_.sites->roots();
}

// The master checks the roots from outside the chroot, where a root the
// jail does not contain still exists; inside, every request would be a 404.
// A worker that cannot see its roots refuses to start instead, which makes
// a reload to such a configuration a crash loop that the master rolls back.
void Worker::check_roots_in_jail() const
{
    if (c_.identity.chroot.empty())
        return;
    for (const std::string& root : readable_roots()) {
        struct stat st;
        if (::stat(root.c_str(), &st) != 0)
            throw std::runtime_error(sys_message("stat", root, errno) + " inside chroot " +
                                     c_.identity.chroot);
        if (!S_ISDIR(st.st_mode))
            throw std::runtime_error(root + " inside chroot " + c_.identity.chroot +
                                     " is not a directory");
    }
}

// The last step before serving.  A mechanism the kernel lacks is said once
// for the whole pool (the board remembers), not once per worker.
void Worker::confine()
{
    check_roots_in_jail();
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
    count_idle(1);
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
            listener = c_.listeners.front().get();
        }
        if (listener < 0)
            continue;
        if (listener == c_.ready.get()) {
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
    count_idle(-1);
    scoreboard::set_state(slot_, scoreboard::State::draining);
    if (g_quit < connection::kQuitNow)
        sweep();
}

// The board's count of idle workers decides when idle keep-alive
// connections are parked, so it must follow the pool closely: each worker
// keeps it as it takes and finishes a connection.  The master's recount
// (every quarter of a second while workers are short) corrects any drift,
// as from a worker that died idle.
void Worker::count_idle(int delta)
{
    c_.board->idle_workers.fetch_add(delta, std::memory_order_relaxed);
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
    for (const Fd& l : c_.listeners) {
        int listener = l.get();
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
    while (c_.ready) {
        auto got = handoff::receive_parcel(c_.ready.get());
        if (!got)
            break;
        if (!stopping && got->parcel.kind == handoff::Kind::ready &&
            handoff::send_parcel(c_.park.get(), got->fd.get(), got->parcel))
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
int listener_index(const std::vector<Fd>& listeners, int fd)
{
    for (std::size_t i = 0; i < listeners.size(); ++i)
        if (listeners[i].get() == fd)
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
    if (log_.enabled())
        env.log = [this](const access_log::Entry& e) { log_.write(e); };
    env.on_quit = [this] { close_listeners(); };
    env.on_wait = [this] { flush_log_if_due(); };
    if (c_.park)
        env.park = [this](int fd, handoff::Parcel& p, int file) { return park(fd, p, file); };
    // A status location reads the shared scoreboard: memory, no system call.
    env.status = [board = c_.board](http::StatusFormat f) { return control::render_page(*board, f); };
    return env;
}

void Worker::serve(int fd, int listener, const sockaddr_storage& peer)
{
    count_idle(-1);
    int index = listener_index(c_.listeners, listener);
    sockaddr_storage client = peer;
    if (!through_proxy(fd, index, client))
        return;
    connection::Env env = make_env(index, client);
    if (c_.tls && c_.tls->on(env.listener))
        handshake::serve(fd, remote_name(client), {}, scoreboard::now_ms(), *c_.tls, c_.settings,
                         *c_.sites, env);
    else
        connection::serve(fd, remote_name(client), c_.settings, *c_.sites, env);
    ++served_;
    scoreboard::set_state(slot_, scoreboard::State::idle);
    count_idle(1);
}

// A connection the parker holds no longer: its head is complete.  Losing
// the race for it to another worker (EAGAIN) is normal.
bool Worker::resume_parked()
{
    auto got = handoff::receive_parcel(c_.ready.get());
    if (!got && errno == EPIPE) {
        // The master and the parker are gone (the master holds the sending
        // end for any parker it will start): the queue stays readable at
        // EOF, so stop waiting on it, or the loop would spin.
        if (epoll_)
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c_.ready.get(), nullptr);
        c_.ready.reset();
        g_quit = connection::kQuitGraceful;
    }
    if (!got)
        return false;
    resume(*got);
    return true;
}

// On a listener behind a proxy, the PROXY header names the client; without
// a good one from a trusted peer the connection is closed.  `listener` is
// the listener's index in the configuration.
bool Worker::through_proxy(int fd, int listener, sockaddr_storage& client)
{
    if (listener < 0 || std::size_t(listener) >= c_.listen_options.size() ||
        !c_.listen_options[std::size_t(listener)].proxy_protocol)
        return true;
    const config::ListenOptions& o = c_.listen_options[std::size_t(listener)];
    std::string why;
    if (!proxy::trusted(o.proxy_trusted, client)) {
        why = "connection from a peer outside proxy_trusted";
    } else {
        scoreboard::set_state(slot_, scoreboard::State::reading);
        proxy::Outcome got = proxy::receive(fd, client, c_.settings.header_timeout_ms,
                                            &g_wait_mask, &g_quit);
        if (got.ok) {
            client = got.client;
            return true;
        }
        why = got.error;
    }
    log::info(why + " (" + remote_name(client) + "); closing");
    scoreboard::set_state(slot_, scoreboard::State::idle);
    return false;
}

// The listener and the client's address travelled with the parcel: the
// address may be one a PROXY header gave, not the connection's peer.
void Worker::resume(const handoff::Received& got)
{
    sockaddr_storage peer{};
    if (!address_of(got.parcel.remote, peer)) {
        socklen_t len = sizeof peer;
        ::getpeername(got.fd.get(), reinterpret_cast<sockaddr*>(&peer), &len);
    }
    count_idle(-1);
    connection::Env env = make_env(int(got.parcel.listener), peer);
    // A TLS connection comes back with its ClientHello; one whose hello
    // missed the handshake deadline is closed (there is no one to tell).
    if (got.parcel.tls && c_.tls && got.parcel.kind == handoff::Kind::ready)
        handshake::serve(got.fd.get(), got.parcel.remote, got.parcel.bytes, got.parcel.since_ms,
                         *c_.tls, c_.settings, *c_.sites, env);
    else if (!got.parcel.tls)
        connection::resume(got.fd.get(), got.parcel, c_.settings, *c_.sites, env);
    scoreboard::set_state(slot_, scoreboard::State::idle);
    count_idle(1);
}

// A full park queue (the parker is behind, or gone) keeps the connection
// here, as if parking were off: nothing is lost, a worker is only held.
bool Worker::park(int fd, handoff::Parcel& parcel, int file)
{
    return handoff::send_parcel(c_.park.get(), fd, parcel, file);
}

// Told to quit while busy: stop holding the listeners at once, so that once
// the master and the other workers have let go, new connections are refused
// instead of waiting in a backlog nobody will accept from.
void Worker::close_listeners()
{
    epoll_.reset();
    c_.listeners.clear();
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
    log_.flush();
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
