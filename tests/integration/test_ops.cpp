// test_ops.cpp - preforkd managed like any system daemon: `make install`
// into a staged root (DESTDIR) and `make uninstall`; the systemd units pass
// `systemd-analyze verify`; the sd_notify protocol a Type=notify unit relies
// on; socket activation through systemd-socket-activate (PID 1 here is not
// systemd); the SysV script driving the staged install; logrotate's
// postrotate reopening the access log under load.
//
// The installs run `make -C $PREFORKD_SRCDIR install` with BUILD set to the
// directory of the binary under test and `-o BUILD/preforkd`, so make never
// rebuilds (or replaces) the daemon other tests are running, and with STAGE
// in the test's own directory, so parallel installs do not share files.
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#include "harness.hpp"

using namespace itest;

TestSuite(ops, .init = setup, .fini = cleanup, .timeout = 120);

namespace {

// ---- paths --------------------------------------------------------------------

std::string absolute(const std::string& path) {
    if (!path.empty() && path[0] == '/') return path;
    char cwd[4096];
    return getcwd(cwd, sizeof cwd) != nullptr ? std::string(cwd) + "/" + path : path;
}

std::string srcdir() {
    const char* src = std::getenv("PREFORKD_SRCDIR");
    return absolute(src != nullptr && *src != '\0' ? src : ".");
}

// The build directory of the binary under test, absolute: make's BUILD.
std::string build_dir() {
    std::string bin = absolute(daemon_binary());
    return bin.substr(0, bin.rfind('/'));
}

bool executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

bool is_directory(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
        text.replace(at, from.size(), to);
    return text;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// "@NAME@" placeholders left in a text ("" if none).  A lone '@' (libconfig's
// @include, an e-mail address) is not one.
std::string placeholder_in(const std::string& text) {
    for (size_t at = text.find('@'); at != std::string::npos; at = text.find('@', at + 1)) {
        size_t end = at + 1;
        while (end < text.size() && (std::isupper(static_cast<unsigned char>(text[end])) || text[end] == '_'))
            ++end;
        if (end > at + 1 && end < text.size() && text[end] == '@') return text.substr(at, end - at + 1);
    }
    return "";
}

// Every regular file under `root`, as paths relative to it, sorted.
std::vector<std::string> g_walk;
size_t g_walk_prefix = 0;

int walk_entry(const char* path, const struct stat*, int type, struct FTW*) {
    if (type == FTW_F) g_walk.emplace_back(path + g_walk_prefix);
    return 0;
}

std::vector<std::string> files_under(const std::string& root) {
    g_walk.clear();
    g_walk_prefix = root.size() + 1;
    nftw(root.c_str(), walk_entry, 16, FTW_PHYS);
    std::sort(g_walk.begin(), g_walk.end());
    return g_walk;
}

std::string list(const std::vector<std::string>& items) {
    std::string s;
    for (const auto& i : items) s += "\n  " + i;
    return s.empty() ? " (none)" : s;
}

mode_t mode_of(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

size_t line_count(const std::string& path) { return lines_of(read_file(path)).size(); }

// Processes whose executable is `binary`, per /proc/PID/exe.
std::vector<pid_t> processes_running(const std::string& binary) {
    std::vector<pid_t> out;
    DIR* proc = opendir("/proc");
    if (proc == nullptr) return out;
    while (dirent* e = readdir(proc)) {
        if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
        char target[4096];
        std::string link = std::string("/proc/") + e->d_name + "/exe";
        ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        if (n > 0 && std::string(target, static_cast<size_t>(n)) == binary)
            out.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
    }
    closedir(proc);
    return out;
}

// ---- make install ---------------------------------------------------------------

// What `make install PREFIX=/usr SYSCONFDIR=/etc` puts into DESTDIR, and the mode.
struct Installed {
    const char* path;
    mode_t mode;
};
constexpr Installed kInstalled[] = {
    {"etc/default/preforkd", 0644},
    {"etc/init.d/preforkd", 0755},
    {"etc/logrotate.d/preforkd", 0644},
    {"etc/preforkd/preforkd.conf", 0644},
    {"etc/preforkd/preforkd.conf.default", 0644},
    {"lib/systemd/system/preforkd.service", 0644},
    {"lib/systemd/system/preforkd.socket", 0644},
    {"usr/sbin/preforkd", 0755},
    {"usr/share/man/man5/preforkd.conf.5", 0644},
    {"usr/share/man/man8/preforkd.8", 0644},
    {"usr/share/preforkd/preforkd.init", 0644},
    {"usr/share/preforkd/preforkd.logrotate", 0644},
};

// `make TARGET` for a staged install into `dest`; `as` = {uid, gid} to run
// unprivileged (through setpriv), or {-1, -1}.  The parent make's jobserver
// does not reach us (the harness closes descriptors), so its flags go too.
RunResult make_staged(const std::string& target, const std::string& dest, const std::string& work,
                      std::pair<long, long> as = {-1, -1}, const std::string& prefix = "/usr") {
    std::string build = build_dir();
    std::vector<std::string> argv;
    if (as.first >= 0)
        argv = {"/usr/bin/setpriv", "--reuid=" + std::to_string(as.first),
                "--regid=" + std::to_string(as.second), "--clear-groups"};
    std::vector<std::string> make = {
        "/usr/bin/env", "-u", "MAKEFLAGS", "-u", "MFLAGS", "-u", "MAKELEVEL",
        "make", "--no-print-directory", "-C", srcdir(), target,
        "DESTDIR=" + dest, "PREFIX=" + prefix, "SYSCONFDIR=/etc", "BUILD=" + build,
        "STAGE=" + work + "/stage", "-o", build + "/preforkd"};
    argv.insert(argv.end(), make.begin(), make.end());
    return run(argv, work, 90s);
}

// A staged installation in a fresh temporary directory.
struct Staged {
    std::string work, dest;
    RunResult result;
    std::string bin() const { return dest + "/usr/sbin/preforkd"; }
    std::string file(const std::string& rel) const { return dest + "/" + rel; }
};

Staged stage_install() {
    Staged s;
    s.work = make_tempdir();
    s.dest = s.work + "/root";
    s.result = make_staged("install", s.dest, s.work);
    return s;
}

#define MAKE_ASSERT(r, what)                                                                  \
    cr_assert((r).status == 0, "%s exited %d\n--- stdout ---\n%s\n--- stderr ---\n%s", what, \
              (r).status, (r).out.c_str(), (r).err.c_str())

// The quoted strings of the `listen = ( ... );` line of a configuration.
std::set<std::string> listen_entries(const std::string& conf_text) {
    std::set<std::string> out;
    for (const auto& line : lines_of(conf_text)) {
        size_t b = line.find_first_not_of(" \t");
        if (b == std::string::npos || line.compare(b, 6, "listen") != 0) continue;
        for (size_t q = line.find('"'); q != std::string::npos; q = line.find('"', q + 1)) {
            size_t e = line.find('"', q + 1);
            if (e == std::string::npos) break;
            out.insert(line.substr(q + 1, e - q - 1));
            q = e;
        }
    }
    return out;
}

// Values of every `Key=` line of a unit file.
std::vector<std::string> unit_values(const std::string& unit_text, const std::string& key) {
    std::vector<std::string> out;
    for (const auto& line : lines_of(unit_text))
        if (line.rfind(key + "=", 0) == 0) out.push_back(line.substr(key.size() + 1));
    return out;
}

// ---- sd_notify ------------------------------------------------------------------

// A bound AF_UNIX datagram socket, as systemd's notify socket.
int notify_listener(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (fd < 0 || path.size() >= sizeof a.sun_path) return -1;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// The value of KEY in a notify message ("KEY=VALUE" lines), or nullopt.
std::optional<std::string> field(const std::string& message, const std::string& key) {
    for (const auto& line : lines_of(message))
        if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
    return std::nullopt;
}

// Collects notify messages into `seen` until one has KEY=VALUE; returns it.
std::optional<std::string> wait_notify(int fd, const std::string& key, const std::string& value,
                                       std::vector<std::string>& seen, Duration timeout = kWait) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) continue;
        std::string message(buf, static_cast<size_t>(n));
        seen.push_back(message);
        if (field(message, key) == value) return message;
    }
}

std::string joined(const std::vector<std::string>& messages) {
    std::string s;
    for (const auto& m : messages) s += "\n  [" + replace_all(m, "\n", " | ") + "]";
    return s.empty() ? " (none)" : s;
}

long long monotonic_usec() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// ---- sanitizers -------------------------------------------------------------------

// For daemons started other than by Daemon::start (through the init script
// or systemd-socket-activate): sanitizer reports go to files in `dir`, where
// sanitizer_reports_in() finds them.  Harmless for an uninstrumented build.
std::vector<std::string> sanitizer_env(const std::string& dir) {
    auto value = [](const char* name) {
        const char* v = std::getenv(name);
        return std::string(v != nullptr ? v : "");
    };
    return {"ASAN_OPTIONS=" + value("ASAN_OPTIONS") + ":log_path=" + dir + "/sanitizer",
            "UBSAN_OPTIONS=" + value("UBSAN_OPTIONS") + ":print_stacktrace=1:log_path=" + dir +
                "/sanitizer"};
}

std::string sanitizer_reports_in(const std::string& dir) {
    std::string found;
    for (const auto& name : files_under(dir))
        if (name.rfind("sanitizer", 0) == 0)
            found += "== " + name + " ==\n" + read_file(dir + "/" + name).substr(0, 3000) + "\n";
    return found;
}

// ---- SysV script ----------------------------------------------------------------

// Runs the staged init script with its paths pointed at the staged binary,
// the test's configuration and the daemon's pid file (what PIDFILE= of
// /etc/default/preforkd names; the script never reads it from the
// configuration).
RunResult sysv(const Staged& s, const Daemon& d, const std::string& action) {
    std::vector<std::string> argv = {"/usr/bin/env", "PREFORKD_DAEMON=" + s.bin(),
                                     "PREFORKD_CONFIG=" + d.conf,
                                     "PREFORKD_DEFAULTS=" + s.file("etc/default/preforkd"),
                                     "PREFORKD_PIDFILE=" + d.pid_file};
    for (const auto& var : sanitizer_env(d.dir)) argv.insert(argv.begin() + 1, var);
    argv.push_back(s.file("etc/init.d/preforkd"));
    argv.push_back(action);
    return run(argv, d.dir, 60s);
}

#define SYSV_ASSERT(d, r, cond, what)                                                       \
    D_ASSERT(d, cond, "%s: exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s", what, (r).status, \
             (r).out.c_str(), (r).err.c_str())

pid_t pid_in(const std::string& pid_file) {
    return static_cast<pid_t>(std::atol(read_file(pid_file).c_str()));
}

std::vector<pid_t> sorted(std::vector<pid_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

// ---- make install / uninstall -----------------------------------------------------

Test(ops, make_install_stages_every_file_with_real_paths, .timeout = 100) {
    Staged s = stage_install();
    MAKE_ASSERT(s.result, "make install");

    for (const Installed& f : kInstalled) {
        std::string path = s.file(f.path);
        cr_assert(file_exists(path), "make install did not install %s; installed:%s", f.path,
                  list(files_under(s.dest)).c_str());
        cr_assert(mode_of(path) == f.mode, "%s has mode %04o, want %04o", f.path, mode_of(path),
                  f.mode);
        if (std::string(f.path) == "usr/sbin/preforkd") continue;
        std::string left = placeholder_in(read_file(path));
        cr_assert(left.empty(), "%s still holds the placeholder %s", f.path, left.c_str());
    }
    std::string service = read_file(s.file("lib/systemd/system/preforkd.service"));
    cr_assert(contains(service, "ExecStart=/usr/sbin/preforkd -f"),
              "preforkd.service does not start /usr/sbin/preforkd -f:\n%s", service.c_str());
    cr_assert(contains(service, "/etc/preforkd/preforkd.conf"),
              "preforkd.service does not name /etc/preforkd/preforkd.conf");
    std::string init = read_file(s.file("etc/init.d/preforkd"));
    cr_assert(contains(init, "DAEMON=/usr/sbin/preforkd") &&
                  contains(init, "CONFIG=/etc/preforkd/preforkd.conf") &&
                  contains(init, "/etc/default/preforkd"),
              "the init script does not name the installed paths");
    std::string rotate = read_file(s.file("etc/logrotate.d/preforkd"));
    cr_assert(contains(rotate, "/usr/sbin/preforkd -p \"$PIDFILE\" -s reopen") &&
                  contains(rotate, ". /etc/default/preforkd"),
              "the logrotate snippet does not run /usr/sbin/preforkd -p PIDFILE -s reopen with PIDFILE "
              "from /etc/default/preforkd:\n%s",
              rotate.c_str());
    std::string man8 = read_file(s.file("usr/share/man/man8/preforkd.8"));
    cr_assert(!contains(man8, "/usr/local/sbin/preforkd"),
              "preforkd.8 installed with PREFIX=/usr still says /usr/local/sbin/preforkd");
    RunResult version = run({s.bin(), "-V"}, s.work);
    cr_assert(version.status == 0 && contains(version.out, project_version()),
              "installed preforkd -V: exit %d '%s'", version.status, version.out.c_str());
    if (executable("/usr/bin/readelf")) {
        RunResult sections = run({"/usr/bin/readelf", "-S", "-W", s.bin()}, s.work);
        cr_assert(sections.status == 0 && contains(sections.out, ".text") && !contains(sections.out, ".symtab") &&
                      !contains(sections.out, ".debug_info"),
                  "the installed binary is not stripped:\n%s", sections.out.c_str());
    }

    // A second install keeps the administrator's changes: the configuration,
    // the init script and the logrotate snippet.  The new init script goes
    // beside the changed one, under a name the init tools skip.
    std::string conf = s.file("etc/preforkd/preforkd.conf");
    std::string changed = read_file(conf) + "# changed by the administrator\n";
    write_file(conf, changed);
    std::string init_path = s.file("etc/init.d/preforkd");
    std::string shipped_init = read_file(init_path);
    std::string changed_init = shipped_init + "# changed by the administrator\n";
    write_file(init_path, changed_init, 0755);
    // The snippet as an older install left it, unchanged since: replaced.
    std::string rotate_path = s.file("etc/logrotate.d/preforkd");
    write_file(rotate_path, "# an older version\n");
    write_file(s.file("usr/share/preforkd/preforkd.logrotate"), "# an older version\n");
    RunResult again = make_staged("install", s.dest, s.work);
    MAKE_ASSERT(again, "second make install");
    cr_assert(read_file(conf) == changed, "the second make install overwrote the changed %s",
              conf.c_str());
    cr_assert(read_file(s.file("etc/preforkd/preforkd.conf.default")) != changed,
              "preforkd.conf.default holds the administrator's changes");
    cr_assert(read_file(init_path) == changed_init, "the second make install overwrote the changed %s", init_path.c_str());
    cr_assert(read_file(init_path + ".dpkg-dist") == shipped_init && contains(again.out, "keeping changed " + init_path),
              "the second make install did not put the new init script beside the changed one, or did not say "
              "so:\n%s",
              again.out.c_str());
    cr_assert(read_file(rotate_path) == rotate, "the second make install did not update the unchanged %s",
              rotate_path.c_str());
    cr_assert(!file_exists(rotate_path + ".dpkg-dist"), "an unchanged logrotate snippet got a .dpkg-dist");

    // Uninstall removes everything but what the administrator changed.
    RunResult un = make_staged("uninstall", s.dest, s.work);
    MAKE_ASSERT(un, "make uninstall");
    std::vector<std::string> left = files_under(s.dest);
    cr_assert((left == std::vector<std::string>{"etc/init.d/preforkd", "etc/preforkd/preforkd.conf"}),
              "after make uninstall, want only the changed etc/init.d/preforkd and etc/preforkd/preforkd.conf; "
              "left:%s",
              list(left).c_str());
    cr_assert(read_file(conf) == changed, "make uninstall altered the changed configuration");
    cr_assert(read_file(init_path) == changed_init, "make uninstall altered the changed init script");
}

// make uninstall must not pull the binary from under a running server: it
// refuses, naming the process, and removes nothing until the server stops.
Test(ops, make_uninstall_refuses_while_the_installed_server_runs, .timeout = 100) {
    Staged s = stage_install();
    MAKE_ASSERT(s.result, "make install");
    Daemon d = Daemon::prepare();
    d.pid = spawn({s.bin(), "-f", "-c", d.conf}, d.log);
    D_ASSERT(d, d.pid > 0 && d.wait_log("ready: generation 1").has_value(), "the installed preforkd did not start");
    std::vector<std::string> before = files_under(s.dest);

    RunResult refused = make_staged("uninstall", s.dest, s.work);
    D_ASSERT(d, refused.status != 0 && contains(refused.err, "is running (pid ") &&
                    contains(refused.err, "stop the server first"),
             "make uninstall while the installed server runs: exit %d (want a refusal naming the pid)\n%s%s",
             refused.status, refused.out.c_str(), refused.err.c_str());
    D_ASSERT(d, files_under(s.dest) == before, "the refused make uninstall removed files; left:%s",
             list(files_under(s.dest)).c_str());
    D_ASSERT(d, !is_gone(d.pid), "the server went away");

    D_ASSERT(d, d.signal(SIGTERM), "kill -TERM failed");
    D_ASSERT(d, wait_exit(d.pid, 10s) == 0, "master did not exit 0 after SIGTERM");
    D_ASSERT(d, wait_until([&] { return processes_running(s.bin()).empty(); }),
             "processes still run %s after the master exited: %s", s.bin().c_str(),
             join(processes_running(s.bin())).c_str());
    RunResult un = make_staged("uninstall", s.dest, s.work);
    MAKE_ASSERT(un, "make uninstall after the server stopped");
    D_ASSERT(d, !file_exists(s.bin()), "make uninstall left %s", s.bin().c_str());
    std::string reports = sanitizer_reports_in(d.dir);
    D_ASSERT(d, reports.empty(), "sanitizer report:\n%s", reports.c_str());
}

// PREFIX=/usr/local: the units go under the prefix, where systemd also
// looks, not into the distribution's /lib/systemd/system.
Test(ops, make_install_puts_units_under_a_local_prefix, .timeout = 100) {
    std::string work = make_tempdir();
    std::string dest = work + "/root";
    RunResult r = make_staged("install", dest, work, {-1, -1}, "/usr/local");
    MAKE_ASSERT(r, "make install PREFIX=/usr/local");
    for (const char* unit : {"preforkd.service", "preforkd.socket"}) {
        cr_assert(file_exists(dest + "/usr/local/lib/systemd/system/" + unit),
                  "make install PREFIX=/usr/local did not install usr/local/lib/systemd/system/%s; installed:%s",
                  unit, list(files_under(dest)).c_str());
        cr_assert(!file_exists(dest + "/lib/systemd/system/" + unit),
                  "make install PREFIX=/usr/local wrote lib/systemd/system/%s", unit);
    }
    std::string service = read_file(dest + "/usr/local/lib/systemd/system/preforkd.service");
    cr_assert(contains(service, "ExecStart=/usr/local/sbin/preforkd -f"),
              "preforkd.service does not start /usr/local/sbin/preforkd:\n%s", service.c_str());
    cr_assert(file_exists(dest + "/usr/local/sbin/preforkd"), "no usr/local/sbin/preforkd");
}

// A machine without the build dependencies: pkg-config finds nothing, as
// root (`id -u` says 0), with an apt-get that records its calls and installs
// nothing.  `make` and `make install` must stop with the list of what is
// missing and never run apt-get; `make check` and `make run` may run it once,
// then stop, never calling make again and again.
Test(ops, make_never_loops_or_installs_packages_unasked, .timeout = 100) {
    std::string work = make_tempdir();
    std::string bin = work + "/bin", calls = work + "/apt-get.calls";
    make_dir(bin);
    write_file(bin + "/pkg-config", "#!/bin/sh\nexit 1\n", 0755);
    write_file(bin + "/apt-get", "#!/bin/sh\necho \"$*\" >> " + calls + "\nexit 0\n", 0755);
    write_file(bin + "/id", "#!/bin/sh\necho 0\n", 0755);
    const char* path = std::getenv("PATH");
    auto make = [&](const std::string& target) {
        return run({"/usr/bin/env", "-u", "MAKEFLAGS", "-u", "MFLAGS", "-u", "MAKELEVEL",
                    "PATH=" + bin + ":" + (path != nullptr ? path : "/usr/bin:/bin"), "make", "--no-print-directory",
                    "-C", srcdir(), target, "BUILD=" + work + "/build", "DESTDIR=" + work + "/root",
                    "STAGE=" + work + "/stage"},
                   work, 60s);
    };
    auto installs = [&] {
        size_t n = 0;
        for (const auto& line : lines_of(read_file(calls)))
            if (line.find("install") != std::string::npos) ++n;
        return n;
    };

    for (const char* target : {"all", "install"}) {
        RunResult r = make(target);
        cr_assert(r.status != 0 && r.status != -1 && contains(r.err, "make deps"),
                  "make %s without dependencies: exit %d (want a failure naming 'make deps')\n%s%s", target,
                  r.status, r.out.c_str(), r.err.c_str());
        cr_assert(read_file(calls).empty(), "make %s ran apt-get: %s", target, read_file(calls).c_str());
    }
    cr_assert(files_under(work + "/root").empty(), "make install without dependencies installed:%s",
              list(files_under(work + "/root")).c_str());

    for (const char* target : {"check", "run"}) {
        write_file(calls, "");
        RunResult r = make(target);
        cr_assert(r.status != 0 && r.status != -1 && contains(r.err, "still missing"),
                  "make %s when apt-get does not help: exit %d (want a failure saying 'still missing')\n%s%s",
                  target, r.status, r.out.c_str(), r.err.c_str());
        cr_assert(installs() == 1, "make %s ran apt-get install %zu times, want once:\n%s", target, installs(),
                  read_file(calls).c_str());
    }
}

// The shipped configuration is complete and valid: with the two directories
// that belong to the machine (document root, log directory) pointed into the
// stage, `preforkd -t` accepts it as installed, www-data user and all.
Test(ops, installed_default_config_passes_the_config_test, .timeout = 100) {
    Staged s = stage_install();
    MAKE_ASSERT(s.result, "make install");
    cr_assert(is_directory(s.file("var/www/html")) && is_directory(s.file("var/log/preforkd")),
              "make install did not create var/www/html and var/log/preforkd");
    std::string conf = read_file(s.file("etc/preforkd/preforkd.conf"));
    cr_assert(contains(conf, "\"/var/www/html\"") && contains(conf, "\"www-data\"") &&
                  contains(conf, "/var/log/preforkd/access.log") && contains(conf, ":80\""),
              "the installed configuration does not serve /var/www/html on port 80 as www-data:\n%s",
              conf.c_str());
    conf = replace_all(conf, "\"/var/www/html\"", "\"" + s.file("var/www/html") + "\"");
    conf = replace_all(conf, "/var/log/preforkd/", s.file("var/log/preforkd") + "/");
    std::string copy = s.work + "/check.conf";
    write_file(copy, conf);
    RunResult r = run({s.bin(), "-t", "-c", copy}, s.work);
    cr_assert(r.status == 0 && contains(r.out, "configuration ok"),
              "preforkd -t on the installed configuration: exit %d\n%s%s", r.status,
              r.out.c_str(), r.err.c_str());
}

Test(ops, staged_install_and_uninstall_work_unprivileged, .timeout = 100) {
    std::pair<long, long> as{-1, -1};
    if (geteuid() == 0) {
        passwd* pw = getpwnam("nobody");
        if (pw == nullptr || !executable("/usr/bin/setpriv"))
            cr_skip("running as root without nobody or setpriv to drop to");
        as = {pw->pw_uid, pw->pw_gid};
    }
    std::string work = make_tempdir();
    if (as.first >= 0) {
        RunResult can = run({"/usr/bin/setpriv", "--reuid=" + std::to_string(as.first),
                             "--regid=" + std::to_string(as.second), "--clear-groups", "/usr/bin/test",
                             "-r", srcdir() + "/Makefile", "-a", "-r", absolute(daemon_binary())},
                            work);
        if (can.status != 0) cr_skip("nobody cannot read the source tree or the build");
    }
    if (as.first >= 0) cr_assert(chown(work.c_str(), as.first, as.second) == 0, "chown %s", work.c_str());
    std::string dest = work + "/root";
    RunResult in = make_staged("install", dest, work, as);
    MAKE_ASSERT(in, "unprivileged make install");
    for (const Installed& f : kInstalled)
        cr_assert(file_exists(dest + "/" + f.path), "unprivileged make install did not install %s",
                  f.path);
    RunResult un = make_staged("uninstall", dest, work, as);
    MAKE_ASSERT(un, "unprivileged make uninstall");
    std::vector<std::string> left = files_under(dest);
    cr_assert(left.empty(), "make uninstall of an unchanged install left:%s", list(left).c_str());
}

// ---- systemd ---------------------------------------------------------------------

Test(ops, systemd_units_pass_systemd_analyze_verify, .timeout = 100) {
    if (!executable("/usr/bin/systemd-analyze")) cr_skip("systemd-analyze is not installed");
    Staged s = stage_install();
    MAKE_ASSERT(s.result, "make install");

    // verify checks that ExecStart's binary exists: point the units at the
    // staged one (what /usr/sbin/preforkd will be once installed for real).
    std::string units = s.work + "/units";
    make_dir(units);
    for (const char* name : {"preforkd.service", "preforkd.socket"}) {
        std::string text = read_file(s.file(std::string("lib/systemd/system/") + name));
        write_file(units + "/" + name, replace_all(text, "/usr/sbin/preforkd", s.bin()));
    }
    RunResult r = run({"/usr/bin/systemd-analyze", "verify", "--man=no", units + "/preforkd.socket",
                       units + "/preforkd.service"},
                      s.work, 60s);
    // verify exits 0 on unknown keys and bad values: its stderr is the verdict.
    cr_assert(r.status == 0 && r.err.empty() && r.out.empty(),
              "systemd-analyze verify: exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s", r.status,
              r.out.c_str(), r.err.c_str());

    std::string service = read_file(units + "/preforkd.service");
    // RuntimeDirectory=preforkd: /run/preforkd, where preforkd.conf(5)'s
    // first example puts its unix socket.
    for (const char* want : {"Type=notify", "KillMode=mixed", "KillSignal=SIGQUIT", "NoNewPrivileges=yes",
                             "ProtectSystem=full", "ProtectHome=yes", "PrivateTmp=yes",
                             "RuntimeDirectory=preforkd"})
        cr_assert(contains(service, std::string("\n") + want + "\n"), "preforkd.service lacks %s", want);
    auto pre = unit_values(service, "ExecStartPre");
    cr_assert(pre.size() == 1 && contains(pre[0], " -t "), "ExecStartPre does not run preforkd -t: %s",
              pre.empty() ? "(none)" : pre[0].c_str());
    auto reload = unit_values(service, "ExecReload");
    cr_assert(reload.size() == 1 && contains(reload[0], "-s reload") && contains(reload[0], "-p ${PIDFILE}"),
              "ExecReload does not run preforkd -p ${PIDFILE} -s reload: %s",
              reload.empty() ? "(none)" : reload[0].c_str());
    auto start = unit_values(service, "ExecStart");
    cr_assert(start.size() == 1 && contains(start[0], "-p ${PIDFILE}"),
              "ExecStart does not name the pid file that ExecReload uses: %s",
              start.empty() ? "(none)" : start[0].c_str());
    auto stop = unit_values(service, "TimeoutStopSec");
    cr_assert(stop.size() == 1 && std::atoi(stop[0].c_str()) > 30,
              "TimeoutStopSec must exceed the default graceful_timeout of 30 s");

    // The socket unit must bind exactly what the default configuration lists.
    auto streams = unit_values(read_file(units + "/preforkd.socket"), "ListenStream");
    std::set<std::string> sockets(streams.begin(), streams.end());
    std::set<std::string> listen = listen_entries(read_file(s.file("etc/preforkd/preforkd.conf")));
    std::vector<std::string> a(sockets.begin(), sockets.end()), b(listen.begin(), listen.end());
    cr_assert(sockets == listen, "preforkd.socket ListenStream=%s\ndoes not match listen in preforkd.conf:%s",
              list(a).c_str(), list(b).c_str());
}

// `systemctl reload` runs ExecReload and fails when it exits non-zero: the
// command must wait for the master's verdict, so that a reload the master
// rejected is reported, with its reason, and not as a success.
Test(ops, systemd_exec_reload_reports_the_masters_verdict, .timeout = 60) {
    Daemon d = Daemon::prepare();
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, wait_until([&] { return file_exists(d.pid_file); }), "no pid file %s", d.pid_file.c_str());
    auto lines = unit_values(read_file(srcdir() + "/init/preforkd.service"), "ExecReload");
    D_ASSERT(d, lines.size() == 1, "want one ExecReload= line, have %zu", lines.size());
    // As systemd runs it: Environment= and the EnvironmentFile= values, the
    // installed binary (here the one under test).
    std::string command = replace_all(lines[0], "@SBINDIR@/preforkd", daemon_binary());
    auto exec_reload = [&] {
        return run({"/usr/bin/env", "CONFIG=" + d.conf, "PIDFILE=" + d.pid_file, "DAEMON_OPTS=", "/bin/sh", "-c",
                    command},
                   d.dir, 60s);
    };

    RunResult good = exec_reload();
    D_ASSERT(d, good.status == 0, "ExecReload with a good configuration: exit %d\n%s%s", good.status,
             good.out.c_str(), good.err.c_str());
    D_ASSERT(d, d.wait_log("ready: generation 2").has_value(), "no 'ready: generation 2' after ExecReload");

    // Parses, but the master cannot apply it: the address is taken.
    int taken = free_port();
    int holder = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(taken));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    D_ASSERT(d, holder >= 0 && ::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(holder, 1) == 0,
             "could not hold port %d: %s", taken, std::strerror(errno));
    Options o = d.opts;
    o.listen = {"127.0.0.1:0", "127.0.0.1:" + std::to_string(taken)};
    d.write_config(o);
    RunResult rejected = exec_reload();
    ::close(holder);
    D_ASSERT(d, rejected.status == 1 && contains(rejected.err, "Address already in use"),
             "ExecReload of a configuration the master rejected: exit %d, stderr '%s' (want 1 and the reason)",
             rejected.status, rejected.err.c_str());

