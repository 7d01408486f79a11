// test_cli.cpp - the command line: -t, -T, -V, -h, a bad option, -s with no
// running master.
#include <criterion/criterion.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>

#include "harness.hpp"

using namespace itest;

TestSuite(cli, .init = setup, .fini = cleanup, .timeout = 30);

namespace {
std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}
}  // namespace

Test(cli, test_good_config, .timeout = 20) {
    Daemon d = Daemon::prepare();
    RunResult r = run({daemon_binary(), "-t", "-c", d.conf}, d.dir);
    D_ASSERT(d, r.status == 0, "-t on a good config exited %d: '%s'", r.status, r.err.c_str());
    D_ASSERT(d, (r.out + r.err).find("configuration ok") != std::string::npos,
             "-t did not print 'configuration ok': out '%s' err '%s'", r.out.c_str(),
             r.err.c_str());
    D_ASSERT(d, !file_exists(d.pid_file), "-t wrote a pid file");
    NO_SANITIZER_REPORTS();
}

Test(cli, test_syntax_error_names_file_and_line, .timeout = 20) {
    Daemon d = Daemon::prepare();
    // Line 3 lacks a value: a syntax error.
    d.write_config_text("pid_file = \"preforkd.pid\";\n"
                        "listen = ( \"127.0.0.1:0\" );\n"
                        "workers = { start = ; max = 3; };\n"
                        "http = { root = \"www\"; };\n"
                        "log = { access_log = \"access.log\"; };\n");
    RunResult r = run({daemon_binary(), "-t", "-c", d.conf}, d.dir);
    D_ASSERT(d, r.status == 1, "-t on a syntax error exited %d, want 1", r.status);
    D_ASSERT(d, r.err.find("preforkd.conf:3:") != std::string::npos,
             "-t does not name preforkd.conf:3: stderr '%s'", r.err.c_str());
    D_ASSERT(d, r.out.find("configuration ok") == std::string::npos, "-t said ok anyway");
    NO_SANITIZER_REPORTS();
}

Test(cli, test_unknown_key_and_bad_value_name_their_lines, .timeout = 20) {
    Daemon d = Daemon::prepare();
    Options o;
    o.max = 0;  // line 3: workers.max must be >= 1
    d.write_config_text(config_text(o) + "listen_typo = ( \"127.0.0.1:0\" );\n");  // line 6
    RunResult r = run({daemon_binary(), "-t", "-c", d.conf}, d.dir);
    D_ASSERT(d, r.status == 1, "-t on bad values exited %d, want 1", r.status);
    D_ASSERT(d, r.err.find("preforkd.conf:6:") != std::string::npos &&
                    r.err.find("listen_typo") != std::string::npos,
             "unknown key not reported as preforkd.conf:6 ... listen_typo: '%s'", r.err.c_str());
    D_ASSERT(d, r.err.find("preforkd.conf:3:") != std::string::npos &&
                    r.err.find("workers.max") != std::string::npos,
             "workers.max = 0 not reported as preforkd.conf:3 ... workers.max: '%s'",
             r.err.c_str());
    NO_SANITIZER_REPORTS();
}

Test(cli, dump_prints_the_effective_config, .timeout = 20) {
    Daemon d = Daemon::prepare();
    RunResult r = run({daemon_binary(), "-T", "-c", d.conf}, d.dir);
    D_ASSERT(d, r.status == 0, "-T exited %d: '%s'", r.status, r.err.c_str());
    // Defaults are filled in (header_timeout is not in our file) and our values shown.
    D_ASSERT(d, r.out.find("header_timeout") != std::string::npos,
             "-T output lacks the default header_timeout:\n%s", r.out.c_str());
    D_ASSERT(d, r.out.find("max_spare = 3") != std::string::npos,
             "-T output lacks 'max_spare = 3':\n%s", r.out.c_str());
    // What -T prints is itself a valid configuration.
    write_file(d.path("dumped.conf"), r.out);
    RunResult again = run({daemon_binary(), "-t", "-c", d.path("dumped.conf")}, d.dir);
    D_ASSERT(d, again.status == 0, "-t on the output of -T exited %d: '%s'", again.status,
             again.err.c_str());
    NO_SANITIZER_REPORTS();
}

Test(cli, version, .timeout = 20) {
    std::string dir = make_tempdir();
    RunResult r = run({daemon_binary(), "-V"}, dir);
    cr_assert(r.status == 0, "-V exited %d", r.status);
    std::string want = "preforkd " + project_version();
    cr_assert(r.out.rfind("preforkd ", 0) == 0 && r.out.size() > 9 && std::isdigit(r.out[9]),
              "-V printed '%s', want 'preforkd VERSION'", r.out.c_str());
    if (!project_version().empty()) {
        cr_assert(r.out.rfind(want, 0) == 0, "-V printed '%s', want '%s'", r.out.c_str(),
                  want.c_str());
    }
    NO_SANITIZER_REPORTS();
}

Test(cli, help, .timeout = 20) {
    std::string dir = make_tempdir();
    RunResult r = run({daemon_binary(), "-h"}, dir);
    cr_assert(r.status == 0, "-h exited %d", r.status);
    std::string text = lower(r.out + r.err);
    cr_assert(text.find("usage") != std::string::npos && text.find("-c") != std::string::npos &&
                  text.find("-s") != std::string::npos,
              "-h printed no usage: '%s'", text.c_str());
    NO_SANITIZER_REPORTS();
}

Test(cli, unknown_option_is_a_usage_error, .timeout = 20) {
    std::string dir = make_tempdir();
    RunResult r = run({daemon_binary(), "-Z"}, dir);
    cr_assert(r.status == 2, "-Z exited %d, want 2", r.status);
    cr_assert(!r.err.empty(), "-Z printed nothing on stderr");
    RunResult sig = run({daemon_binary(), "-s", "explode", "-c", "/nonexistent.conf"}, dir);
    cr_assert(sig.status == 2, "-s explode exited %d, want 2 (usage error)", sig.status);
    NO_SANITIZER_REPORTS();
}

Test(cli, signal_without_pid_file_fails_clearly, .timeout = 20) {
    Daemon d = Daemon::prepare();
    RunResult r = run({daemon_binary(), "-s", "stop", "-c", d.conf}, d.dir);
    D_ASSERT(d, r.status == 1, "-s stop with no pid file exited %d, want 1", r.status);
    D_ASSERT(d, r.err.find("preforkd.pid") != std::string::npos,
             "-s stop with no pid file does not name the pid file: '%s'", r.err.c_str());

    // -p overrides pid_file.
    RunResult p = run({daemon_binary(), "-s", "reopen", "-p", d.path("other.pid"), "-c", d.conf},
                      d.dir);
    D_ASSERT(d, p.status == 1 && p.err.find("other.pid") != std::string::npos,
             "-p other.pid -s reopen: exit %d, '%s'", p.status, p.err.c_str());
    NO_SANITIZER_REPORTS();
}

Test(cli, signal_with_stale_pid_file_fails_clearly, .timeout = 20) {
    Daemon d = Daemon::prepare();
    // A pid that surely names no process: one of ours that has exited.
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, nullptr, 0);
    write_file(d.pid_file, std::to_string(dead) + "\n");
    RunResult r = run({daemon_binary(), "-s", "stop", "-c", d.conf}, d.dir);
    D_ASSERT(d, r.status == 1, "-s stop with a stale pid file exited %d, want 1", r.status);
    D_ASSERT(d, !r.err.empty(), "-s stop with a stale pid file printed nothing");
    NO_SANITIZER_REPORTS();
}
