// test_daemon.cpp - the classic daemon: without -f the launcher returns once
// the server is up and the master writes its pid file; a second start is
// refused; `preforkd -s stop` stops it.  Started as root, workers drop to
// the configured user and group.
#include <criterion/criterion.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "harness.hpp"

using namespace itest;

TestSuite(daemon, .init = setup, .fini = cleanup, .timeout = 60);

Test(daemon, daemonizes_writes_pid_file_refuses_second_start_stops, .timeout = 40) {
    Options o;
    Daemon d = Daemon::prepare(o);
    std::string sock = d.path("http.sock");
    o.listen = {"unix:" + sock};
    d.write_config(o);

    RunResult launch = run({daemon_binary(), "-c", d.conf}, d.dir);
    D_ASSERT(d, launch.status == 0, "launcher exited %d: stderr '%s'", launch.status,
             launch.err.c_str());
    // The launcher returns once the server is up: the pid file is there now.
    D_ASSERT(d, file_exists(d.pid_file), "no pid file %s when the launcher exited",
             d.pid_file.c_str());
    pid_t master = static_cast<pid_t>(std::atol(read_file(d.pid_file).c_str()));
    track(master);
    D_ASSERT(d, master > 0 && !is_gone(master), "pid file says '%s', not a live process",
             read_file(d.pid_file).c_str());
    std::string title = cmdline_of(master);
    D_ASSERT(d, title.find("preforkd") != std::string::npos && title.find("worker") == std::string::npos,
             "pid %d from the pid file is not the master: '%s'", master, title.c_str());
    D_ASSERT(d, !children_of(master).empty(), "the master has no workers");
    Response r = http_get_unix(sock, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200 && r.body == "hello from preforkd\n",
             "GET over unix:%s: %s '%s'", sock.c_str(), r.error.c_str(), r.status_line.c_str());

    RunResult second = run({daemon_binary(), "-c", d.conf}, d.dir);
    D_ASSERT(d, second.status == 1, "second start exited %d, want 1 (stderr '%s')", second.status,
             second.err.c_str());
    D_ASSERT(d, second.err.find(std::to_string(master)) != std::string::npos,
             "second start's message does not name the running pid %d: '%s'", master,
             second.err.c_str());
    D_ASSERT(d, !is_gone(master), "the second start killed the running master");
    D_ASSERT(d, std::atol(read_file(d.pid_file).c_str()) == master,
             "the second start rewrote the pid file: '%s'", read_file(d.pid_file).c_str());
    Response still = http_get_unix(sock, "/x.txt");
    D_ASSERT(d, still.ok && still.status == 200, "GET after the refused second start: %s",
             still.error.c_str());

    RunResult stop = run({daemon_binary(), "-s", "stop", "-c", d.conf}, d.dir);
    D_ASSERT(d, stop.status == 0, "preforkd -s stop exited %d: '%s'", stop.status,
             stop.err.c_str());
    int status = wait_exit(master, 5s);
    D_ASSERT(d, status != -1, "master %d still running 5 s after -s stop", master);
    D_ASSERT(d, status == 0 || status == -2, "master exit status %d after -s stop", status);
    D_ASSERT(d, wait_until([&] { return !file_exists(d.pid_file); }, 2s),
             "pid file %s not removed after -s stop", d.pid_file.c_str());
    NO_SANITIZER_REPORTS();
}

Test(daemon, launcher_fails_with_reason_when_it_cannot_start, .timeout = 30) {
    Options o;
    o.root = "no-such-dir";
    Daemon d = Daemon::prepare(o);
    RunResult launch = run({daemon_binary(), "-c", d.conf}, d.dir);
    D_ASSERT(d, launch.status == 1, "launcher with a missing root exited %d, want 1",
             launch.status);
    D_ASSERT(d, launch.err.find("no-such-dir") != std::string::npos,
             "launcher's stderr does not say what is wrong: '%s'", launch.err.c_str());
    D_ASSERT(d, !file_exists(d.pid_file), "pid file written by a failed start");
    NO_SANITIZER_REPORTS();
}

Test(daemon, workers_run_as_the_configured_user, .timeout = 30) {
    if (geteuid() != 0) cr_skip("needs root to drop privileges");
    passwd* pw = getpwnam("nobody");
    group* gr = getgrnam("nogroup");
    if (pw == nullptr || gr == nullptr) cr_skip("no nobody/nogroup on this system");
    std::string uid = std::to_string(pw->pw_uid), gid = std::to_string(gr->gr_gid);

    Options o;
    o.extra = "user = \"nobody\";\ngroup = \"nogroup\";\n";
    Daemon d = Daemon::prepare(o);
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, d.wait_workers(2), "want 2 workers, have %s", join(d.workers()).c_str());
    for (pid_t w : d.workers()) {
        std::string uids = proc_status_field(w, "Uid"), gids = proc_status_field(w, "Gid");
        std::string want_u = uid + "\t" + uid + "\t" + uid + "\t" + uid;
        std::string want_g = gid + "\t" + gid + "\t" + gid + "\t" + gid;
        D_ASSERT(d, uids == want_u, "worker %d Uid: '%s', want all %s", w, uids.c_str(),
                 uid.c_str());
        D_ASSERT(d, gids == want_g, "worker %d Gid: '%s', want all %s", w, gids.c_str(),
                 gid.c_str());
        std::string groups = " " + proc_status_field(w, "Groups") + " ";
        D_ASSERT(d, groups.find(" 0 ") == std::string::npos,
                 "worker %d kept root's supplementary group: Groups:%s", w, groups.c_str());
    }
    std::string master_uid = proc_status_field(d.pid, "Uid");
    D_ASSERT(d, master_uid.rfind("0\t", 0) == 0, "master Uid: '%s', want root", master_uid.c_str());
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200 && r.body == "hello from preforkd\n",
             "GET served by an unprivileged worker: %s '%s'", r.error.c_str(),
             r.status_line.c_str());
    D_ASSERT(d, wait_until([&] { return !lines_of(read_file(d.path("access.log"))).empty(); }),
             "unprivileged worker wrote no access log line");
    NO_SANITIZER_REPORTS();
}
