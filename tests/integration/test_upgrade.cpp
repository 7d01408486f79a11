// test_upgrade.cpp - issue 13: the in-place binary upgrade (SIGUSR2,
// `preforkd -s upgrade`) under the reload-under-load harness's load.
//
// The master is started from a copy of the binary under test in the test's
// directory, and each case replaces that file the way a package manager
// does (a new file renamed over the name): with another copy, with a script
// that exits 1, with a file that is not executable, and with a wrapper that
// passes -t but then starts the binary on a configuration that does not
// exist (the new image fails after the exec and must return to the old
// one), and with wrappers that start it with a fault preloaded
// (tests/preload/upgrade_fault.cpp): a new image that crashes, whose
// workers die at start-up, or whose workers never come up.  Each case keeps a bounded load of fresh and keep-alive requests
// running across the upgrade and asserts what an administrator would check:
// no failed request, the same master pid, the verdict -s upgrade printed,
// and which workers serve afterwards.
#include <criterion/criterion.h>

#include "../stress/reliability.hpp"

using namespace itest;
using namespace rel;

TestSuite(upgrade, .init = setup, .fini = cleanup, .timeout = 90);

namespace {

constexpr Duration kUpgradeWait = 90s;

// The file at `path` replaced by `content` with `mode`, as a package
// manager replaces a binary: written beside it, then renamed over it (a
// running executable cannot be written in place).
void replace_file(const std::string& path, const std::string& content, mode_t mode)
{
    std::string tmp = path + ".new";
    write_file(tmp, content, mode);
    ::chmod(tmp.c_str(), mode);
    cr_assert(::rename(tmp.c_str(), path.c_str()) == 0, "rename %s: %s", tmp.c_str(), strerror(errno));
}

// A daemon started from its own copy of the binary under test, with the
// reload-under-load scenario's pool.
struct Setup {
    Daemon d;
    std::string binary;   // the path the master was started from
    pid_t master = -1;
};

const Options kPool{.start = 4, .min_spare = 2, .max_spare = 6, .max = 16, .graceful_timeout = 10};

Setup start_from_copy(const std::string& workers_extra = "", const Options& o = kPool)
{
    Setup s{Daemon::prepare(o), "", -1};
    s.d.write_config_text(config_with(o, "keepalive_requests = 1000;", workers_extra));
    s.binary = s.d.path("preforkd");
    replace_file(s.binary, read_file(daemon_binary()), 0755);
    D_ASSERT(s.d, start_with(s.d, {s.binary, "-f", "-c", s.d.conf}), "daemon did not become ready");
    s.master = s.d.pid;
    return s;
}

RunResult ask_upgrade(const Daemon& d)
{
    return run({daemon_binary(), "-s", "upgrade", "-p", d.pid_file}, d.dir, kUpgradeWait);
}

std::string exe_of(pid_t pid)
{
    char buf[4096];
    ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, size_t(n)) : "";
}

std::set<pid_t> worker_set(const Daemon& d)
{
    std::vector<pid_t> w = d.workers();
    return std::set<pid_t>(w.begin(), w.end());
}

// Every worker of `before` still serves (the pool may have grown under the
// load, with workers of the same generation).
bool all_still_there(const Daemon& d, const std::set<pid_t>& before)
{
    std::set<pid_t> now = worker_set(d);
    return std::includes(now.begin(), now.end(), before.begin(), before.end());
}

// The load across one upgrade: some before, the upgrade, some after.
struct Loaded {
    RunResult verdict;
    Load::Stats stats;
};

Loaded upgrade_under_load(const Daemon& d)
{
    Load load;
    load.start(d.port, 2, 2, 60s, 200000);
    nap(400ms);   // load before the upgrade, not a synchronisation
    Loaded l;
    l.verdict = ask_upgrade(d);
    nap(400ms);   // and after it
    l.stats = load.join();
    return l;
}