    // A syntax error: rejected with the file and line.
    d.write_config_text(config_text(d.opts) + "workers.max = ;\n");
    RunResult broken = exec_reload();
    D_ASSERT(d, broken.status == 1 && contains(broken.err, d.conf + ":"),
             "ExecReload of a broken configuration: exit %d, stderr '%s'", broken.status, broken.err.c_str());
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after the rejected reloads: %s", r.error.c_str());
    D_ASSERT(d, d.count_log("ready: generation 3") == 0, "a rejected reload started generation 3");

    D_ASSERT(d, d.signal(SIGTERM), "kill -TERM failed");
    D_ASSERT(d, wait_exit(d.pid, 10s) == 0, "master did not exit 0 after SIGTERM");
    NO_SANITIZER_REPORTS();
}

Test(ops, sd_notify_ready_reloading_stopping, .timeout = 60) {
    Daemon d = Daemon::prepare();
    std::string sock = d.path("notify.sock");
    int fd = notify_listener(sock);
    cr_assert(fd >= 0, "cannot bind the notify socket %s: %s", sock.c_str(), std::strerror(errno));
    setenv("NOTIFY_SOCKET", sock.c_str(), 1);
    bool started = d.start();
    unsetenv("NOTIFY_SOCKET");
    D_ASSERT(d, started, "daemon did not become ready");

    std::vector<std::string> seen;
    auto ready = wait_notify(fd, "READY", "1", seen);
    D_ASSERT(d, ready.has_value(), "no READY=1 on the notify socket; got:%s", joined(seen).c_str());
    D_ASSERT(d, field(*ready, "MAINPID") == std::to_string(d.pid),
             "READY=1 came with MAINPID=%s, want the master %d",
             field(*ready, "MAINPID").value_or("(none)").c_str(), d.pid);
    D_ASSERT(d, field(*ready, "STATUS").has_value(), "READY=1 without a STATUS=: [%s]", ready->c_str());

    // A reload: RELOADING=1 stamped with CLOCK_MONOTONIC, then READY=1.
    long long before = monotonic_usec();
    seen.clear();
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    auto reloading = wait_notify(fd, "RELOADING", "1", seen);
    D_ASSERT(d, reloading.has_value(), "no RELOADING=1 after SIGHUP; got:%s", joined(seen).c_str());
    long long stamp = std::atoll(field(*reloading, "MONOTONIC_USEC").value_or("0").c_str());
    D_ASSERT(d, stamp >= before && stamp <= monotonic_usec(),
             "RELOADING=1 with MONOTONIC_USEC=%lld, want between %lld and now: [%s]", stamp, before,
             reloading->c_str());
    auto again = wait_notify(fd, "READY", "1", seen);
    D_ASSERT(d, again.has_value(), "no READY=1 after RELOADING=1; got:%s", joined(seen).c_str());
    D_ASSERT(d, d.wait_log("ready: generation 2").has_value(), "no 'ready: generation 2' in the log");

    // A rejected reload must end the reloading state too, or systemctl
    // reload would hang until its timeout.
    std::string good = read_file(d.conf);
    d.write_config_text("listen = ( \"127.0.0.1:0\" ;\n");
    seen.clear();
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, wait_notify(fd, "RELOADING", "1", seen).has_value(),
             "no RELOADING=1 after SIGHUP with a broken configuration; got:%s", joined(seen).c_str());
    D_ASSERT(d, wait_notify(fd, "READY", "1", seen).has_value(),
             "no READY=1 after a rejected reload; got:%s", joined(seen).c_str());
    d.write_config_text(good);

    seen.clear();
    D_ASSERT(d, d.signal(SIGTERM), "kill -TERM failed");
    D_ASSERT(d, wait_notify(fd, "STOPPING", "1", seen).has_value(),
             "no STOPPING=1 after SIGTERM; got:%s", joined(seen).c_str());
    int status = wait_exit(d.pid, 10s);
    D_ASSERT(d, status == 0, "master exit status %d after SIGTERM, want 0", status);
    ::close(fd);
    NO_SANITIZER_REPORTS();
}

