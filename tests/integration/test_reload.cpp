// test_reload.cpp - SIGHUP: a changed configuration takes effect with a new
// generation of workers; a broken one is refused and the running one keeps
// serving untouched; a new listener is served and unchanged ones keep their
// socket.
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "harness.hpp"

using namespace itest;

TestSuite(reload, .init = setup, .fini = cleanup, .timeout = 60);

namespace {

std::string listening_inode(int port) { return tcp_inode(port, 0, "0A"); }

std::vector<pid_t> sorted(std::vector<pid_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

Test(reload, hup_with_new_root_serves_it_and_retires_old_workers, .timeout = 40) {
    Daemon d = Daemon::prepare();
    make_dir(d.path("www2"));
    write_file(d.path("www2/x.txt"), "from the second root\n");
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());
    auto old_workers = d.workers();
    Response before = http_get(d.port, "/x.txt");
    D_ASSERT(d, before.ok && before.body == "hello from preforkd\n", "GET before reload: %s '%s'",
             before.error.c_str(), before.body.c_str());

    Options o = d.opts;
    o.root = "www2";
    d.write_config(o);
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, d.wait_log("received SIGHUP, reloading").has_value(),
             "no log line 'received SIGHUP, reloading'");
    D_ASSERT(d, d.wait_log("ready: generation 2").has_value(), "no log line 'ready: generation 2'");
    D_ASSERT(d, d.wait_log("reload: generation 1 retired").has_value(),
             "no log line 'reload: generation 1 retired'");

    Response after = http_get(d.port, "/x.txt");
    D_ASSERT(d, after.ok && after.status == 200, "GET after reload: %s '%s'", after.error.c_str(),
             after.status_line.c_str());
    D_ASSERT(d, after.body == "from the second root\n", "after reload GET /x.txt gave '%s'",
             after.body.c_str());
    for (pid_t w : old_workers) {
        D_ASSERT(d, is_gone(w), "old worker %d still alive after 'generation 1 retired'", w);
    }
    auto now = d.workers();
    D_ASSERT(d, !now.empty(), "no workers after the reload");
    D_ASSERT(d, d.count_log("reload failed") == 0, "reload reported a failure");
    NO_SANITIZER_REPORTS();
}

Test(reload, hup_with_broken_config_keeps_serving, .timeout = 40) {
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());
    auto before = sorted(d.workers());

    // Line 3 is broken: a syntax error.
    d.write_config_text("pid_file = \"preforkd.pid\";\n"
                        "listen = ( \"127.0.0.1:0\" );\n"
                        "workers = { start = ; };\n"
                        "http = { root = \"www\"; };\n");
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    auto line = d.wait_log("reload failed, keeping the running configuration");
    D_ASSERT(d, line.has_value(), "no log line 'reload failed, keeping the running configuration'");
    D_ASSERT(d, line->find("preforkd.conf:3") != std::string::npos,
             "the reason does not name preforkd.conf:3: '%s'", line->c_str());

    auto after = sorted(d.workers());
    D_ASSERT(d, after == before, "workers changed on a failed reload: %s -> %s",
             join(before).c_str(), join(after).c_str());
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200 && r.body == "hello from preforkd\n",
             "GET after a failed reload: %s '%s'", r.error.c_str(), r.status_line.c_str());
    D_ASSERT(d, d.count_log("ready: generation 2") == 0, "a failed reload started generation 2");
    D_ASSERT(d, !is_gone(d.pid), "master died");

    // A semantic error (unknown key) is refused the same way, with its line.
    d.write_config_text(config_text(d.opts) + "bogus_key = 1;\n");
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    bool second = wait_until([&] { return d.count_log("reload failed") >= 2; });
    D_ASSERT(d, second, "no second 'reload failed' line for an unknown key");
    D_ASSERT(d, d.count_log("preforkd.conf:6") >= 1,
             "the unknown key on line 6 is not reported as preforkd.conf:6");
    D_ASSERT(d, sorted(d.workers()) == before, "workers changed on a failed reload");
    Response again = http_get(d.port, "/x.txt");
    D_ASSERT(d, again.ok && again.status == 200, "GET after the second failed reload: %s",
             again.error.c_str());
    NO_SANITIZER_REPORTS();
}