void assert_no_failed_request(const Daemon& d, const Load::Stats& s, const char* what)
{
    cr_log_info("%s: fresh %ld ok, %ld failed, %ld non-200; keep-alive %ld ok, %ld non-200, %ld cut "
                "mid-response, %ld closed between requests",
                what, s.fresh_ok, s.fresh_failed, s.fresh_non200, s.ka_ok, s.ka_non200, s.ka_mid_response,
                s.ka_between);
    D_ASSERT(d, s.fresh_failed == 0 && s.fresh_non200 == 0 && s.ka_mid_response == 0 && s.ka_non200 == 0,
             "%s: requests failed across the upgrade; first: %s", what, s.first_failure.c_str());
    D_ASSERT(d, s.fresh_ok + s.ka_ok >= 20, "%s: load too small to mean anything: %ld answered", what,
             s.fresh_ok + s.ka_ok);
}

void assert_same_master(const Setup& s, const char* what)
{
    D_ASSERT(s.d, !is_gone(s.master) && std::atol(read_file(s.d.pid_file).c_str()) == s.master,
             "%s: the master pid changed or the master is gone (was %d, pid file says '%s')", what, s.master,
             read_file(s.d.pid_file).c_str());
    Response r = http_get(s.d.port, "/x.txt");
    D_ASSERT(s.d, r.ok && r.status == 200, "%s: no 200 after the upgrade: %s", what, r.error.c_str());
}

// A refused upgrade changes nothing: same workers, same generation, the
// old image still running.
void assert_refused(const Setup& s, const std::string& replacement, mode_t mode, const std::string& reason)
{
    std::set<pid_t> before = worker_set(s.d);
    replace_file(s.binary, replacement, mode);
    Loaded l = upgrade_under_load(s.d);
    D_ASSERT(s.d, l.verdict.status == 1, "-s upgrade exited %d, want 1: %s%s", l.verdict.status,
             l.verdict.out.c_str(), l.verdict.err.c_str());
    D_ASSERT(s.d, contains(l.verdict.err, "preforkd: upgrade failed, the running binary stays: refused: ") &&
                      contains(l.verdict.err, reason),
             "the verdict does not say '%s': %s", reason.c_str(), l.verdict.err.c_str());
    assert_no_failed_request(s.d, l.stats, reason.c_str());
    assert_same_master(s, reason.c_str());
    D_ASSERT(s.d, all_still_there(s.d, before), "workers went (%s, were %s)", join(s.d.workers()).c_str(),
             join(std::vector<pid_t>(before.begin(), before.end())).c_str());
    D_ASSERT(s.d, s.d.count_log("generation 2") == 0, "a new generation started");
    D_ASSERT(s.d, contains(exe_of(s.master), "(deleted)"), "the master does not run the replaced file: %s",
             exe_of(s.master).c_str());
}

}  // namespace

// The administrator's upgrade: the file replaced by a new build (here a
// copy), `-s upgrade`, then SIGUSR2 for a second one.  The master keeps its
// pid and runs the new file; the old workers are retired and new ones serve.
Test(upgrade, to_a_copy_of_the_binary_keeps_the_pid_and_serves_throughout)
{
    Setup s = start_from_copy();
    std::set<pid_t> before = worker_set(s.d);
    replace_file(s.binary, read_file(daemon_binary()), 0755);
    D_ASSERT(s.d, contains(exe_of(s.master), "(deleted)"), "the file was not replaced: %s", exe_of(s.master).c_str());
    Loaded l = upgrade_under_load(s.d);
    D_ASSERT(s.d, l.verdict.status == 0, "-s upgrade exited %d: %s%s", l.verdict.status, l.verdict.out.c_str(),
             l.verdict.err.c_str());
    std::string want = "preforkd: upgrade: preforkd " + project_version() + " (" + s.binary + ") serves, generation 2";
    D_ASSERT(s.d, contains(l.verdict.out, want), "the verdict is not '%s': %s", want.c_str(), l.verdict.out.c_str());
    assert_no_failed_request(s.d, l.stats, "upgrade to a copy");
    assert_same_master(s, "upgrade to a copy");
    D_ASSERT(s.d, exe_of(s.master) == s.binary, "the master runs %s, not the new %s", exe_of(s.master).c_str(),
             s.binary.c_str());
    D_ASSERT(s.d, s.d.wait_log("reload: generation 1 retired").has_value(), "generation 1 was never retired");
    bool replaced = wait_until([&] {
        std::set<pid_t> now = worker_set(s.d);
        return !now.empty() && std::none_of(now.begin(), now.end(), [&](pid_t p) { return before.count(p) > 0; });
    });
    D_ASSERT(s.d, replaced, "old workers still there: %s (were %s)", join(s.d.workers()).c_str(),
             join(std::vector<pid_t>(before.begin(), before.end())).c_str());
    RunResult status = run({daemon_binary(), "-s", "status", "-p", s.d.pid_file}, s.d.dir);
    D_ASSERT(s.d, status.status == 0 && contains(status.out, "generation: 2") &&
                      contains(status.out, "master pid " + std::to_string(s.master)),
             "-s status after the upgrade: %s%s", status.out.c_str(), status.err.c_str());

    // Again by signal: the new image can upgrade in turn.
    replace_file(s.binary, read_file(daemon_binary()), 0755);
    D_ASSERT(s.d, s.d.signal(SIGUSR2), "kill -USR2 failed");
    D_ASSERT(s.d, s.d.wait_log("serves, generation 3", kUpgradeWait).has_value(), "the SIGUSR2 upgrade never served");
    assert_same_master(s, "upgrade by SIGUSR2");
    D_ASSERT(s.d, s.d.count_log("upgrade failed") == 0, "an upgrade failed");
    D_ASSERT(s.d, s.d.signal(SIGTERM), "kill -TERM failed");
    D_ASSERT(s.d, wait_exit(s.master, 10s) == 0, "master did not exit 0 after SIGTERM");
    D_ASSERT(s.d, !file_exists(s.d.pid_file), "the pid file outlived the master");
    REL_LOG_CLEAN(s.d, "exited on signal 15");
}