// An in-place upgrade is a reload to systemd: RELOADING=1, then READY=1
// from the same MAINPID, which the new image learns from NOTIFY_SOCKET
// handed on across the exec.
Test(ops, sd_notify_upgrade_reloading_then_ready_with_the_same_mainpid, .timeout = 90) {
    Daemon d = Daemon::prepare();
    std::string sock = d.path("notify.sock");
    int fd = notify_listener(sock);
    cr_assert(fd >= 0, "cannot bind the notify socket %s: %s", sock.c_str(), std::strerror(errno));
    setenv("NOTIFY_SOCKET", sock.c_str(), 1);
    bool started = d.start();
    unsetenv("NOTIFY_SOCKET");
    D_ASSERT(d, started, "daemon did not become ready");
    std::vector<std::string> seen;
    D_ASSERT(d, wait_notify(fd, "READY", "1", seen).has_value(), "no READY=1 at start; got:%s", joined(seen).c_str());

    seen.clear();
    RunResult up = run({daemon_binary(), "-s", "upgrade", "-p", d.pid_file}, d.dir, 90s);
    D_ASSERT(d, up.status == 0, "-s upgrade exited %d: %s%s", up.status, up.out.c_str(), up.err.c_str());
    auto reloading = wait_notify(fd, "RELOADING", "1", seen);
    D_ASSERT(d, reloading.has_value(), "no RELOADING=1 for the upgrade; got:%s", joined(seen).c_str());
    auto ready = wait_notify(fd, "READY", "1", seen);
    D_ASSERT(d, ready.has_value(), "no READY=1 after the upgrade; got:%s", joined(seen).c_str());
    D_ASSERT(d, field(*ready, "MAINPID") == std::to_string(d.pid),
             "READY=1 after the upgrade came with MAINPID=%s, want the master %d",
             field(*ready, "MAINPID").value_or("(none)").c_str(), d.pid);
    D_ASSERT(d, d.wait_log("ready: generation 2").has_value(), "no 'ready: generation 2' in the log");

    seen.clear();
    D_ASSERT(d, d.signal(SIGTERM), "kill -TERM failed");
    D_ASSERT(d, wait_notify(fd, "STOPPING", "1", seen).has_value(),
             "no STOPPING=1 from the upgraded master; got:%s", joined(seen).c_str());
    D_ASSERT(d, wait_exit(d.pid, 10s) == 0, "master did not exit 0 after SIGTERM");
    ::close(fd);
    NO_SANITIZER_REPORTS();
}

