// test_control.cpp - what an administrator operating the running server
// sees and controls: who owns its unix sockets, what `preforkd -t` says of
// missing runtime directories, and the control socket (`-s status`,
// `-s status --json`, `-s reload`).
#include <criterion/criterion.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "harness.hpp"

using namespace itest;

TestSuite(control, .init = setup, .fini = cleanup, .timeout = 60);

namespace {

bool contains(const std::string& haystack, const std::string& needle)
{
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

// ---- unix socket owner and group ---------------------------------------------

Test(control, unix_sockets_get_the_configured_owner_and_group) {
    if (::geteuid() != 0)
        cr_skip_test("needs root to chown");
    const passwd* nobody = ::getpwnam("nobody");
    const group* nogroup = ::getgrnam("nogroup");
    cr_assert(nobody && nogroup, "the system has no nobody/nogroup");
    uid_t uid = nobody->pw_uid;
    gid_t gid = nogroup->gr_gid;
    Options o;
    Daemon d = Daemon::prepare(o);
    std::string sock = d.path("http.sock");
    o.listen = {"127.0.0.1:0", "unix:" + sock};
    o.extra = "unix_mode = \"0660\"; unix_owner = \"nobody\"; unix_group = \"nogroup\";";
    d.write_config(o);
    cr_assert(d.start(), "daemon did not start:\n%s", d.log_tail().c_str());
    struct stat st{};
    cr_assert_eq(::stat(sock.c_str(), &st), 0, "no socket file %s", sock.c_str());
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0660u, "mode %o", st.st_mode & 07777);
    cr_assert_eq(st.st_uid, uid, "owner %u, want nobody (%u)", st.st_uid, uid);
    cr_assert_eq(st.st_gid, gid, "group %u, want nogroup (%u)", st.st_gid, gid);
    Response r = http_get_unix(sock, "/index.html");
    D_ASSERT(d, r.ok && r.status == 200, "GET over the unix socket: %s", r.error.c_str());
    NO_SANITIZER_REPORTS();
}

Test(control, config_test_reports_an_unknown_unix_owner_and_group) {
    Options o;
    Daemon d = Daemon::prepare(o);
    o.extra = "unix_owner = \"no-such-user-x\"; unix_group = \"no-such-group-x\";";
    d.write_config(o);
    RunResult r = run({daemon_binary(), "-t", "-c", d.conf}, d.dir);
    cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err.c_str());
    cr_assert(contains(r.err, "unix_owner \"no-such-user-x\": no such user"), "%s", r.err.c_str());
    cr_assert(contains(r.err, "unix_group \"no-such-group-x\": no such group"), "%s",
              r.err.c_str());
}

// ---- -t and the runtime directories -------------------------------------------

Test(control, config_test_reports_missing_pid_file_and_socket_directories) {
    Options o;
    Daemon d = Daemon::prepare(o);
    o.listen = {"127.0.0.1:0", "unix:" + d.path("sockets/http.sock")};
    std::string text = config_text(o);
    std::string was = "pid_file = \"preforkd.pid\";";
    text.replace(text.find(was), was.size(), "pid_file = \"run/preforkd.pid\";");
    d.write_config_text(text);
    RunResult r = run({daemon_binary(), "-t", "-c", d.conf}, d.dir);
    cr_assert_eq(r.status, 1, "exit %d, stdout: %s", r.status, r.out.c_str());
    cr_assert(contains(r.err, "pid_file directory \"" + d.path("run") +
                                  "\": No such file or directory"), "%s", r.err.c_str());
    cr_assert(contains(r.err, "directory \"" + d.path("sockets") + "\": No such file or directory"),
              "%s", r.err.c_str());
    make_dir(d.path("run"));
    make_dir(d.path("sockets"));
    r = run({daemon_binary(), "-t", "-c", d.conf}, d.dir);
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err.c_str());
    cr_assert(contains(r.out, "configuration ok"), "%s", r.out.c_str());
}

// ---- the control socket ---------------------------------------------------------