// A new binary that exits 1 at start fails its -t check: refused, nothing
// changes, and the verdict says why.
Test(upgrade, to_a_binary_that_exits_1_is_refused_and_nothing_changes)
{
    Setup s = start_from_copy();
    assert_refused(s, "#!/bin/sh\necho 'this build is broken' >&2\nexit 1\n", 0755,
                   s.binary + " -t failed with exit status 1: this build is broken");
    REL_LOG_CLEAN(s.d);
}

Test(upgrade, to_a_file_that_is_not_executable_is_refused_and_nothing_changes)
{
    Setup s = start_from_copy();
    assert_refused(s, read_file(daemon_binary()), 0644, "execve(" + s.binary + ") failed: Permission denied");
    REL_LOG_CLEAN(s.d);
}

// A new binary that passes -t but fails once it has taken over (here a
// wrapper that starts it on a configuration that does not exist): the new
// image returns to the previous one, which serves on with its own workers,
// and can still be upgraded afterwards.
Test(upgrade, a_new_image_that_fails_after_the_exec_returns_to_the_old_one)
{
    Setup s = start_from_copy();
    std::string real = s.d.path("preforkd.real");
    replace_file(real, read_file(daemon_binary()), 0755);
    std::set<pid_t> before = worker_set(s.d);
    replace_file(s.binary,
                 "#!/bin/sh\ncase \" $* \" in *\" -t \"*) exec '" + real + "' \"$@\";; esac\n"
                 "exec '" + real + "' -f -c '" + s.d.path("missing.conf") + "'\n",
                 0755);
    Loaded l = upgrade_under_load(s.d);
    D_ASSERT(s.d, l.verdict.status == 1, "-s upgrade exited %d, want 1: %s%s", l.verdict.status,
             l.verdict.out.c_str(), l.verdict.err.c_str());
    D_ASSERT(s.d, contains(l.verdict.err, "the previous one runs again") && contains(l.verdict.err, "missing.conf"),
             "the verdict does not say the old binary runs again: %s", l.verdict.err.c_str());
    assert_no_failed_request(s.d, l.stats, "failed new image");
    assert_same_master(s, "failed new image");
    D_ASSERT(s.d, all_still_there(s.d, before), "workers went (%s, were %s)", join(s.d.workers()).c_str(),
             join(std::vector<pid_t>(before.begin(), before.end())).c_str());
    D_ASSERT(s.d, contains(exe_of(s.master), "(deleted)"), "the master does not run its old image: %s",
             exe_of(s.master).c_str());

    replace_file(s.binary, read_file(daemon_binary()), 0755);
    RunResult again = ask_upgrade(s.d);
    D_ASSERT(s.d, again.status == 0 && contains(again.out, "serves, generation 2"),
             "the upgrade after the return failed (exit %d): %s%s", again.status, again.out.c_str(),
             again.err.c_str());
    assert_same_master(s, "upgrade after the return");
    REL_LOG_CLEAN(s.d);
}