Test(ops, socket_activation_adopts_the_socket_and_keeps_it_across_reload, .timeout = 60) {
    if (!executable("/usr/bin/systemd-socket-activate")) cr_skip("systemd-socket-activate is not installed");
    Options o;
    int port = free_port();
    std::string address = "127.0.0.1:" + std::to_string(port);
    o.listen = {address};
    Daemon d = Daemon::prepare(o);
    // systemd-socket-activate binds, waits for the first connection, then
    // execs preforkd (same pid) with LISTEN_FDS=1 and LISTEN_PID.
    std::vector<std::string> argv = {"/usr/bin/systemd-socket-activate", "-l", address};
    for (const auto& var : sanitizer_env(d.dir)) argv.push_back("--setenv=" + var);
    for (const auto& arg : {daemon_binary(), std::string("-f"), std::string("-c"), d.conf}) argv.push_back(arg);
    d.pid = spawn(argv, d.log);
    D_ASSERT(d, d.pid > 0, "cannot spawn systemd-socket-activate");
    int fd = -1;
    D_ASSERT(d, wait_until([&] { return (fd = connect_tcp(port)) >= 0 || is_gone(d.pid); }) && fd >= 0,
             "systemd-socket-activate never listened on %s", address.c_str());
    D_ASSERT(d, send_all(fd, request("GET", "/x.txt", false)), "send failed");
    std::string buffer;
    Response first = read_response(fd, buffer);
    ::close(fd);
    D_ASSERT(d, first.ok && first.status == 200 && first.body == "hello from preforkd\n",
             "the connection that triggered activation: %s '%s'", first.error.c_str(),
             first.status_line.c_str());
    D_ASSERT(d, d.wait_log("using the socket passed by systemd for " + address).has_value(),
             "no log line 'using the socket passed by systemd for %s'", address.c_str());
    D_ASSERT(d, d.count_log("bind(") == 0, "preforkd bound a socket itself");
    D_ASSERT(d, cmdline_of(d.pid).rfind("preforkd: master", 0) == 0,
             "pid %d is not the preforkd master: '%s'", d.pid, cmdline_of(d.pid).c_str());
    std::string inode = tcp_inode(port, 0, "0A");
    D_ASSERT(d, !inode.empty() && fd_of_socket(d.pid, inode) == 3,
             "the master does not hold the passed socket (inode %s) as fd 3", inode.c_str());

    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
    D_ASSERT(d, d.wait_log("ready: generation 2").has_value(), "no 'ready: generation 2' after SIGHUP");
    Response after = http_get(port, "/x.txt");
    D_ASSERT(d, after.ok && after.status == 200, "GET on %s after the reload: %s '%s'", address.c_str(),
             after.error.c_str(), after.status_line.c_str());
    D_ASSERT(d, tcp_inode(port, 0, "0A") == inode && fd_of_socket(d.pid, inode) == 3,
             "the reload replaced the socket systemd passed (inode %s, now %s)", inode.c_str(),
             tcp_inode(port, 0, "0A").c_str());

    D_ASSERT(d, d.signal(SIGTERM), "kill -TERM failed");
    int status = wait_exit(d.pid, 10s);
    D_ASSERT(d, status == 0, "master exit status %d after SIGTERM, want 0", status);
    std::string reports = sanitizer_reports_in(d.dir);
    D_ASSERT(d, reports.empty(), "sanitizer report:\n%s", reports.c_str());
}