namespace {

std::string control_path(const Daemon& d) { return d.path("preforkd.ctl"); }

RunResult status_of(const Daemon& d, bool json = false)
{
    std::vector<std::string> argv = {daemon_binary(), "-s", "status", "-p", d.pid_file};
    if (json)
        argv.push_back("--json");
    return run(argv, d.dir);
}

}  // namespace

Test(control, status_lists_each_worker_with_its_requests_bytes_and_client) {
    Options o;
    o.start = 2;
    o.min_spare = 1;
    o.max_spare = 2;
    Daemon d = Daemon::prepare(o);
    cr_assert(d.start(), "daemon did not start:\n%s", d.log_tail().c_str());
    struct stat st{};
    D_ASSERT(d, ::stat(control_path(d).c_str(), &st) == 0 && S_ISSOCK(st.st_mode),
             "no control socket at %s", control_path(d).c_str());
    D_ASSERT(d, (st.st_mode & 07777) == 0600, "control socket mode %o", st.st_mode & 07777);
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET /x.txt: %s", r.error.c_str());
    RunResult s = status_of(d);
    D_ASSERT(d, s.status == 0, "-s status exit %d: %s", s.status, s.err.c_str());
    D_ASSERT(d, contains(s.out, "master pid " + std::to_string(d.pid)), "%s", s.out.c_str());
    D_ASSERT(d, contains(s.out, "configuration: " + d.conf + ", loaded "), "%s", s.out.c_str());
    D_ASSERT(d, contains(s.out, "generation: 1\n"), "%s", s.out.c_str());
    D_ASSERT(d, contains(s.out, "floor 2, max 8"), "%s", s.out.c_str());
    D_ASSERT(d, contains(s.out, "totals: 1 requests, " + std::to_string(r.body.size()) + " bytes"),
             "%s", s.out.c_str());
    for (pid_t w : d.workers())
        D_ASSERT(d, contains(s.out, format("\n%8d    1 ", int(w))), "worker %d missing:\n%s", int(w),
                 s.out.c_str());
    D_ASSERT(d, contains(s.out, "127.0.0.1 ") && contains(s.out, "GET /x.txt HTTP/1.1"),
             "no client or request line:\n%s", s.out.c_str());

    RunResult j = status_of(d, true);
    D_ASSERT(d, j.status == 0, "-s status --json exit %d: %s", j.status, j.err.c_str());
    std::string check =
        "import json,sys; s=json.load(open(sys.argv[1])); "
        "w=[x for x in s['workers'] if x['requests']]; "
        "assert s['pid']==int(sys.argv[2]) and s['generation']==1 and s['pool']['floor']==2, s; "
        "assert s['totals']['requests']==1 and len(w)==1 and w[0]['request']=='GET /x.txt HTTP/1.1', s; "
        "assert w[0]['client']=='127.0.0.1' and w[0]['bytes']>0, s";
    write_file(d.path("status.json"), j.out);
    RunResult py = run({"/usr/bin/python3", "-c", check, d.path("status.json"), std::to_string(d.pid)}, d.dir);
    D_ASSERT(d, py.status == 0, "JSON status: %s\n%s", py.err.c_str(), j.out.c_str());

    cr_assert(d.signal(SIGQUIT));
    D_ASSERT(d, wait_exit(d.pid, kWait) == 0, "master did not exit");
    D_ASSERT(d, !file_exists(control_path(d)), "control socket left behind");
    NO_SANITIZER_REPORTS();
}