Test(reload, hup_adding_a_listener_serves_it_and_keeps_the_old_socket, .timeout = 40) {
    Options o;
    int port = free_port();
    cr_assert(port > 0, "no free port");
    o.listen = {"127.0.0.1:" + std::to_string(port)};
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.port == port, "log says port %d, configured %d", d.port, port);
    std::string inode = listening_inode(port);
    D_ASSERT(d, !inode.empty(), "nothing listens on 127.0.0.1:%d", port);
    int fd_before = fd_of_socket(d.pid, inode);
    D_ASSERT(d, fd_before >= 0, "the master holds no descriptor for the listening socket");

    std::string sock = d.path("http.sock");
    o.listen.push_back("unix:" + sock);
    d.write_config(o);
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, d.wait_log("listening on unix:" + sock).has_value(),
             "no log line 'listening on unix:%s'", sock.c_str());
    D_ASSERT(d, d.wait_log("ready: generation 2").has_value(), "no log line 'ready: generation 2'");

    Response viaunix = http_get_unix(sock, "/x.txt");
    D_ASSERT(d, viaunix.ok && viaunix.status == 200 && viaunix.body == "hello from preforkd\n",
             "GET over the new unix listener: %s '%s'", viaunix.error.c_str(),
             viaunix.status_line.c_str());
    Response viatcp = http_get(port, "/x.txt");
    D_ASSERT(d, viatcp.ok && viatcp.status == 200, "GET over the old TCP listener: %s",
             viatcp.error.c_str());
    D_ASSERT(d, listening_inode(port) == inode,
             "the unchanged listener 127.0.0.1:%d was re-created (socket inode %s -> %s)", port,
             inode.c_str(), listening_inode(port).c_str());
    D_ASSERT(d, fd_of_socket(d.pid, inode) == fd_before,
             "the unchanged listener moved from fd %d to fd %d", fd_before,
             fd_of_socket(d.pid, inode));
    NO_SANITIZER_REPORTS();
}

Test(reload, signal_reload_reports_a_rejected_config, .timeout = 40) {
    // DESIGN.md 7.1: `preforkd -s reload` waits and exits non-zero with the
    // reason when the new configuration was rejected.
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, wait_until([&] { return file_exists(d.pid_file); }), "no pid file");
    d.write_config_text(config_text(d.opts) + "workers.max = ;\n");
    RunResult r = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir);
    D_ASSERT(d, r.status != 0, "preforkd -s reload of a broken config exited 0 (stderr '%s')",
             r.err.c_str());
    D_ASSERT(d, r.err.find("preforkd.conf:6") != std::string::npos,
             "preforkd -s reload does not give the reason: stderr '%s'", r.err.c_str());
    Response ok = http_get(d.port, "/x.txt");
    D_ASSERT(d, ok.ok && ok.status == 200, "GET after the rejected reload: %s", ok.error.c_str());

    d.write_config(d.opts);
    RunResult good = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir);
    D_ASSERT(d, good.status == 0, "preforkd -s reload of a good config exited %d: '%s'",
             good.status, good.err.c_str());
    D_ASSERT(d, d.wait_log("ready: generation 2").has_value(), "no 'ready: generation 2'");
    NO_SANITIZER_REPORTS();
}

// A configuration that parses but that the master cannot apply (a new listen
// address already taken): only the master knows, and -s reload waits for
// its answer.
Test(reload, signal_reload_waits_for_the_masters_verdict, .timeout = 40) {
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, wait_until([&] { return file_exists(d.pid_file); }), "no pid file");
    RunResult good = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir);
    D_ASSERT(d, good.status == 0 && good.out.find("generation 2 started") != std::string::npos,
             "-s reload of an unchanged config: exit %d, stdout '%s', stderr '%s'", good.status,
             good.out.c_str(), good.err.c_str());

    int taken = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    D_ASSERT(d, taken >= 0 && bind(taken, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                    listen(taken, 1) == 0 &&
                    getsockname(taken, reinterpret_cast<sockaddr*>(&a), &len) == 0,
             "could not hold a port: %s", strerror(errno));
    int port = ntohs(a.sin_port);
    Options o = d.opts;
    o.listen = {"127.0.0.1:0", format("127.0.0.1:%d", port)};
    d.write_config(o);
    RunResult bad = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir);
    ::close(taken);
    std::string reason = format("bind(127.0.0.1:%d) failed: Address already in use", port);
    D_ASSERT(d, bad.status == 1 && bad.err.find(reason) != std::string::npos,
             "-s reload with a taken address: exit %d, stderr '%s', want 1 and '%s'", bad.status,
             bad.err.c_str(), reason.c_str());
    D_ASSERT(d, d.count_log("reload failed, keeping the running configuration") == 1,
             "want one 'reload failed' line in the log");
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after the rejected reload: %s", r.error.c_str());
    NO_SANITIZER_REPORTS();
}