// ---- SysV init ---------------------------------------------------------------------

Test(ops, sysv_script_starts_reloads_and_stops_the_staged_install, .timeout = 100) {
    Staged s = stage_install();
    MAKE_ASSERT(s.result, "make install");
    Options o;
    int port = free_port();
    o.listen = {"127.0.0.1:" + std::to_string(port)};
    Daemon d = Daemon::prepare(o);
    d.port = port;
    std::string good = read_file(d.conf);

    RunResult start = sysv(s, d, "start");
    SYSV_ASSERT(d, start, start.status == 0, "init script start");
    D_ASSERT(d, file_exists(d.pid_file), "no pid file %s after start (PIDFILE)", d.pid_file.c_str());
    pid_t master = pid_in(d.pid_file);
    track(master);
    D_ASSERT(d, master > 0 && cmdline_of(master).rfind("preforkd: master", 0) == 0,
             "pid file names %d: '%s'", master, cmdline_of(master).c_str());
    Response r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after start: %s '%s'", r.error.c_str(), r.status_line.c_str());

    RunResult status = sysv(s, d, "status");
    SYSV_ASSERT(d, status, status.status == 0, "status of a running server");
    RunResult twice = sysv(s, d, "start");
    SYSV_ASSERT(d, twice, twice.status == 0 && pid_in(d.pid_file) == master,
                "start of a running server (LSB: 0, same server)");

    // A broken configuration is refused before the master is signalled.
    auto workers = sorted(children_of(master));
    d.write_config_text(good + "workers = { max = 0; };\n");
    RunResult bad = sysv(s, d, "reload");
    SYSV_ASSERT(d, bad, bad.status != 0 && contains(bad.err, d.conf + ":"),
                "reload with a broken configuration (refused, naming the file and line)");
    D_ASSERT(d, !is_gone(master) && pid_in(d.pid_file) == master, "the master went away");
    D_ASSERT(d, sorted(children_of(master)) == workers, "workers changed: %s, were %s",
             join(children_of(master)).c_str(), join(workers).c_str());
    r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after the refused reload: %s", r.error.c_str());

    // A good one is applied: a new generation of workers replaces the old.
    d.write_config_text(good);
    RunResult reload = sysv(s, d, "reload");
    SYSV_ASSERT(d, reload, reload.status == 0, "reload with a good configuration");
    D_ASSERT(d, wait_until([&] {
                 auto now = children_of(master);
                 return !now.empty() && std::none_of(workers.begin(), workers.end(),
                                                     [](pid_t w) { return !is_gone(w); });
             }),
             "no new generation after reload: workers %s, were %s", join(children_of(master)).c_str(),
             join(workers).c_str());
    // Each message on a line of its own: the "Reloading" line ends with
    // its status, and the master's verdict follows it.
    auto line_with = [](const std::string& text, const std::string& needle) {
        for (const auto& line : lines_of(text))
            if (contains(line, needle)) return line;
        return std::string();
    };
    std::string reloading = line_with(reload.out, "Reloading");
    SYSV_ASSERT(d, reload, !reloading.empty() && reloading.back() == '.' && !contains(reloading, "preforkd: reload"),
                "the Reloading line runs together with the verdict");
    SYSV_ASSERT(d, reload, !line_with(reload.out, "preforkd: reload: generation").empty(),
                "no verdict line after the Reloading line");

    // A configuration that passes the test but that the master rejects (its
    // address is taken): the reload fails, with the reason on its own line.
    int holder = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    D_ASSERT(d, holder >= 0 && ::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                    ::listen(holder, 1) == 0 && ::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &alen) == 0,
             "could not hold a port: %s", std::strerror(errno));
    Options taken = o;
    taken.listen.push_back("127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
    d.write_config(taken);
    RunResult refused = sysv(s, d, "reload");
    ::close(holder);
    d.write_config_text(good);
    std::string failed_line = line_with(refused.out, "Reloading");
    std::string reason = line_with(refused.out + refused.err, "Address already in use");
    SYSV_ASSERT(d, refused, refused.status != 0 && contains(failed_line, "failed") && !reason.empty() &&
                                !contains(failed_line, "Address already in use"),
                "reload the master rejected (non-zero, 'failed', the reason on its own line)");
    RunResult force = sysv(s, d, "force-reload");
    SYSV_ASSERT(d, force, force.status == 0, "force-reload");
    RunResult test = sysv(s, d, "configtest");
    SYSV_ASSERT(d, test, test.status == 0 && contains(test.out, "configuration ok"), "configtest");

    RunResult restart = sysv(s, d, "restart");
    SYSV_ASSERT(d, restart, restart.status == 0, "restart");
    D_ASSERT(d, wait_exit(master, 5s) != -1, "the old master %d outlived restart", master);
    pid_t second = pid_in(d.pid_file);
    track(second);
    D_ASSERT(d, second > 0 && second != master && !is_gone(second), "pid file after restart: '%s'",
             read_file(d.pid_file).c_str());
    r = http_get(d.port, "/x.txt");
    D_ASSERT(d, r.ok && r.status == 200, "GET after restart: %s", r.error.c_str());

    RunResult stop = sysv(s, d, "stop");
    SYSV_ASSERT(d, stop, stop.status == 0, "stop");
    D_ASSERT(d, wait_exit(second, 5s) != -1, "master %d still running after stop", second);
    D_ASSERT(d, !file_exists(d.pid_file), "pid file left after stop");
    D_ASSERT(d, connect_tcp(d.port) < 0, "port %d still accepts after stop", d.port);
    RunResult stopped = sysv(s, d, "status");
    SYSV_ASSERT(d, stopped, stopped.status == 3, "status of a stopped server (LSB: 3)");
    RunResult stop_again = sysv(s, d, "stop");
    SYSV_ASSERT(d, stop_again, stop_again.status == 0, "stop of a stopped server (LSB: 0)");

    // A pid file whose process is gone: LSB status 1.
    write_file(d.pid_file, std::to_string(second) + "\n");
    RunResult dead = sysv(s, d, "status");
    SYSV_ASSERT(d, dead, dead.status == 1, "status with a stale pid file (LSB: 1)");
    RunResult usage = sysv(s, d, "bogus");
    SYSV_ASSERT(d, usage, usage.status == 2 && contains(usage.err, "Usage:"), "unknown action");
    std::string reports = sanitizer_reports_in(d.dir);
    D_ASSERT(d, reports.empty(), "sanitizer report:\n%s", reports.c_str());
}

