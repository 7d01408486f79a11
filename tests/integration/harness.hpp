// harness.hpp - helpers for the integration tests: start the real preforkd
// binary with a temporary configuration and talk to it the way a user would.
//
// Criterion runs every test in its own process (in parallel, -j2).  So each
// test gets its own temporary directory (mkdtemp under /tmp, 0755), its own
// ports (the daemon binds 127.0.0.1:0 and the log says which port it got) and
// its own daemon.  A failed cr_assert longjmps out of the test and skips C++
// destructors, so nothing here relies on RAII for clean-up: every process and
// directory is recorded in a per-process registry, and each suite's .fini
// calls itest::cleanup(), which kills and reaps every process by pid (and
// their children: the test process is a child subreaper, so orphaned workers
// and double-forked daemons end up as our children) and removes the
// temporary directories.  Should the test process die without its .fini (a
// Criterion .timeout, a crash), a small guard process it forked kills the
// process groups of everything spawned (each spawn leads its own group) and
// removes the directories.  Sanitizer reports of the daemon (ASan/UBSan
// log_path files beside its output) fail the test via NO_SANITIZER_REPORTS().
//
// Every wait polls a readiness signal (the daemon's log file, a socket, /proc,
// the pid file) with a bounded timeout; nothing sleeps as synchronisation.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace itest {

using namespace std::chrono_literals;
using Duration = std::chrono::milliseconds;

// Default bound for every wait on the daemon.
inline constexpr Duration kWait = 10s;

// ---- environment ---------------------------------------------------------

// $PREFORKD_BIN (absolute path of the daemon under test); "build/preforkd"
// relative to $PREFORKD_SRCDIR (or the cwd) if unset.
std::string daemon_binary();

// Each TestSuite's .init: fails the test at once, with a clear message, when
// the daemon binary is missing or not executable.
void setup();

// Makes the calling test process a child subreaper (idempotent).
void become_subreaper();

// Kills and reaps every process started through this harness (and every
// other child or orphan we inherited), then removes the temporary
// directories.  Call from each TestSuite's .fini.
void cleanup();

// ---- files ------------------------------------------------------------------

// mkdtemp("/tmp/preforkd-it-XXXXXX"), chmod 0755, removed by cleanup().
std::string make_tempdir();
void write_file(const std::string& path, const std::string& content, mode_t mode = 0644);
void make_dir(const std::string& path, mode_t mode = 0755);
std::string read_file(const std::string& path);      // "" if missing
bool file_exists(const std::string& path);
std::vector<std::string> lines_of(const std::string& text);
// The last `n` lines of a file, for failure messages.
std::string tail(const std::string& path, int n = 40);

// ---- processes --------------------------------------------------------------

// fork+exec argv[0] with argv; stdin from /dev/null; stdout and stderr
// appended to `output_file`; PR_SET_PDEATHSIG(SIGKILL); its own process
// group (known to the guard); every other
// descriptor closed; default signal dispositions and an empty mask.  The pid
// is registered for cleanup().
pid_t spawn(const std::vector<std::string>& argv, const std::string& output_file);

struct RunResult {
    int status = -1;          // exit status, 128+signal if killed, -1 on timeout
    std::string out;          // stdout
    std::string err;          // stderr
};

// Runs a command to completion (killed after `timeout`), capturing stdout and
// stderr separately through files in `workdir`.
RunResult run(const std::vector<std::string>& argv, const std::string& workdir,
              Duration timeout = kWait);

// waitpid() with a bound.  Returns the exit status, 128+signal when killed
// by a signal, or -1 on timeout (the process is left alone).
int wait_exit(pid_t pid, Duration timeout);

// True if the pid no longer names a live process: it does not exist, is a
// zombie, or (if it is our child) could be reaped.
bool is_gone(pid_t pid);

// Non-zombie children of `parent` per /proc/*/stat, excluding transient
// copies of the master (cmdline "preforkd: master ...") and the parker:
// for a master, its workers.
std::vector<pid_t> children_of(pid_t parent);
// The master's parker process ("preforkd: parker"), -1 if none.
pid_t parker_of(pid_t master);

// /proc/PID/cmdline with NULs turned into spaces, trailing space removed.
std::string cmdline_of(pid_t pid);
// Value of a "Key:" line of /proc/PID/status ("" if absent).
std::string proc_status_field(pid_t pid, const std::string& key);

// Polls `pred` every 20 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& pred, Duration timeout = kWait);

// ---- sockets & HTTP ---------------------------------------------------------

// A free loopback TCP port below the kernel's ephemeral range, so that a
// daemon's "127.0.0.1:0" listener (or any socket bound to port 0) can never
// be handed the same port between this call and the daemon's bind.
int free_port();

int connect_tcp(int port, int rcvbuf = 0);          // 127.0.0.1; -1 on failure
int connect_unix(const std::string& path);           // -1 on failure
bool send_all(int fd, const std::string& data);      // MSG_NOSIGNAL
// Reads whatever arrives within `timeout` (returns as soon as something did).
// nullopt on timeout with nothing read; "" on EOF.
std::optional<std::string> recv_some(int fd, Duration timeout);

