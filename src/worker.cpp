// worker.cpp - the worker process.
//
// A worker waits on its own epoll set holding every listener with
// EPOLLEXCLUSIVE, so a new connection wakes one idle worker, not the whole
// pool; losing the accept() race to another worker (EAGAIN) is normal.  It
// serves one connection at a time.  SIGQUIT asks it to finish the current
// request and exit; the signal is blocked except while the worker waits, so
// the request in progress is never interrupted.  SIGTERM ends it at once.
// If the master dies, the kernel sends SIGQUIT (PR_SET_PDEATHSIG), so no
// orphan keeps serving an old configuration.
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
#include <syslog.h>
#include <unistd.h>

#include "preforkd/log.hpp"
#include "preforkd/proctitle.hpp"
#include "preforkd/signals.hpp"

namespace preforkd::worker {
namespace {

volatile sig_atomic_t g_quit = 0;
sigset_t g_wait_mask;

extern "C" void on_quit(int)
{
    g_quit = 1;
}

void setup_signals()
{
    signals::reset_for_child();
    struct sigaction sa {};
    sa.sa_handler = on_quit;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    // SIGINT too: Ctrl-C in a foreground run reaches the whole process group,
    // and the master ends its workers itself, after it has decided to stop.
    for (int s : {SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU, SIGPIPE, SIGXFSZ})
        sigaction(s, &sa, nullptr);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGQUIT);
    sigprocmask(SIG_BLOCK, &block, &g_wait_mask);
    sigdelset(&g_wait_mask, SIGQUIT);
}

void watch_master(pid_t master)
{
    ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
    // The master may have died between fork() and prctl().
    if (::getppid() != master)
        g_quit = 1;
}

Fd make_epoll(const std::vector<int>& listeners)
{
    Fd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (!ep)
        throw sys_error("epoll_create1");
    for (int fd : listeners) {
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

private:
    void accept_from(int listener);
    void write_log(const access_log::Entry& e);
    void refresh_log_fd();
    void close_listeners();

    Context& c_;
    scoreboard::Slot& slot_;
    Fd epoll_;
    long served_ = 0;
    long limit_ = 0;
    bool log_failing_ = false;
    std::int64_t log_failure_said_ms_ = 0;
};

void Worker::start()
{
    pid_t master = ::getppid();
    slot_.pid.store(::getpid());
    setup_signals();
    proctitle::set("preforkd: worker process");
    privileges::drop(c_.identity);
    // After the drop: changing credentials clears the parent-death signal.
    watch_master(master);
    epoll_ = make_epoll(c_.listeners);
    limit_ = jittered_limit(c_.max_requests, unsigned(::getpid()));
}

void Worker::loop()
{
    scoreboard::set_state(slot_, scoreboard::State::idle);
    while (!g_quit && (limit_ == 0 || served_ < limit_)) {
        epoll_event ev;
        int n = ::epoll_pwait(epoll_.get(), &ev, 1, -1, &g_wait_mask);
        if (n < 0 && errno != EINTR)
            throw sys_error("epoll_wait");
        if (n == 1 && !g_quit)
            accept_from(ev.data.fd);
    }
    scoreboard::set_state(slot_, scoreboard::State::draining);
}

void Worker::accept_from(int listener)
{
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    Fd conn(::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len,
                      SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            back_off_accept(errno);
        return;   // EAGAIN: another worker won the race; ECONNABORTED: gone
    }
    connection::Env env;
    env.slot = &slot_;
    env.board = c_.board;
    env.wait_mask = &g_wait_mask;
    env.quit = &g_quit;
    if (c_.log_mode != access_log::Mode::off)
        env.log = [this](const access_log::Entry& e) { write_log(e); };
    env.on_quit = [this] { close_listeners(); };
    connection::serve(conn.get(), remote_name(peer), c_.settings, c_.site, env);
    ++served_;
    scoreboard::set_state(slot_, scoreboard::State::idle);
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

void Worker::refresh_log_fd()
{
    std::uint32_t epoch = c_.board->log_epoch.load(std::memory_order_acquire);
    if (epoch == c_.log_epoch)
        return;
    int fd = access_log::receive_fd(c_.channel);
    if (fd >= 0) {
        ::dup2(fd, c_.access_log_fd);
        ::close(fd);
    }
    c_.log_epoch = epoch;
}

void Worker::write_log(const access_log::Entry& e)
{
    std::string line = access_log::format(e, c_.log_format);
    if (c_.log_mode == access_log::Mode::syslog) {
        line.pop_back();
        ::syslog(LOG_INFO, "%s", line.c_str());
        return;
    }
    refresh_log_fd();
    // One write(2) per line on an O_APPEND file: lines of concurrent workers
    // never interleave.  A failed write (disk full) must not fail the request;
    // it is said once a minute, and the recovery once.
    ssize_t n = ::write(c_.access_log_fd, line.data(), line.size());
    if (n >= 0 && std::size_t(n) < line.size()) {
        take_back(c_.access_log_fd, n);
        n = -1;
        errno = ENOSPC;
    }
    std::int64_t now = scoreboard::now_ms();
    if (n < 0) {
        if (!log_failing_ || now - log_failure_said_ms_ >= 60000) {
            log::err(sys_message("write", c_.access_log_path, errno) +
                     "; access log lines are being lost");
            log_failure_said_ms_ = now;
        }
        log_failing_ = true;
    } else if (log_failing_) {
        log::notice("access log " + c_.access_log_path + " is writable again");
        log_failing_ = false;
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
    try {
        w.loop();
    } catch (const std::exception& e) {
        log::err(std::string("worker failed: ") + e.what());
        ::_exit(1);
    }
    ::_exit(0);
}

}  // namespace preforkd::worker