// The script finds the server through PIDFILE alone: with a configuration
// that is invalid for the moment (an edit in progress), status still says
// "running" and stop still stops it.
Test(ops, sysv_status_and_stop_do_not_read_the_configuration, .timeout = 100) {
    Staged s = stage_install();
    MAKE_ASSERT(s.result, "make install");
    std::string init = read_file(s.file("etc/init.d/preforkd"));
    cr_assert(!contains(init, "-T "), "the init script still reads the configuration (preforkd -T)");
    Options o;
    int port = free_port();
    o.listen = {"127.0.0.1:" + std::to_string(port)};
    Daemon d = Daemon::prepare(o);
    d.port = port;
    // The configuration names another pid file: the script's PIDFILE wins,
    // because the server is started with -p PIDFILE.
    std::string elsewhere = d.path("config-names-this.pid");
    std::string conf = read_file(d.conf);
    cr_assert(contains(conf, "pid_file = \"preforkd.pid\";"), "the test configuration has no pid_file line");
    d.write_config_text(replace_all(conf, "pid_file = \"preforkd.pid\";", "pid_file = \"" + elsewhere + "\";"));
    RunResult start = sysv(s, d, "start");
    SYSV_ASSERT(d, start, start.status == 0, "init script start");
    D_ASSERT(d, wait_until([&] { return file_exists(d.pid_file); }), "no pid file %s (PIDFILE) after start",
             d.pid_file.c_str());
    D_ASSERT(d, !file_exists(elsewhere), "the server wrote the configuration's pid file, not PIDFILE");
    pid_t master = pid_in(d.pid_file);
    track(master);

    d.write_config_text("workers = {\n");
    RunResult test = sysv(s, d, "configtest");
    SYSV_ASSERT(d, test, test.status != 0, "configtest of the half-edited configuration");
    RunResult status = sysv(s, d, "status");
    SYSV_ASSERT(d, status, status.status == 0 && contains(status.out, std::to_string(master)),
                "status of a running server while the configuration is invalid (LSB: 0, naming the pid)");
    RunResult stop = sysv(s, d, "stop");
    SYSV_ASSERT(d, stop, stop.status == 0, "stop while the configuration is invalid");
    D_ASSERT(d, wait_exit(master, 10s) != -1, "master %d still running after stop", master);
    D_ASSERT(d, connect_tcp(d.port) < 0, "port %d still accepts after stop", d.port);
    RunResult stopped = sysv(s, d, "status");
    SYSV_ASSERT(d, stopped, stopped.status == 3, "status after stop (LSB: 3)");
    std::string reports = sanitizer_reports_in(d.dir);
    D_ASSERT(d, reports.empty(), "sanitizer report:\n%s", reports.c_str());
}

