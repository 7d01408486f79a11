// numbers.hpp - the measured scenarios of issue 11 (connection parking):
// slow clients, an idle keep-alive crowd beside wrk, and the memory of the
// process tree, for `make stress` only (tests/stress/test_parking.cpp).
//
// The helpers here measure; the tests decide what to assert.  A probe is a
// normal client that asks for /x.txt on a fresh connection every 100 ms and
// records its latency; the crowd is one epoll loop holding thousands of
// keep-alive connections, each sending a request every few seconds.  nginx,
// where installed, is started on loopback with a generated configuration as
// the reference, as tests/bench/run does.  Every loop is bounded in time and
// every process is started through the harness (killed and reaped by pid).
#pragma once

#include <sys/epoll.h>

#include <cmath>
#include <functional>
#include <queue>

#include "reliability.hpp"

namespace num {

using namespace itest;
using namespace rel;

// ---- a probing client ------------------------------------------------------------

struct ProbeStats {
    long probes = 0, failed = 0;
    long p50_ms = 0, p99_ms = 0, max_ms = 0;
    std::string first_failure;
};

// A loopback connection made within `timeout` (a full accept queue makes a
// blocking connect wait for SYN retries); -1 otherwise.  Blocking again once
// connected.
[[maybe_unused]] static int connect_within(int port, Duration timeout)
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    if (rc < 0 && errno == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1 &&
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
            rc = 0;
        else
            errno = err != 0 ? err : ETIMEDOUT;
    }
    if (rc < 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

// Fetches /x.txt on a fresh connection every `interval` until stop; a probe
// fails when no 200 arrives within `timeout` of its connect, or the connect
// takes longer than that.  Latency includes the connect.
struct Probe {
    std::atomic<bool> stop{false};
    std::thread th;
    std::vector<long> lat;
    ProbeStats s;

    void start(int port, Duration interval = 100ms, Duration timeout = 3s)
    {
        th = std::thread([this, port, interval, timeout] {
            while (!stop && s.probes < 100000) {
                auto t0 = Clock::now();
                int fd = connect_within(port, timeout);
                Response r;
                if (fd >= 0 && send_all(fd, request("GET", "/x.txt", false))) {
                    std::string buf;
                    r = read_response(fd, buf, false, timeout);
                } else {
                    r.error = std::string("connect/send: ") + strerror(errno);
                }
                if (fd >= 0) ::close(fd);
                long ms = ms_since(t0);
                ++s.probes;
                lat.push_back(ms);
                if (!r.ok || r.status != 200) {
                    if (s.failed++ == 0) s.first_failure = format("after %ld ms: %s", ms, r.ok ? r.status_line.c_str() : r.error.c_str());
                }
                auto next = t0 + interval;
                while (!stop && Clock::now() < next) nap(5ms);
            }
        });
    }

    ProbeStats finish()
    {
        stop = true;
        th.join();
        std::sort(lat.begin(), lat.end());
        auto pct = [&](double p) {
            if (lat.empty()) return 0L;
            size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(lat.size()))) - 1;
            return lat[std::min(i, lat.size() - 1)];
        };
        s.p50_ms = pct(0.50);
        s.p99_ms = pct(0.99);
        s.max_ms = lat.empty() ? 0 : lat.back();
        return s;
    }
};

// ---- nginx as the reference ----------------------------------------------------------

[[maybe_unused]] static std::string nginx_binary()
{
    for (const char* p : {"/usr/sbin/nginx", "/usr/bin/nginx"})
        if (access(p, X_OK) == 0) return p;
    return "";
}