struct Response {
    bool ok = false;                         // a complete response was parsed
    std::string error;                       // why not, if !ok
    int status = 0;
    std::string status_line;
    std::map<std::string, std::string> headers;   // lower-case names
    std::string body;
    std::string header(const std::string& name) const;
};

// Reads one response from `fd`.  `head` = response to a HEAD request (no
// body whatever Content-Length says).  Bytes read past the response stay in
// `buffer` for the next call on the same connection.
Response read_response(int fd, std::string& buffer, bool head = false,
                       Duration timeout = kWait);

// A one-shot request on a fresh connection ("Connection: close").
Response http_get(int port, const std::string& path, const std::string& method = "GET");
Response http_get_unix(const std::string& sock, const std::string& path);

std::string request(const std::string& method, const std::string& path,
                    bool keep_alive = true);

// The socket inode of the TCP connection 127.0.0.1:local_port ->
// 127.0.0.1:remote_port per /proc/net/tcp ("" if none); state "0A" finds
// the listening socket on local_port (remote_port ignored).
std::string tcp_inode(int local_port, int remote_port, const std::string& state = "01");
// How many server-side sockets of connections to 127.0.0.1:local_port exist
// per /proc/net/tcp, in any state but LISTEN and TIME_WAIT: zero once the
// server has closed every connection (a closed socket in TIME_WAIT holds no
// descriptor).
int server_connections(int local_port);
// The descriptor number `pid` holds for socket inode `inode` (-1 if none).
int fd_of_socket(pid_t pid, const std::string& inode);
// The worker (a child of `master`) holding the server side of our connected
// socket `client_fd` to `server_port`; -1 if none.
pid_t worker_serving(pid_t master, int client_fd, int server_port);

// ---- the daemon -------------------------------------------------------------

struct Options {
    int start = 2, min_spare = 1, max_spare = 3, max = 8;
    int graceful_timeout = 5, watchdog_timeout = 60, max_requests = 0;
    int keepalive_timeout = 5;
    std::vector<std::string> listen = {"127.0.0.1:0"};
    std::string root = "www";
    std::string access_log = "access.log";
    std::string level = "info";
    std::string extra{};                     // appended verbatim (user = ...;)
    std::string log_extra{};                 // inside log = { ... } (access_flush = 1;)
    std::string workers_extra{};             // inside workers = { ... }
    std::string http_extra{};                // inside http = { ... } (parking = false;)
};

std::string config_text(const Options& o);

// One test's daemon: a temp dir with www/index.html, x.txt, preforkd.conf.
struct Daemon {
    std::string dir, conf, log, pid_file;
    Options opts;
    pid_t pid = -1;                          // the master (spawned with -f)
    int port = -1;                           // first "listening on 127.0.0.1:N"

    // Creates the directory and files; does not start anything.
    static Daemon prepare(const Options& o = {});
    void write_config(const Options& o);
    void write_config_text(const std::string& text);

    // Spawns `preforkd -f -c conf`, waits for the "ready: generation 1"
    // line and learns the port.  False (with the log kept) on failure.
    bool start();
    bool signal(int sig) const;

    std::string log_text() const { return read_file(log); }
    std::string log_tail() const { return tail(log); }
    // Waits until the log contains `needle`; returns the first line holding it.
    std::optional<std::string> wait_log(const std::string& needle, Duration timeout = kWait) const;
    size_t count_log(const std::string& needle) const;

    std::vector<pid_t> workers() const { return children_of(pid); }
    bool wait_workers(size_t n, Duration timeout = kWait) const;
    std::string path(const std::string& rel) const { return dir + "/" + rel; }
};

// "listening on 127.0.0.1:41234" -> 41234, from a log text; -1 if absent.
int port_from_log(const std::string& log_text, const std::string& host = "127.0.0.1");

std::string join(const std::vector<pid_t>& pids);

// Registers a process we did not spawn (a double-forked master) for cleanup().
void track(pid_t pid);

// printf into a std::string, for assertion messages.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Sanitizer reports (ASan, UBSan, LSan) left by any daemon started in this
// test, in its output or in the log_path files; "" if none.
std::string sanitizer_findings();

// VERSION from $PREFORKD_SRCDIR/Makefile ("" if unknown).
std::string project_version();

}  // namespace itest

// cr_assert that appends the tail of the daemon's log to the failure message.
#define D_ASSERT(d, cond, ...)                                                        \
    cr_assert((cond), "%s\n--- tail of %s ---\n%s", itest::format(__VA_ARGS__).c_str(), \
              (d).log.c_str(), (d).log_tail().c_str())

// Ends every test that started a daemon: an ASan/UBSan report from the master
// or a worker fails the test even if everything else looked right.
#define NO_SANITIZER_REPORTS()                                                       \
    do {                                                                             \
        std::string itest_findings__ = itest::sanitizer_findings();                  \
        cr_assert(itest_findings__.empty(), "sanitizer report:\n%s", itest_findings__.c_str()); \
    } while (0)