Test(ops, sysv_script_passes_sh_n_and_shellcheck, .timeout = 60) {
    std::string work = make_tempdir();
    std::string script = srcdir() + "/init/preforkd";
    cr_assert(mode_of(script) & 0100, "%s is not executable", script.c_str());
    for (const char* shell : {"/bin/sh", "/bin/dash", "/bin/bash"}) {
        if (!executable(shell)) continue;
        RunResult n = run({shell, "-n", script}, work);
        cr_assert(n.status == 0 && n.err.empty(), "%s -n %s: exit %d\n%s", shell, script.c_str(),
                  n.status, n.err.c_str());
    }
    if (!executable("/usr/bin/shellcheck")) cr_skip("shellcheck is not installed");
    RunResult sc = run({"/usr/bin/shellcheck", "--shell=sh", "--severity=style", script}, work, 60s);
    cr_assert(sc.status == 0, "shellcheck %s: exit %d\n%s%s", script.c_str(), sc.status, sc.out.c_str(),
              sc.err.c_str());
}

// ---- logrotate ----------------------------------------------------------------------

// The log says which version starts, and routine worker exits (a reload
// retiring a generation) stay out of it unless level is debug; a worker
// that dies is still reported.
Test(ops, log_names_the_version_and_keeps_routine_worker_exits_at_debug, .timeout = 60) {
    for (const char* level : {"info", "debug"}) {
        Options o;
        o.level = level;
        Daemon d = Daemon::prepare(o);
        D_ASSERT(d, d.start(), "daemon did not become ready (level %s)", level);
        std::string version = "preforkd " + project_version() + " starting";
        std::string text = d.log_text();
        size_t at = text.find(version), started = text.find("master process started");
        D_ASSERT(d, !project_version().empty() && at != std::string::npos && at < started,
                 "no '%s' line before 'master process started'", version.c_str());
        auto first = d.workers();
        D_ASSERT(d, d.signal(SIGHUP), "kill -HUP failed");
        D_ASSERT(d, d.wait_log("reload: generation 1 retired").has_value(), "generation 1 never retired");
        size_t clean = d.count_log("exited with status 0");
        if (std::string(level) == "info") {
            D_ASSERT(d, clean == 0, "%zu routine 'exited with status 0' lines at level info", clean);
            auto now = d.workers();
            D_ASSERT(d, !now.empty(), "no workers after the reload");
            pid_t victim = now.front();
            D_ASSERT(d, ::kill(victim, SIGKILL) == 0, "kill -KILL %d failed", victim);
            D_ASSERT(d, d.wait_log(format("worker %d exited on signal 9", victim)).has_value(),
                     "the killed worker %d is not in the log at level info", victim);
        } else {
            D_ASSERT(d, clean >= first.size(), "%zu 'exited with status 0' lines at level debug for %zu retired workers",
                     clean, first.size());
        }
        D_ASSERT(d, d.signal(SIGTERM), "kill -TERM failed");
        D_ASSERT(d, wait_exit(d.pid, 10s) == 0, "master did not exit 0 after SIGTERM");
    }
    NO_SANITIZER_REPORTS();
}

// The access log preforkd creates has the owner, group and mode that the
// shipped snippet's `create` line gives it after a rotation, so nothing
// changes at the first one.
Test(ops, access_log_is_created_as_logrotate_creates_it, .timeout = 60) {
    std::string snippet = read_file(srcdir() + "/etc/preforkd.logrotate");
    std::string create;
    for (const auto& line : lines_of(snippet)) {
        size_t b = line.find_first_not_of(" \t");
        if (b != std::string::npos && line.compare(b, 7, "create ") == 0) create = line.substr(b + 7);
    }
    unsigned mode = 0;
    char user[64] = "", group_name[64] = "";
    cr_assert(std::sscanf(create.c_str(), "%o %63s %63s", &mode, user, group_name) == 3,
              "no `create MODE USER GROUP` line in etc/preforkd.logrotate:\n%s", snippet.c_str());
    passwd* pw = getpwnam(user);
    group* gr = getgrnam(group_name);
    if (geteuid() != 0 || pw == nullptr || gr == nullptr || pw->pw_uid != 0)
        cr_skip("needs root and the group %s (the master gives its log that group as root only)", group_name);
    uid_t want_uid = pw->pw_uid;
    gid_t want_gid = gr->gr_gid;

    Options o;
    o.access_log = "logs/access.log";
    Daemon d = Daemon::prepare(o);
    make_dir(d.path("logs"));
    std::string log = d.path("logs/access.log");
    D_ASSERT(d, !file_exists(log), "%s exists before the start", log.c_str());
    // A umask that would otherwise give the file another mode.
    mode_t old_mask = ::umask(0002);
    bool started = d.start();
    ::umask(old_mask);
    D_ASSERT(d, started, "daemon did not become ready");
    struct stat st{};
    D_ASSERT(d, ::stat(log.c_str(), &st) == 0, "no access log %s", log.c_str());
    D_ASSERT(d, (st.st_mode & 07777) == mode && st.st_uid == want_uid && st.st_gid == want_gid,
             "the new access log is %04o uid %u gid %u; logrotate creates %04o %s (%u) %s (%u)",
             st.st_mode & 07777, st.st_uid, st.st_gid, mode, user, want_uid, group_name, want_gid);

    // Renamed by hand and reopened: the new file is made the same way.
    D_ASSERT(d, ::rename(log.c_str(), (log + ".1").c_str()) == 0, "rename failed");
    D_ASSERT(d, d.signal(SIGUSR1), "kill -USR1 failed");
    D_ASSERT(d, d.wait_log("reopened " + log).has_value(), "no 'reopened %s'", log.c_str());
    D_ASSERT(d, ::stat(log.c_str(), &st) == 0 && (st.st_mode & 07777) == mode && st.st_gid == want_gid,
             "the reopened access log is %04o gid %u", st.st_mode & 07777, st.st_gid);
    D_ASSERT(d, d.signal(SIGTERM), "kill -TERM failed");
    D_ASSERT(d, wait_exit(d.pid, 10s) == 0, "master did not exit 0 after SIGTERM");
    NO_SANITIZER_REPORTS();
}