Test(reload, no_request_fails_during_a_reload, .timeout = 40) {
    // DESIGN.md 7.3: zero refused or reset connections during a reload.
    Daemon d = Daemon::prepare();
    make_dir(d.path("www2"));
    write_file(d.path("www2/x.txt"), "from the second root\n");
    D_ASSERT(d, d.start(), "daemon did not become ready");
    Options o = d.opts;
    o.root = "www2";
    d.write_config(o);

    int sent = 0, failed = 0, after_retired = 0;
    std::string first_failure;
    bool hup_sent = false;
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (after_retired < 50 && std::chrono::steady_clock::now() < deadline) {
        Response r = http_get(d.port, "/x.txt");
        ++sent;
        if (!r.ok || r.status != 200) {
            if (failed++ == 0) first_failure = r.ok ? r.status_line : r.error;
        }
        if (sent == 20 && !hup_sent) hup_sent = d.signal(SIGHUP);
        if (hup_sent && d.count_log("reload: generation 1 retired") > 0) ++after_retired;
    }
    D_ASSERT(d, hup_sent, "kill -HUP failed");
    D_ASSERT(d, after_retired >= 50, "the reload did not complete ('generation 1 retired')");
    D_ASSERT(d, failed == 0, "%d of %d requests failed during the reload; first: %s", failed, sent,
             first_failure.c_str());
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.body == "from the second root\n", "new root not served after the reload");
    NO_SANITIZER_REPORTS();
}

Test(reload, workers_that_cannot_start_are_rolled_back, .timeout = 60) {
    // Issue 13: a reload whose workers keep dying at start-up returns to the
    // configuration the master kept.  The jail exists, so the check (made
    // from outside it) passes, but it does not contain the root, so every
    // worker of the new generation refuses to start.
    Daemon d = Daemon::prepare();
    make_dir(d.path("jail"));
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());
    Options kept = d.opts, o = d.opts;
    o.extra = "chroot = \"" + d.path("jail") + "\";\n";
    d.write_config(o);

    std::string out = d.path("reload.out");
    pid_t reloader = spawn({daemon_binary(), "-s", "reload", "-c", d.conf}, out);
    D_ASSERT(d, reloader > 0, "could not run preforkd -s reload");
    int sent = 0, failed = 0;
    std::string first_failure;
    auto deadline = std::chrono::steady_clock::now() + 40s;
    // Requests while the reload runs, and a few after its verdict.
    int after = 0;
    while (after < 20 && std::chrono::steady_clock::now() < deadline) {
        Response r = http_get(d.port, "/x.txt");
        ++sent;
        if (!r.ok || r.status != 200 || r.body != "hello from preforkd\n") {
            if (failed++ == 0) first_failure = r.ok ? r.status_line : r.error;
        }
        if (is_gone(reloader)) ++after;
    }
    int status = wait_exit(reloader, 10s);
    std::string verdict = read_file(out);
    D_ASSERT(d, status == 1, "-s reload exited %d, want 1; said '%s'", status, verdict.c_str());
    D_ASSERT(d, verdict.find("rolled back: ") != std::string::npos &&
                    verdict.find("generation 1 serves the previous configuration") != std::string::npos,
             "-s reload does not report the rollback: '%s'", verdict.c_str());
    D_ASSERT(d, verdict.find("inside chroot") != std::string::npos,
             "-s reload does not say why the workers could not start: '%s'", verdict.c_str());
    D_ASSERT(d, failed == 0, "%d of %d requests failed during the rollback; first: %s", failed,
             sent, first_failure.c_str());
    D_ASSERT(d, d.count_log("reload rolled back: the workers of generation 2 could not start") == 1,
             "no 'reload rolled back' line in the log");

    RunResult st = run({daemon_binary(), "-s", "status", "--json", "-c", d.conf}, d.dir);
    D_ASSERT(d, st.status == 0 && st.out.find("\"generation\":1,") != std::string::npos,
             "-s status after the rollback: exit %d, '%s'", st.status, st.out.c_str());
    bool only_old = wait_until([&] {
        RunResult s = run({daemon_binary(), "-s", "status", "-c", d.conf}, d.dir);
        return s.status == 0 && s.out.find("generation: 1\n") != std::string::npos &&
               s.out.find("draining") == std::string::npos;
    });
    RunResult text = run({daemon_binary(), "-s", "status", "-c", d.conf}, d.dir);
    D_ASSERT(d, only_old, "generation 2 still listed after the rollback: '%s'", text.out.c_str());

    // The kept configuration is the running one: a later reload to a good
    // file works, and takes the next generation number.
    d.write_config(kept);
    RunResult good = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir);
    D_ASSERT(d, good.status == 0 && good.out.find("generation 3 started") != std::string::npos,
             "-s reload to a good configuration after the rollback: exit %d, '%s' '%s'",
             good.status, good.out.c_str(), good.err.c_str());
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after the second reload: %s", r.error.c_str());
    NO_SANITIZER_REPORTS();
}
