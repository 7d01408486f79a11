// test_sandbox.cpp - the workers' sandbox as an administrator sees it: every
// worker in seccomp filter mode (none with `sandbox = false`), `preforkd -T`
// showing the switch, a followed symlink leading outside every root refused
// with 403 and a log line that says why while the same file inside the root
// is served, and a worker that dies of SIGSYS logged and replaced.
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

TestSuite(sandbox, .init = setup, .fini = cleanup, .timeout = 60);

namespace {

// True once every worker of `d` (at least `n`) shows `Seccomp:` as `mode`.
bool workers_in_mode(const Daemon& d, size_t n, const std::string& mode)
{
    return wait_until([&] {
        auto workers = d.workers();
        if (workers.size() < n)
            return false;
        return std::all_of(workers.begin(), workers.end(),
                           [&](pid_t w) { return proc_status_field(w, "Seccomp") == mode; });
    });
}

std::string modes(const Daemon& d)
{
    std::string out;
    for (pid_t w : d.workers())
        out += std::to_string(w) + ":" + proc_status_field(w, "Seccomp") + " ";
    return out;
}

}  // namespace

Test(sandbox, every_worker_is_in_seccomp_filter_mode)
{
    Daemon d = Daemon::prepare(Options{.start = 3, .min_spare = 1, .max_spare = 3});
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, workers_in_mode(d, 3, "2"), "want 3 workers with Seccomp: 2, have %s",
             modes(d).c_str());
    D_ASSERT(d, proc_status_field(d.pid, "Seccomp") == "0", "the master must stay unconfined");
    // Confined workers still serve files and directory redirects.
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200 && r.body == "hello from preforkd\n", "GET /x.txt: '%s'",
             r.status_line.c_str());
    Response index = http_get(d.port, "/");
    D_ASSERT(d, index.ok && index.status == 200, "GET /: '%s'", index.status_line.c_str());
    D_ASSERT(d, d.count_log("sandbox:") == 0, "this kernel has both mechanisms: no 'sandbox:' line");
    // -s status says so for each worker.
    RunResult st = run({daemon_binary(), "-s", "status", "-c", d.conf}, d.dir);
    size_t confined = 0;
    for (size_t at = 0; (at = st.out.find(" seccomp+landlock ", at)) != std::string::npos; ++at)
        ++confined;
    D_ASSERT(d, st.status == 0 && confined == 3, "-s status shows %zu confined workers:\n%s%s",
             confined, st.out.c_str(), st.err.c_str());
    NO_SANITIZER_REPORTS();
}

Test(sandbox, switched_off_workers_are_not_confined)
{
    Daemon d = Daemon::prepare(Options{.extra = "sandbox = false;\n"});
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, workers_in_mode(d, 2, "0"), "want 2 workers with Seccomp: 0, have %s",
             modes(d).c_str());
    RunResult dump = run({daemon_binary(), "-T", "-c", d.conf}, d.dir);
    D_ASSERT(d, dump.status == 0 && dump.out.find("\nsandbox = false;\n") != std::string::npos,
             "preforkd -T does not show 'sandbox = false;':\n%s", dump.out.c_str());
    RunResult st = run({daemon_binary(), "-s", "status", "-c", d.conf}, d.dir);
    D_ASSERT(d, st.status == 0 && st.out.find("seccomp") == std::string::npos &&
                    st.out.find(" none ") != std::string::npos,
             "-s status with the sandbox off:\n%s%s", st.out.c_str(), st.err.c_str());
    NO_SANITIZER_REPORTS();
}

Test(sandbox, dump_shows_the_default)
{
    Daemon d = Daemon::prepare();
    RunResult dump = run({daemon_binary(), "-T", "-c", d.conf}, d.dir);
    cr_assert(dump.status == 0 && dump.out.find("\nsandbox = true;\n") != std::string::npos,
              "preforkd -T does not show 'sandbox = true;':\n%s", dump.out.c_str());
}

// follow_symlinks lets realpath(3) lead anywhere, but the kernel lets a
// worker read only beneath its roots: a 403, with the reason in the log.
Test(sandbox, followed_symlink_outside_every_root_is_403_with_reason)
{
    Daemon d = prepared("follow_symlinks = true;");
    make_dir(d.path("elsewhere"));
    write_file(d.path("elsewhere/shared.txt"), "SHARED FILE\n");
    cr_assert(symlink(d.path("elsewhere/shared.txt").c_str(), d.path("www/out-link").c_str()) == 0);
    // The same file (one inode) inside the root.
    cr_assert(link(d.path("elsewhere/shared.txt").c_str(), d.path("www/shared.txt").c_str()) == 0);
    start(d);

    Response out = http_get(d.port, "/out-link");
    D_ASSERT(d, out.ok && out.status == 403 && out.body.find("SHARED") == std::string::npos,
             "GET /out-link (symlink outside every root): '%s', want 403", out.status_line.c_str());
    // The refusal line every 403 gets (preforkd(8) DIAGNOSTICS), naming the
    // file the kernel refused.
    std::string reason = "403 for \"GET /out-link HTTP/1.1\" from 127.0.0.1: open(\"" +
                         d.path("elsewhere/shared.txt") + "\") failed: Permission denied";
    D_ASSERT(d, d.wait_log(reason).has_value(), "no log line '%s'", reason.c_str());

    Response in = http_get(d.port, "/shared.txt");
    D_ASSERT(d, in.ok && in.status == 200 && in.body == "SHARED FILE\n",
             "GET /shared.txt (the same file inside the root): '%s'", in.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

// Nothing a request can do makes a worker call outside its list, so the
// death is caused from outside; with no call recorded the log says the
// signal.  (tests/unit/test_sandbox.cpp checks a trapped call's record.)
Test(sandbox, worker_dead_of_sigsys_is_logged_and_replaced)
{
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, workers_in_mode(d, 2, "2"), "want 2 confined workers, have %s", modes(d).c_str());
    pid_t victim = d.workers().front();
    D_ASSERT(d, kill(victim, SIGSYS) == 0, "kill -SYS %d failed", victim);

    std::string line = "worker " + std::to_string(victim) + " killed by SIGSYS";
    D_ASSERT(d, d.wait_log(line).has_value(), "no log line '%s'", line.c_str());
    bool replaced = wait_until([&] {
        auto now = d.workers();
        return now.size() == 2 && std::find(now.begin(), now.end(), victim) == now.end();
    });
    D_ASSERT(d, replaced, "worker %d not replaced: workers now %s", victim,
             join(d.workers()).c_str());
    D_ASSERT(d, workers_in_mode(d, 2, "2"), "the replacement is not confined: %s", modes(d).c_str());
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after the replacement: %s", r.error.c_str());
    NO_SANITIZER_REPORTS();
}