Test(ops, logrotate_under_load_loses_no_line, .timeout = 90) {
    const std::string logrotate = "/usr/sbin/logrotate";
    if (!executable(logrotate)) cr_skip("logrotate is not installed");
    Options o;
    o.access_log = "logs/access.log";
    Daemon d = Daemon::prepare(o);
    make_dir(d.path("logs"));
    D_ASSERT(d, d.start(), "daemon did not become ready");
    D_ASSERT(d, wait_until([&] { return file_exists(d.pid_file); }), "no pid file %s", d.pid_file.c_str());
    std::string current = d.path("logs/access.log"), rotated = current + ".1";

    // The shipped snippet, pointed at this test's log, binary and defaults
    // file, which names the daemon's pid file as PIDFILE.
    std::string snippet = read_file(srcdir() + "/etc/preforkd.logrotate");
    D_ASSERT(d, contains(snippet, "/var/log/preforkd/*.log") && contains(snippet, "@SBINDIR@/preforkd -p \"$PIDFILE\" -s reopen") &&
                    contains(snippet, "@SYSCONFDIR@/default/preforkd"),
             "etc/preforkd.logrotate no longer looks as this test expects:\n%s", snippet.c_str());
    std::string defaults = d.path("default-preforkd");
    write_file(defaults, "DAEMON_OPTS=\"\"\nPIDFILE=\"" + d.pid_file + "\"\n");
    snippet = replace_all(snippet, "/var/log/preforkd/*.log", d.path("logs/*.log"));
    snippet = replace_all(snippet, "@SBINDIR@/preforkd", daemon_binary());
    snippet = replace_all(snippet, "@SYSCONFDIR@/default/preforkd", defaults);
    if (geteuid() != 0 || getgrnam("adm") == nullptr)
        snippet = replace_all(snippet, "create 0640 root adm", "create");
    std::string conf = d.path("logrotate.conf");
    write_file(conf, snippet);

    // A client making one request after another, for at least 2000 requests
    // and at least 200 after the rotation returned.
    std::atomic<int> made{0}, failed{0};
    std::atomic<bool> rotated_flag{false};
    std::atomic<int> after_rotation{0};
    std::thread client([&] {
        while (made < 2000 || after_rotation < 200) {
            if (made > 20000) break;   // bounded whatever happens
            Response r = http_get(d.port, "/x.txt");
            if (!r.ok || r.status != 200) ++failed;
            ++made;
            if (rotated_flag) ++after_rotation;
        }
    });
    bool loaded = wait_until([&] { return line_count(current) >= 300; });
    // The administrator is in the middle of editing the configuration: the
    // hook must not need it.
    std::string good = read_file(d.conf);
    d.write_config_text(good + "workers = {\n");
    RunResult rot = loaded ? run({logrotate, "-f", "-s", d.path("logrotate.state"), conf}, d.dir, 30s)
                           : RunResult{};
    rotated_flag = true;
    client.join();
    D_ASSERT(d, loaded, "the access log never reached 300 lines (%zu)", line_count(current));
    D_ASSERT(d, rot.status == 0, "logrotate -f: exit %d\n%s%s", rot.status, rot.out.c_str(), rot.err.c_str());
    D_ASSERT(d, failed == 0, "%d of %d requests failed", failed.load(), made.load());
    D_ASSERT(d, file_exists(rotated), "logrotate did not rename the log to %s", rotated.c_str());
    D_ASSERT(d, d.wait_log("reopened " + current).has_value(), "no log line 'reopened %s'", current.c_str());

    // Once the reopen was done and one more request was logged to the new
    // file, the rotated file never grows again.
    Response marker = http_get(d.port, "/after-the-reopen");
    D_ASSERT(d, marker.ok && marker.status == 404, "GET /after-the-reopen: %s '%s'", marker.error.c_str(),
             marker.status_line.c_str());
    D_ASSERT(d, wait_until([&] { return contains(read_file(current), "/after-the-reopen"); }),
             "the request after the reopen is not in the new %s", current.c_str());
    size_t settled = line_count(rotated);
    for (int i = 0; i < 50; ++i) {
        Response r = http_get(d.port, "/x.txt");
        D_ASSERT(d, r.ok && r.status == 200, "GET after the rotation: %s", r.error.c_str());
    }
    int total = made + 1 + 50;
    bool all = wait_until([&] { return static_cast<int>(line_count(rotated) + line_count(current)) >= total; }, 5s);
    size_t in_rotated = line_count(rotated), in_current = line_count(current);
    D_ASSERT(d, in_rotated == settled, "%zu lines went to the rotated file after the reopen",
             in_rotated - settled);
    D_ASSERT(d, all && static_cast<int>(in_rotated + in_current) == total,
             "%d requests but %zu lines in %s and %zu in %s", total, in_rotated, rotated.c_str(), in_current,
             current.c_str());
    D_ASSERT(d, in_rotated >= 300 && in_current >= 200, "rotation not under load: %zu rotated, %zu new lines",
             in_rotated, in_current);

    D_ASSERT(d, d.signal(SIGTERM), "kill -TERM failed");
    D_ASSERT(d, wait_exit(d.pid, 10s) == 0, "master did not exit 0 after SIGTERM");

    // A stopped server (no pid file): nothing to reopen, and no error.
    write_file(current, "a line written while stopped\n");
    RunResult stopped = run({logrotate, "-f", "-s", d.path("logrotate.state"), conf}, d.dir, 30s);
    D_ASSERT(d, stopped.status == 0, "logrotate -f with the server stopped: exit %d\n%s%s", stopped.status,
             stopped.out.c_str(), stopped.err.c_str());
    // A pid file no master holds (a killed server): the hook cannot reopen
    // the log, and logrotate must say so rather than succeed silently.
    write_file(d.pid_file, std::to_string(d.pid) + "\n");
    write_file(current, "a line written after the kill\n");
    RunResult stale = run({logrotate, "-f", "-s", d.path("logrotate.state"), conf}, d.dir, 30s);
    D_ASSERT(d, stale.status != 0 && contains(stale.out + stale.err, "stale pid file " + d.pid_file),
             "logrotate -f with a stale pid file: exit %d (want non-zero, naming the pid file)\n%s%s",
             stale.status, stale.out.c_str(), stale.err.c_str());
    NO_SANITIZER_REPORTS();
}
