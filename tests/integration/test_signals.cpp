// test_signals.cpp - the signals an administrator sends to the master:
// TERM (fast stop), QUIT (graceful stop), USR1 (reopen logs), WINCH (stop
// workers, keep the master), TTIN/TTOU (one worker more/fewer).
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "harness.hpp"

using namespace itest;

TestSuite(signals, .init = setup, .fini = cleanup, .timeout = 60);

Test(signals, term_stops_within_a_second, .timeout = 30) {
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());
    auto workers = d.workers();
    // A client holding a worker with half a request must not delay a fast stop.
    int slow = connect_tcp(d.port);
    D_ASSERT(d, slow >= 0 && send_all(slow, "GET /x.txt HTTP/1.1\r\n"), "slow client failed");
    bool pid_file_existed = wait_until([&] { return file_exists(d.pid_file); }, 2s);

    auto t0 = std::chrono::steady_clock::now();
    D_ASSERT(d, d.signal(SIGTERM), "kill -TERM failed");
    int status = wait_exit(d.pid, 10s);
    auto ms = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - t0).count();
    D_ASSERT(d, status != -1, "master still running 10 s after SIGTERM");
    D_ASSERT(d, ms < 1000, "master took %lld ms to exit after SIGTERM (want < 1000)",
             static_cast<long long>(ms));
    D_ASSERT(d, status == 0, "master exit status %d after SIGTERM, want 0", status);
    D_ASSERT(d, d.count_log("received SIGTERM, shutting down") == 1,
             "no log line 'received SIGTERM, shutting down'");
    D_ASSERT(d, d.count_log("exiting") >= 1, "no log line 'exiting'");
    D_ASSERT(d, pid_file_existed, "no pid file %s while running in the foreground",
             d.pid_file.c_str());
    D_ASSERT(d, !file_exists(d.pid_file), "pid file %s left behind after SIGTERM",
             d.pid_file.c_str());
    bool workers_gone = wait_until([&] {
        return std::all_of(workers.begin(), workers.end(), [](pid_t w) { return is_gone(w); });
    }, 2s);
    D_ASSERT(d, workers_gone, "workers %s outlived the master", join(workers).c_str());
    close(slow);
    NO_SANITIZER_REPORTS();
}

Test(signals, int_stops_like_term, .timeout = 30) {
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    auto t0 = std::chrono::steady_clock::now();
    D_ASSERT(d, d.signal(SIGINT), "kill -INT failed");
    int status = wait_exit(d.pid, 10s);
    auto ms = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - t0).count();
    D_ASSERT(d, status == 0, "master exit status %d after SIGINT, want 0 (-1 = still running)",
             status);
    D_ASSERT(d, ms < 1000, "master took %lld ms to exit after SIGINT (want < 1000)",
             static_cast<long long>(ms));
    D_ASSERT(d, d.count_log("received SIGINT") == 1, "no log line 'received SIGINT'");
    D_ASSERT(d, !file_exists(d.pid_file), "pid file left behind after SIGINT");
    NO_SANITIZER_REPORTS();
}

Test(signals, quit_lets_a_slow_download_finish, .timeout = 60) {
    Options o;
    o.graceful_timeout = 20;
    Daemon d = Daemon::prepare(o);
    const size_t size = 16u << 20;
    std::string big(size, '\0');
    for (size_t i = 0; i < size; ++i) big[i] = static_cast<char>('a' + (i * 7) % 26);
    write_file(d.path("www/big.bin"), big);
    D_ASSERT(d, d.start(), "daemon did not become ready");

    int fd = connect_tcp(d.port, 4096);
    D_ASSERT(d, fd >= 0, "connect failed");
    D_ASSERT(d, send_all(fd, request("GET", "/big.bin", false)), "send failed");
    std::string got;
    // Take the first MiB, then stop reading: the worker is stuck mid-body.
    while (got.size() < (1u << 20)) {
        auto chunk = recv_some(fd, 5s);
        D_ASSERT(d, chunk && !chunk->empty(), "download stalled at %zu bytes before QUIT",
                 got.size());
        got += *chunk;
    }
    D_ASSERT(d, d.signal(SIGQUIT), "kill -QUIT failed");
    D_ASSERT(d, d.wait_log("received SIGQUIT, shutting down gracefully").has_value(),
             "no log line 'received SIGQUIT, shutting down gracefully'");
    // Stay slow a little longer, so the worker has its QUIT while writing.
    wait_until([] { return false; }, 300ms);
    for (;;) {
        auto chunk = recv_some(fd, 10s);
        D_ASSERT(d, chunk.has_value(), "download stalled at %zu bytes after QUIT", got.size());
        if (chunk->empty()) break;
        got += *chunk;
    }
    close(fd);
    size_t hdr = got.find("\r\n\r\n");
    D_ASSERT(d, hdr != std::string::npos && got.rfind("HTTP/1.1 200", 0) == 0,
             "bad response: '%s'", got.substr(0, 200).c_str());
    size_t body = got.size() - hdr - 4;
    D_ASSERT(d, body == size, "download cut short by QUIT: %zu of %zu body bytes", body, size);
    D_ASSERT(d, got.compare(hdr + 4, size, big) == 0, "downloaded body differs from the file");

    int status = wait_exit(d.pid, 10s);
    D_ASSERT(d, status == 0, "master after QUIT: exit status %d (-1 = still running)", status);
    D_ASSERT(d, d.count_log("exiting") >= 1, "no log line 'exiting'");
    D_ASSERT(d, !file_exists(d.pid_file), "pid file left behind after QUIT");
    NO_SANITIZER_REPORTS();
}