Test(control, after_winch_status_and_the_sysv_status_say_there_are_no_workers) {
    Options o;
    Daemon d = Daemon::prepare(o);
    cr_assert(d.start(), "daemon did not start:\n%s", d.log_tail().c_str());
    cr_assert(d.signal(SIGWINCH));
    D_ASSERT(d, d.wait_workers(0), "workers still running after WINCH");
    RunResult s = status_of(d);
    D_ASSERT(d, s.status == 0 && contains(s.out, "pool: 0 workers: stopped by SIGWINCH") &&
                    contains(s.out, "\nno workers\n"),
             "-s status after WINCH (exit %d):\n%s%s", s.status, s.out.c_str(), s.err.c_str());
    std::string script = std::string(getenv("PREFORKD_SRCDIR") ? getenv("PREFORKD_SRCDIR") : ".") +
                         "/init/preforkd";
    RunResult sysv = run({"/usr/bin/env", "PREFORKD_DAEMON=" + daemon_binary(), "PREFORKD_PIDFILE=" + d.pid_file,
                          "PREFORKD_DEFAULTS=/dev/null", "/bin/sh", script, "status"},
                         d.dir);
    D_ASSERT(d, sysv.status == 0 && contains(sysv.out, "is running") &&
                    contains(sysv.out, "0 workers: stopped by SIGWINCH"),
             "SysV status after WINCH (exit %d):\n%s%s", sysv.status, sysv.out.c_str(), sysv.err.c_str());
    RunResult rel = run({daemon_binary(), "-s", "reload", "-p", d.pid_file}, d.dir);
    D_ASSERT(d, rel.status == 0 && contains(rel.out, "preforkd: reload: generation 2 started"),
             "-s reload after WINCH (exit %d): %s%s", rel.status, rel.out.c_str(), rel.err.c_str());
    D_ASSERT(d, d.wait_workers(size_t(o.start)), "no new generation after the reload");
    s = status_of(d);
    D_ASSERT(d, contains(s.out, "generation: 2") && contains(s.out, "pool: 2 workers"), "%s",
             s.out.c_str());
    NO_SANITIZER_REPORTS();
}

Test(control, reload_over_the_socket_answers_with_the_masters_verdict) {
    Options o;
    Daemon d = Daemon::prepare(o);
    cr_assert(d.start(), "daemon did not start:\n%s", d.log_tail().c_str());
    // A unix listener in a directory that does not exist: the reload is
    // rejected, with why, and the running configuration stays.
    Options bad = o;
    bad.listen = {"127.0.0.1:0", "unix:" + d.path("missing/dir/x.sock")};
    d.write_config(bad);
    RunResult r = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir);
    D_ASSERT(d, r.status == 1 && contains(r.err, "reload failed, the running configuration stays:"),
             "rejected reload: exit %d, %s%s", r.status, r.out.c_str(), r.err.c_str());
    D_ASSERT(d, contains(r.err, "missing/dir"), "the reason names the socket: %s", r.err.c_str());
    d.write_config(o);
    r = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir);
    D_ASSERT(d, r.status == 0 && contains(r.out, "preforkd: reload: generation 2 started"),
             "good reload: exit %d, %s%s", r.status, r.out.c_str(), r.err.c_str());
    D_ASSERT(d, !file_exists(d.pid_file + ".reload"), "PIDFILE.reload is still written");
    NO_SANITIZER_REPORTS();
}

Test(control, a_silent_client_does_not_stall_the_master) {
    Options o;
    Daemon d = Daemon::prepare(o);
    cr_assert(d.start(), "daemon did not start:\n%s", d.log_tail().c_str());
    int silent = connect_unix(control_path(d));
    cr_assert_geq(silent, 0, "cannot connect to %s", control_path(d).c_str());
    // The master drops it after its read bound and answers the next one.
    RunResult s = status_of(d);
    D_ASSERT(d, s.status == 0 && contains(s.out, "generation: 1"), "-s status beside a silent client: %s%s",
             s.out.c_str(), s.err.c_str());
    std::optional<std::string> got = recv_some(silent, kWait);
    D_ASSERT(d, got && got->empty(), "the silent client was not closed");
    close(silent);
    int bogus = connect_unix(control_path(d));
    cr_assert(send_all(bogus, "restart\n"));
    std::string answer;
    while (std::optional<std::string> part = recv_some(bogus, kWait)) {
        if (part->empty())
            break;
        answer += *part;
    }
    close(bogus);
    D_ASSERT(d, answer.rfind("error: unknown command \"restart\"", 0) == 0, "answer: %s", answer.c_str());
    D_ASSERT(d, http_get(d.port, "/x.txt").status == 200, "the server stopped serving");
    NO_SANITIZER_REPORTS();
}