namespace {

// Built beside the binary under test by the Makefile.
std::string fault_library()
{
    std::string bin = daemon_binary();
    return bin.substr(0, bin.rfind('/') + 1) + "upgrade-fault.so";
}

// The new binary: a wrapper that runs the -t check on a copy of the binary
// under test, as a good build would pass it, and then starts that copy with
// `fault` preloaded (upgrade_fault.cpp).  Returns the copy's path.
std::string install_faulty(const Setup& s, const std::string& fault)
{
    std::string real = s.d.path("preforkd.real");
    replace_file(real, read_file(daemon_binary()), 0755);
    cr_assert(file_exists(fault_library()), "%s is missing: make builds it with the integration tests",
              fault_library().c_str());
    replace_file(s.binary,
                 "#!/bin/sh\ncase \" $* \" in *\" -t \"*) exec '" + real + "' \"$@\";; esac\n"
                 "LD_PRELOAD='" + fault_library() + "'\nPREFORKD_TEST_FAULT='" + fault + "'\n"
                 "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0\"\n"
                 "export LD_PRELOAD PREFORKD_TEST_FAULT ASAN_OPTIONS\n"
                 "exec '" + real + "' \"$@\"\n",
                 0755);
    return real;
}

// What an administrator checks after an upgrade that failed in the new
// image: -s upgrade said so and why, no request failed, the master kept its
// pid and runs its old image again, its workers still serve, none of the
// new binary's workers is left, and a later upgrade works.
void assert_returned(const Setup& s, const std::string& real, const std::set<pid_t>& before, const Loaded& l,
                     const std::string& reason)
{
    const char* what = reason.c_str();
    D_ASSERT(s.d, l.verdict.status == 1, "%s: -s upgrade exited %d, want 1: %s%s", what, l.verdict.status,
             l.verdict.out.c_str(), l.verdict.err.c_str());
    D_ASSERT(s.d, contains(l.verdict.err, "preforkd: upgrade failed, the running binary stays: ") &&
                      contains(l.verdict.err, "the previous one runs again") && contains(l.verdict.err, reason),
             "the verdict does not say the old binary runs again because '%s': %s", what, l.verdict.err.c_str());
    assert_no_failed_request(s.d, l.stats, what);
    assert_same_master(s, what);
    D_ASSERT(s.d, contains(exe_of(s.master), "(deleted)"), "%s: the master does not run its old image: %s", what,
             exe_of(s.master).c_str());
    D_ASSERT(s.d, all_still_there(s.d, before), "%s: workers went (%s, were %s)", what, join(s.d.workers()).c_str(),
             join(std::vector<pid_t>(before.begin(), before.end())).c_str());
    for (pid_t w : s.d.workers())
        D_ASSERT(s.d, exe_of(w) != real, "%s: worker %d of the failed binary is still there", what, int(w));
    D_ASSERT(s.d, s.d.count_log("serves, generation") == 0, "%s: the failed binary was said to serve", what);

    replace_file(s.binary, read_file(daemon_binary()), 0755);
    RunResult again = ask_upgrade(s.d);
    D_ASSERT(s.d, again.status == 0 && contains(again.out, "serves, generation"),
             "%s: the upgrade after the return failed (exit %d): %s%s", what, again.status, again.out.c_str(),
             again.err.c_str());
    assert_same_master(s, "upgrade after the return");
}

}  // namespace

// The new image crashes (SIGSEGV) after it has started two workers of its
// generation: its handler executes the previous image, which ends those two
// workers and serves on with its own.
Test(upgrade, a_new_image_that_crashes_returns_to_the_old_one)
{
    Setup s = start_from_copy();
    std::set<pid_t> before = worker_set(s.d);
    std::string real = install_faulty(s, "crash:" + std::to_string(SIGSEGV) + ":3");
    Loaded l = upgrade_under_load(s.d);
    assert_returned(s, real, before, l, "the new binary was killed by signal 11 (SIGSEGV) before it served");
    D_ASSERT(s.d, s.d.count_log("of the failed binary") == 2,
             "the two workers the crashed image started were not ended (%zu ended)",
             s.d.count_log("of the failed binary"));
    REL_LOG_CLEAN(s.d);
}