Test(signals, usr1_reopens_the_access_log, .timeout = 40) {
    Daemon d = Daemon::prepare();
    write_file(d.path("www/before.txt"), "before\n");
    write_file(d.path("www/after.txt"), "after\n");
    D_ASSERT(d, d.start(), "daemon did not become ready");
    std::string access = d.path("access.log"), rotated = d.path("access.log.1");

    for (int i = 0; i < 3; ++i) {
        Response r = http_get(d.port, "/before.txt");
        D_ASSERT(d, r.ok && r.status == 200, "GET /before.txt: %s", r.error.c_str());
    }
    bool logged = wait_until([&] { return lines_of(read_file(access)).size() == 3; });
    D_ASSERT(d, logged, "access log has %zu lines after 3 requests, want 3:\n%s",
             lines_of(read_file(access)).size(), read_file(access).c_str());
    std::string first = lines_of(read_file(access)).front();
    D_ASSERT(d, first.find("\"GET /before.txt HTTP/1.1\" 200 7 ") != std::string::npos &&
                    first.find("\"preforkd-itest\"") != std::string::npos &&
                    first.rfind("127.0.0.1 ", 0) == 0,
             "not a combined log line: '%s'", first.c_str());

    D_ASSERT(d, rename(access.c_str(), rotated.c_str()) == 0, "rename failed");
    D_ASSERT(d, d.signal(SIGUSR1), "kill -USR1 failed");
    D_ASSERT(d, d.wait_log("received SIGUSR1, reopening logs").has_value(),
             "no log line 'received SIGUSR1, reopening logs'");
    D_ASSERT(d, wait_until([&] { return file_exists(access); }),
             "no new %s after USR1", access.c_str());

    for (int i = 0; i < 4; ++i) {
        Response r = http_get(d.port, "/after.txt");
        D_ASSERT(d, r.ok && r.status == 200, "GET /after.txt: %s", r.error.c_str());
    }
    bool moved = wait_until([&] { return lines_of(read_file(access)).size() == 4; });
    D_ASSERT(d, moved, "new access log has %zu lines after 4 requests, want 4:\n%s",
             lines_of(read_file(access)).size(), read_file(access).c_str());
    std::string fresh = read_file(access), old = read_file(rotated);
    D_ASSERT(d, fresh.find("/before.txt") == std::string::npos,
             "old requests in the new access log:\n%s", fresh.c_str());
    D_ASSERT(d, old.find("/after.txt") == std::string::npos,
             "requests after USR1 went to the rotated file:\n%s", old.c_str());
    D_ASSERT(d, lines_of(old).size() == 3, "rotated file has %zu lines, want 3",
             lines_of(old).size());
    NO_SANITIZER_REPORTS();
}

Test(signals, winch_stops_workers_keeps_master, .timeout = 40) {
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());
    D_ASSERT(d, d.signal(SIGWINCH), "kill -WINCH failed");
    D_ASSERT(d, d.wait_log("received SIGWINCH, stopping workers").has_value(),
             "no log line 'received SIGWINCH, stopping workers'");
    D_ASSERT(d, d.wait_workers(0), "workers still running after WINCH: %s",
             join(d.workers()).c_str());
    D_ASSERT(d, !is_gone(d.pid), "master exited after WINCH");

    // The master keeps its sockets but nobody serves: a request gets no answer.
    int fd = connect_tcp(d.port);
    if (fd >= 0) {
        send_all(fd, request("GET", "/x.txt", false));
        auto answer = recv_some(fd, 1s);
        D_ASSERT(d, !answer || answer->empty(), "got an answer with no workers: '%s'",
                 answer->substr(0, 100).c_str());
        close(fd);
    }
    D_ASSERT(d, d.workers().empty(), "workers came back after WINCH: %s",
             join(d.workers()).c_str());
    D_ASSERT(d, !is_gone(d.pid), "master exited after WINCH");
    NO_SANITIZER_REPORTS();
}

Test(signals, ttin_adds_a_worker_ttou_removes_one, .timeout = 40) {
    Options o{.start = 2, .min_spare = 2, .max_spare = 2};
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());

    D_ASSERT(d, d.signal(SIGTTIN), "kill -TTIN failed");
    D_ASSERT(d, d.wait_log("received SIGTTIN").has_value(), "no log line 'received SIGTTIN'");
    D_ASSERT(d, d.wait_workers(3), "after TTIN: %zu workers (%s), want 3", d.workers().size(),
             join(d.workers()).c_str());

    D_ASSERT(d, d.signal(SIGTTOU), "kill -TTOU failed");
    D_ASSERT(d, d.wait_log("received SIGTTOU").has_value(), "no log line 'received SIGTTOU'");
    D_ASSERT(d, d.wait_workers(2), "after TTOU: %zu workers (%s), want 2", d.workers().size(),
             join(d.workers()).c_str());
    NO_SANITIZER_REPORTS();
}