// Starts nginx in the foreground on a free loopback port serving d's www
// directory (two workers, as many connections as the test needs); returns
// its port, or -1 when nginx is not installed or did not answer.
[[maybe_unused]] static int start_nginx(const Daemon& d, int keepalive_timeout = 15)
{
    std::string bin = nginx_binary();
    if (bin.empty()) return -1;
    int port = free_port();
    std::string dir = d.path("nginx");
    make_dir(dir);
    write_file(dir + "/nginx.conf", format(R"(daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile 20000;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 12000; }
http {
    default_type text/plain;
    access_log off;
    keepalive_timeout %d;
    keepalive_requests 100000;
    client_body_temp_path %s/body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    server { listen 127.0.0.1:%d backlog=4096; root %s; }
}
)", dir.c_str(), dir.c_str(), keepalive_timeout, dir.c_str(), dir.c_str(), dir.c_str(), dir.c_str(),
                                           dir.c_str(), port, d.path("www").c_str()));
    pid_t pid = spawn({bin, "-e", dir + "/error.log", "-c", dir + "/nginx.conf"}, dir + "/out.log");
    if (pid < 0) return -1;
    bool up = wait_until([&] {
        Response r = http_get(port, "/x.txt");
        return (r.ok && r.status == 200) || is_gone(pid);
    });
    return up && !is_gone(pid) ? port : -1;
}

// ---- slowhttptest ---------------------------------------------------------------------

struct SlowResult {
    bool finished = false;
    int rows = 0, unavailable = 0;
    long max_connected = 0;
    std::string first_unavailable, exit_line, output;
};

// One slowhttptest run against 127.0.0.1:port: mode "-H" (slowloris), "-B"
// (slow body) or "-X" (slow read), `conns` connections opened at 200 a
// second, for `seconds`.  The CSV says, per second, whether slowhttptest's
// own probe got an answer.
[[maybe_unused]] static SlowResult run_slowhttptest(const Daemon& d, const std::string& tag, int port,
                                                    const std::string& mode, int conns, int seconds)
{
    std::string url = "http://127.0.0.1:" + std::to_string(port) + (mode == "-X" ? "/big.bin" : "/x.txt");
    std::string out = d.path("slow-" + tag);
    std::vector<std::string> argv = {"/usr/bin/slowhttptest", mode, "-c", std::to_string(conns), "-r", "200",
                                     "-l", std::to_string(seconds), "-p", "3", "-g", "-o", out, "-u", url};
    if (mode == "-H") argv.insert(argv.end(), {"-i", "10", "-x", "24"});
    // Slow body as GET, as issue 11 ran it (a POST is refused with 405).
    if (mode == "-B") argv.insert(argv.end(), {"-i", "10", "-s", "8192", "-t", "GET", "-x", "24"});
    if (mode == "-X") argv.insert(argv.end(), {"-k", "2", "-n", "1", "-w", "512", "-y", "1024", "-z", "32"});
    RunResult r = run(argv, d.dir, Duration((seconds + 40) * 1000L));
    SlowResult s;
    s.finished = r.status != -1;
    s.output = r.out + r.err;
    for (const auto& line : lines_of(read_file(out + ".csv"))) {
        if (line.empty() || !std::isdigit(static_cast<unsigned char>(line[0]))) continue;
        // Seconds,Closed,Pending,Connected,Service Available
        std::vector<long> f;
        std::istringstream in(line);
        for (std::string x; std::getline(in, x, ',');) f.push_back(std::atol(x.c_str()));
        if (f.size() < 5) continue;
        ++s.rows;
        s.max_connected = std::max(s.max_connected, f[3]);
        if (f[4] == 0 && s.unavailable++ == 0) s.first_unavailable = line;
    }
    size_t at = s.output.find("Exit status:");
    s.exit_line = at == std::string::npos ? "(none)" : s.output.substr(at, s.output.find('\n', at) - at);
    return s;
}

// ---- memory -----------------------------------------------------------------------------

struct Mem {
    long rss_kb = 0, pss_kb = 0;
    int procs = 0;
};

[[maybe_unused]] static Mem smaps(const std::vector<pid_t>& pids)
{
    Mem m;
    for (pid_t p : pids) {
        std::string text = read_file("/proc/" + std::to_string(p) + "/smaps_rollup");
        if (text.empty()) continue;
        ++m.procs;
        for (const auto& line : lines_of(text)) {
            if (line.rfind("Rss:", 0) == 0) m.rss_kb += std::atol(line.c_str() + 4);
            if (line.rfind("Pss:", 0) == 0) m.pss_kb += std::atol(line.c_str() + 4);
        }
    }
    return m;
}

