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