// The same for abort(), before the new image has started anything.
Test(upgrade, a_new_image_that_aborts_returns_to_the_old_one)
{
    Setup s = start_from_copy();
    std::set<pid_t> before = worker_set(s.d);
    std::string real = install_faulty(s, "crash:" + std::to_string(SIGABRT) + ":1");
    Loaded l = upgrade_under_load(s.d);
    assert_returned(s, real, before, l, "the new binary was killed by signal 6 (SIGABRT) before it served");
    REL_LOG_CLEAN(s.d);
}

// The new image starts, but every worker it forks dies at start-up: it
// returns as a reload rolls back, and the old workers serve throughout.
Test(upgrade, new_workers_that_die_at_start_up_return_to_the_old_binary)
{
    Setup s = start_from_copy();
    std::set<pid_t> before = worker_set(s.d);
    std::string real = install_faulty(s, "exit");
    Loaded l = upgrade_under_load(s.d);
    assert_returned(s, real, before, l, "worker could not start");
    REL_LOG_CLEAN(s.d, "exited with status 1", "could not start");
}

// The new image's workers never come up: after workers.upgrade_timeout
// (2 s here, 30 by default) it ends them and returns.
Test(upgrade, no_new_worker_up_within_upgrade_timeout_returns_to_the_old_binary)
{
    Setup s = start_from_copy("upgrade_timeout = 2;");
    std::set<pid_t> before = worker_set(s.d);
    std::string real = install_faulty(s, "hang");
    Loaded l = upgrade_under_load(s.d);
    assert_returned(s, real, before, l, "no worker of generation 2 was up within 2 s (workers.upgrade_timeout)");
    REL_LOG_CLEAN(s.d);
}

// Parking across an upgrade: a keep-alive connection parked before it is
// handed from the old binary's parker to the new binary's (which replaces
// it), and its next request is answered on the same connection.
Test(upgrade, the_parker_is_replaced_and_a_parked_connection_survives)
{
    // One worker: a second client served while the first connection is
    // open proves that connection is parked, not held by the worker.
    Options one{.start = 1, .min_spare = 1, .max_spare = 1, .max = 1, .graceful_timeout = 10,
                .keepalive_timeout = 60};
    Setup s = start_from_copy("", one);
    pid_t old_parker = -1;
    D_ASSERT(s.d, wait_until([&] { return (old_parker = parker_of(s.master)) > 0; }), "no parker");
    int ka = connect_tcp(s.d.port);
    D_ASSERT(s.d, ka >= 0, "connect failed");
    std::string buffer;
    D_ASSERT(s.d, send_all(ka, request("GET", "/x.txt", true)), "send failed");
    Response first = read_response(ka, buffer);
    D_ASSERT(s.d, first.ok && first.status == 200, "first request: %s", first.error.c_str());
    Response other = http_get(s.d.port, "/x.txt");
    D_ASSERT(s.d, other.ok && other.status == 200, "a second client was not served beside the parked one: %s",
             other.error.c_str());

    replace_file(s.binary, read_file(daemon_binary()), 0755);
    RunResult verdict = ask_upgrade(s.d);
    D_ASSERT(s.d, verdict.status == 0 && contains(verdict.out, "serves, generation 2"),
             "-s upgrade exited %d: %s%s", verdict.status, verdict.out.c_str(), verdict.err.c_str());
    D_ASSERT(s.d, wait_until([&] { return is_gone(old_parker); }), "the old parker %d is still there",
             int(old_parker));
    pid_t new_parker = parker_of(s.master);
    D_ASSERT(s.d, new_parker > 0 && new_parker != old_parker && exe_of(new_parker) == s.binary,
             "the parker was not replaced by one of the new binary (now %d, %s; was %d)", int(new_parker),
             exe_of(new_parker).c_str(), int(old_parker));

    D_ASSERT(s.d, send_all(ka, request("GET", "/x.txt", true)), "send on the parked connection failed");
    Response after = read_response(ka, buffer);
    D_ASSERT(s.d, after.ok && after.status == 200 && after.header("connection") != "close",
             "the connection parked before the upgrade: %s %d", after.error.c_str(), after.status);
    ::close(ka);
    assert_same_master(s, "parker replaced");
    REL_LOG_CLEAN(s.d);
}