// ---- wrk ------------------------------------------------------------------------------------

struct WrkResult {
    double rps = 0;
    long errors = 0;       // socket errors + non-2xx/3xx
    std::string summary;
};

// wrk -t1 -c conns for `seconds` against /x.txt; keep-alive.
[[maybe_unused]] static WrkResult run_wrk(const Daemon& d, int port, int conns, int seconds)
{
    WrkResult w;
    if (access("/usr/bin/wrk", X_OK) != 0) return w;
    RunResult r = run({"/usr/bin/wrk", "-t1", "-c", std::to_string(conns), "-d", std::to_string(seconds) + "s",
                       "--timeout", "2s", "http://127.0.0.1:" + std::to_string(port) + "/x.txt"},
                      d.dir, Duration((seconds + 20) * 1000L));
    for (const auto& line : lines_of(r.out)) {
        if (line.rfind("Requests/sec:", 0) == 0) w.rps = std::atof(line.c_str() + 13);
        size_t at = line.find("Socket errors:");
        if (at != std::string::npos) {
            long a = 0, b = 0, c = 0, e = 0;
            std::sscanf(line.c_str() + at, "Socket errors: connect %ld, read %ld, write %ld, timeout %ld", &a, &b, &c, &e);
            w.errors += a + b + c + e;
        }
        at = line.find("Non-2xx or 3xx responses:");
        if (at != std::string::npos) w.errors += std::atol(line.c_str() + at + 25);
    }
    w.summary = format("%.0f req/s, %ld errors", w.rps, w.errors);
    return w;
}

// ---- the idle crowd ----------------------------------------------------------------------

struct CrowdStats {
    long connected = 0, connect_failed = 0, requests = 0, ok = 0, non200 = 0;
    long closed_by_server = 0, late = 0;   // late: no full answer within 5 s
    long longest_ms = 0;
    std::string first_failure;
};

// `n` keep-alive connections to 127.0.0.1:port held by one epoll loop; each
// sends GET /x.txt every `every` (staggered) and reads the answer.  Opened
// at most `rate` a second.  A connection the server closes is counted (never
// reopened): with every request well inside keepalive_timeout, none should
// be.  What is due (a request to send, an answer that is late) waits in two
// queues ordered by time, so the loop's work follows the requests, not the
// number of connections: a scan of all 10,000 after every wake-up took a
// core of the two this machine has from wrk and the server it measures.
struct Crowd {
    struct Conn {
        int fd = -1;
        bool connecting = true, waiting = false;
        Clock::time_point next, sent;
        std::string buf;
    };
    std::atomic<bool> stop{false};
    std::atomic<long> established{0}, answered{0};
    std::thread th;
    CrowdStats s;
    // (when, connection): sends due, and answers due by (sent + 5 s).
    using Due = std::pair<Clock::time_point, int>;
    std::priority_queue<Due, std::vector<Due>, std::greater<Due>> sends, deadlines;

    void start(int port, int n, Duration every, int rate = 2000)
    {
        th = std::thread([this, port, n, every, rate] { loop(port, n, every, rate); });
    }

    CrowdStats finish()
    {
        stop = true;
        th.join();
        return s;
    }

    void fail(const std::string& why)
    {
        if (s.first_failure.empty()) s.first_failure = why;
    }

    void loop(int port, int n, Duration every, int rate)
    {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        std::vector<Conn> conns(static_cast<size_t>(n));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<uint16_t>(port));
        const std::string req = "GET /x.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";
        auto t0 = Clock::now();
        int opened = 0;
        std::vector<epoll_event> evs(1024);
        auto close_conn = [&](Conn& c) {
            ::close(c.fd);
            c.fd = -1;
        };
        while (!stop) {
            auto now = Clock::now();
            // Open more, at `rate` a second.
            long due = std::min<long>(n, static_cast<long>(ms_since(t0)) * rate / 1000 + 1);
            while (opened < due) {
                Conn& c = conns[static_cast<size_t>(opened)];
                c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                int rc = c.fd < 0 ? -1 : ::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
                if (c.fd < 0 || (rc < 0 && errno != EINPROGRESS)) {
                    ++s.connect_failed;
                    fail(std::string("connect: ") + strerror(errno));
                    if (c.fd >= 0) close_conn(c);
                } else {
                    epoll_event e{};
                    e.events = EPOLLIN | EPOLLOUT;
                    e.data.u32 = static_cast<uint32_t>(opened);
                    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &e);
                    // Stagger the first requests over one period.
                    c.next = now + Duration(every.count() * opened / n);
                    sends.emplace(c.next, opened);
                }
                ++opened;
            }
            // Notice answers that are late; send what is due.
            while (!deadlines.empty() && deadlines.top().first <= now) {
                Conn& c = conns[static_cast<size_t>(deadlines.top().second)];
                Clock::time_point sent = deadlines.top().first - 5s;
                deadlines.pop();
                if (c.fd < 0 || !c.waiting || c.sent != sent) continue;   // answered
                ++s.late;
                fail("no answer within 5 s");
                close_conn(c);
            }
            while (!sends.empty() && sends.top().first <= now) {
                int i = sends.top().second;
                sends.pop();
                Conn& c = conns[static_cast<size_t>(i)];
                if (c.fd < 0) continue;
                if (c.connecting || c.waiting) {
                    sends.emplace(now + 10ms, i);   // as soon as it can, as before
                    continue;
                }
                if (::send(c.fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
                    ++s.closed_by_server;
                    fail(std::string("send: ") + strerror(errno));
                    close_conn(c);
                    continue;
                }
                ++s.requests;
                c.waiting = true;
                c.sent = now;
                c.next = now + every;
                sends.emplace(c.next, i);
                deadlines.emplace(now + 5s, i);
            }
            int k = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 10);
            for (int i = 0; i < k; ++i) on_event(conns[evs[static_cast<size_t>(i)].data.u32], evs[static_cast<size_t>(i)], ep);
        }
        for (Conn& c : conns)
            if (c.fd >= 0) ::close(c.fd);
        ::close(ep);
    }

    void on_event(Conn& c, const epoll_event& e, int ep)
    {
        if (c.fd < 0) return;
        if (c.connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                ++s.connect_failed;
                fail(std::string("connect: ") + strerror(err));
                ::close(c.fd);
                c.fd = -1;
                return;
            }
            c.connecting = false;
            ++s.connected;
            ++established;
            epoll_event m{};
            m.events = EPOLLIN;
            m.data = e.data;
            epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &m);
            return;
        }
        char tmp[4096];
        ssize_t got = ::recv(c.fd, tmp, sizeof tmp, 0);
        if (got <= 0) {
            if (got < 0 && errno == EAGAIN) return;
            ++s.closed_by_server;
            fail(c.waiting ? "closed with a request pending" : "closed while idle");
            ::close(c.fd);
            c.fd = -1;
            return;
        }
        c.buf.append(tmp, static_cast<size_t>(got));
        for (;;) {
            size_t end = c.buf.find("\r\n\r\n");
            if (end == std::string::npos) return;
            size_t cl = c.buf.find("Content-Length: ");
            if (cl == std::string::npos || cl > end) cl = c.buf.find("content-length: ");
            long body = cl == std::string::npos || cl > end ? 0 : std::atol(c.buf.c_str() + cl + 16);
            size_t total = end + 4 + static_cast<size_t>(body);
            if (c.buf.size() < total) return;
            if (c.buf.compare(0, 12, "HTTP/1.1 200") != 0) {
                ++s.non200;
                fail(c.buf.substr(0, c.buf.find("\r\n")));
            } else {
                ++s.ok;
                ++answered;
            }
            s.longest_ms = std::max(s.longest_ms, ms_since(c.sent));
            c.waiting = false;
            c.buf.erase(0, total);
        }
    }
};

}  // namespace num
