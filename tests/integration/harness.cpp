// harness.cpp - see harness.hpp.  Everything here runs inside one Criterion
// test process; the registries are per process and emptied by cleanup().
#include "harness.hpp"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace itest {

namespace {

std::vector<pid_t> g_pids;           // every process we spawned
std::vector<std::string> g_dirs;     // every temporary directory
std::vector<std::string> g_sanitizer_dirs;   // where daemons may leave sanitizer reports

using Clock = std::chrono::steady_clock;

void pause_briefly(Duration d = 10ms) { std::this_thread::sleep_for(d); }

// pid -> ppid for every live, non-zombie process.
std::map<pid_t, pid_t> process_table(bool include_zombies = false) {
    std::map<pid_t, pid_t> table;
    DIR* proc = opendir("/proc");
    if (proc == nullptr) return table;
    while (dirent* e = readdir(proc)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end != '\0') continue;
        std::string stat = read_file("/proc/" + std::string(e->d_name) + "/stat");
        size_t rparen = stat.rfind(')');
        if (rparen == std::string::npos || rparen + 4 > stat.size()) continue;
        char state = stat[rparen + 2];
        if (!include_zombies && (state == 'Z' || state == 'X')) continue;
        pid_t ppid = static_cast<pid_t>(std::atol(stat.c_str() + rparen + 4));
        table[static_cast<pid_t>(pid)] = ppid;
    }
    closedir(proc);
    return table;
}

void collect_descendants(const std::map<pid_t, pid_t>& table, pid_t root,
                         std::set<pid_t>& out) {
    for (const auto& [pid, ppid] : table) {
        if (ppid == root && out.insert(pid).second) collect_descendants(table, pid, out);
    }
}

int decode_status(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
    ::remove(path);
    return 0;
}

// Environment for the child.  For the daemon under test, sanitizer reports
// also go to files beside its output (workers may have no stderr), where
// sanitizer_findings() looks for them.
std::vector<std::string> child_environment(const std::vector<std::string>& argv,
                                           const std::string& out_path) {
    std::vector<std::string> env;
    bool is_daemon = !argv.empty() && argv[0] == daemon_binary();
    std::string dir = out_path.substr(0, out_path.rfind('/'));
    for (char** e = environ; *e != nullptr; ++e) {
        std::string var = *e;
        if (is_daemon && (var.rfind("ASAN_OPTIONS=", 0) == 0 || var.rfind("UBSAN_OPTIONS=", 0) == 0))
            continue;
        env.push_back(var);
    }
    if (is_daemon) {
        const char* asan = std::getenv("ASAN_OPTIONS");
        const char* ubsan = std::getenv("UBSAN_OPTIONS");
        env.push_back(std::string("ASAN_OPTIONS=") + (asan != nullptr ? asan : "") +
                      ":log_path=" + dir + "/sanitizer");
        env.push_back(std::string("UBSAN_OPTIONS=") + (ubsan != nullptr ? ubsan : "") +
                      ":print_stacktrace=1:log_path=" + dir + "/sanitizer");
        if (std::find(g_sanitizer_dirs.begin(), g_sanitizer_dirs.end(), dir) == g_sanitizer_dirs.end())
            g_sanitizer_dirs.push_back(dir);
    }
    return env;
}

// The guard: a small child of the test process that outlives it.  Every
// spawned process starts its own process group, and its pid (= pgid) is
// written to the guard.  If the test process dies without cleanup() (a
// Criterion .timeout, a crash, the runner killed), the guard reads EOF and
// kills those groups: a master and its workers, which would otherwise live
// on as orphans, and removes the temporary directories.  Protocol, one line
// each: "p PID" (a process group), "d PATH" (a directory), "0" (disarm:
// cleanup() has done the work).
pid_t g_guard = -1;
int g_guard_fd = -1;

void guard_main(int in) {
    std::vector<pid_t> groups;
    std::vector<std::string> dirs;
    std::string pending;
    char buf[256];
    for (;;) {
        ssize_t n = ::read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        pending.append(buf, static_cast<size_t>(n));
        for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
            std::string line = pending.substr(0, nl);
            if (line == "0") _exit(0);  // disarmed
            if (line.rfind("p ", 0) == 0) groups.push_back(static_cast<pid_t>(std::atol(line.c_str() + 2)));
            if (line.rfind("d ", 0) == 0) dirs.push_back(line.substr(2));
        }
    }
    for (pid_t g : groups) {
        ::kill(-g, SIGKILL);
        ::kill(g, SIGKILL);
    }
    for (const auto& dir : dirs) nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    _exit(0);
}

void guard_start() {
    if (g_guard > 0) return;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        dup2(p[0], 3);
        close_range(4, ~0U, 0);
        ::signal(SIGINT, SIG_IGN);
        ::signal(SIGTERM, SIG_IGN);
        ::signal(SIGHUP, SIG_IGN);
        guard_main(3);
    }
    ::close(p[0]);
    if (pid < 0) {
        ::close(p[1]);
        return;
    }
    g_guard = pid;
    g_guard_fd = p[1];
}

void guard_tell(const std::string& line) {
    if (g_guard_fd >= 0) (void)!::write(g_guard_fd, (line + "\n").data(), line.size() + 1);
}

void guard_add(pid_t pid) { guard_tell("p " + std::to_string(pid)); }

void guard_stop() {
    if (g_guard_fd >= 0) {
        (void)!::write(g_guard_fd, "0\n", 2);
        ::close(g_guard_fd);
        g_guard_fd = -1;
    }
    if (g_guard > 0) {
        int st;
        auto deadline = Clock::now() + 2s;
        while (waitpid(g_guard, &st, WNOHANG) == 0 && Clock::now() < deadline) pause_briefly(2ms);
        g_guard = -1;
    }
}

pid_t spawn_io(const std::vector<std::string>& argv, const std::string& out_path,
               const std::string& err_path) {
    guard_start();
    become_subreaper();
    std::vector<std::string> env_strings = child_environment(argv, out_path);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int err = err_path == out_path
                  ? out
                  : ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        setpgid(0, 0);  // its own group, for the guard
        if (in < 0 || out < 0 || err < 0) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        close_range(3, ~0U, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int sig = 1; sig < NSIG; ++sig) {
            if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
        }
        execve(args[0], args.data(), envp.data());
        _exit(127);
    }
    if (in >= 0) ::close(in);
    if (err >= 0 && err != out) ::close(err);
    if (out >= 0) ::close(out);
    if (pid > 0) {
        setpgid(pid, pid);  // also here: no race with guard_add / an early kill
        g_pids.push_back(pid);
        guard_add(pid);
    }
    return pid;
}

}  // namespace

// ---- environment ---------------------------------------------------------

std::string daemon_binary() {
    if (const char* bin = std::getenv("PREFORKD_BIN"); bin != nullptr && *bin != '\0') return bin;
    const char* src = std::getenv("PREFORKD_SRCDIR");
    std::string base = src != nullptr && *src != '\0' ? src : ".";
    if (base[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd) != nullptr) base = std::string(cwd) + "/" + base;
    }
    return base + "/build/preforkd";
}

void setup() {
    std::string bin = daemon_binary();
    cr_assert(access(bin.c_str(), X_OK) == 0,
              "the daemon under test %s is not an executable file (%s); set PREFORKD_BIN "
              "or run `make build/preforkd` first",
              bin.c_str(), std::strerror(errno));
    become_subreaper();
}

void become_subreaper() {
    static bool done = false;
    if (!done) done = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
}

namespace {

// Every live process that cleanup() must end: the registered ones, our
// children running preforkd or curl (orphans come to us, the subreaper), and
// all their descendants.
std::set<pid_t> cleanup_victims() {
    auto table = process_table();
    std::set<pid_t> victims;
    for (pid_t pid : g_pids) {
        if (table.count(pid) != 0) victims.insert(pid);
        collect_descendants(table, pid, victims);
    }
    for (const auto& [pid, ppid] : table) {
        if (ppid != getpid()) continue;
        std::string cmd = cmdline_of(pid);
        if (cmd.find("preforkd") != std::string::npos || cmd.find("curl") != std::string::npos) {
            victims.insert(pid);
            collect_descendants(table, pid, victims);
        }
    }
    return victims;
}

}  // namespace

void cleanup() {
    // Freeze first, so that no master forks a worker we have not seen, then
    // kill; repeat until a scan finds nothing (bounded).
    auto deadline = Clock::now() + 3s;
    std::set<pid_t> killed;
    for (;;) {
        auto victims = cleanup_victims();
        for (pid_t pid : victims) ::kill(pid, SIGSTOP);
        victims = cleanup_victims();
        for (pid_t pid : victims) ::kill(pid, SIGKILL);
        killed.insert(victims.begin(), victims.end());
        // Reap, by pid, what has died: our children and adopted orphans.
        for (const auto& [pid, ppid] : process_table(true)) {
            int st;
            if (ppid == getpid() && (killed.count(pid) != 0 || is_gone(pid)))
                waitpid(pid, &st, WNOHANG);
        }
        bool left = std::any_of(killed.begin(), killed.end(), [](pid_t p) { return !is_gone(p); });
        bool unreaped = false;
        for (const auto& [pid, ppid] : process_table(true)) {
            if (ppid == getpid() && killed.count(pid) != 0) unreaped = true;
        }
        if ((victims.empty() && !left && !unreaped) || Clock::now() > deadline) break;
        pause_briefly(5ms);
    }
    g_pids.clear();
    guard_stop();
    for (const auto& dir : g_dirs) nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    g_dirs.clear();
    g_sanitizer_dirs.clear();
}

// ---- files ------------------------------------------------------------------

std::string make_tempdir() {
    char tmpl[] = "/tmp/preforkd-it-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return "";
    ::chmod(tmpl, 0755);
    g_dirs.push_back(tmpl);
    guard_start();
    guard_tell(std::string("d ") + tmpl);
    return tmpl;
}

void write_file(const std::string& path, const std::string& content, mode_t mode) {
    // Write to a temporary name and rename, so a daemon reading the file
    // (a config being reloaded) never sees half of it.
    std::string tmp = path + ".tmp-write";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f << content;
    }
    ::chmod(tmp.c_str(), mode);
    ::rename(tmp.c_str(), path.c_str());
}

void make_dir(const std::string& path, mode_t mode) {
    ::mkdir(path.c_str(), mode);
    ::chmod(path.c_str(), mode);
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return "";
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream s(text);
    for (std::string line; std::getline(s, line);) {
        if (!line.empty()) lines.push_back(line);
    }
    return lines;
}

std::string tail(const std::string& path, int n) {
    auto lines = lines_of(read_file(path));
    std::string out;
    size_t from = lines.size() > static_cast<size_t>(n) ? lines.size() - n : 0;
    for (size_t i = from; i < lines.size(); ++i) out += "  | " + lines[i] + "\n";
    return out.empty() ? "  | (empty)\n" : out;
}

// ---- processes --------------------------------------------------------------

pid_t spawn(const std::vector<std::string>& argv, const std::string& output_file) {
    return spawn_io(argv, output_file, output_file);
}

RunResult run(const std::vector<std::string>& argv, const std::string& workdir,
              Duration timeout) {
    static int counter = 0;
    std::string base = workdir + "/run-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
    std::string out = base + ".out", err = base + ".err";
    RunResult r;
    pid_t pid = spawn_io(argv, out, err);
    if (pid < 0) return r;
    r.status = wait_exit(pid, timeout);
    if (r.status == -1) {
        ::kill(pid, SIGKILL);
        wait_exit(pid, 2s);
        r.status = -1;
    }
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

int wait_exit(pid_t pid, Duration timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return decode_status(st);
        if (r < 0 && errno == ECHILD) {
            if (is_gone(pid)) return -2;  // not our child, but gone
        }
        if (Clock::now() > deadline) return -1;
        pause_briefly(5ms);
    }
}

bool is_gone(pid_t pid) {
    if (::kill(pid, 0) < 0 && errno == ESRCH) return true;
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t rparen = stat.rfind(')');
    if (rparen == std::string::npos || rparen + 2 >= stat.size()) return true;
    char state = stat[rparen + 2];
    return state == 'Z' || state == 'X';
}

std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> kids;
    for (const auto& [pid, ppid] : process_table()) {
        if (ppid != parent) continue;
        // A transient fork of the master (before it renames itself or execs)
        // is not a worker.
        std::string title = cmdline_of(pid);
        if (title.rfind("preforkd: master", 0) == 0) continue;
        // Nor is the parker, which holds connections and serves none.
        if (title.rfind("preforkd: parker", 0) == 0) continue;
        kids.push_back(pid);
    }
    return kids;
}

pid_t parker_of(pid_t master) {
    for (const auto& [pid, ppid] : process_table())
        if (ppid == master && cmdline_of(pid).rfind("preforkd: parker", 0) == 0) return pid;
    return -1;
}

std::string cmdline_of(pid_t pid) {
    std::string cmd = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
    return cmd;
}

std::string proc_status_field(pid_t pid, const std::string& key) {
    for (const auto& line : lines_of(read_file("/proc/" + std::to_string(pid) + "/status"))) {
        if (line.rfind(key + ":", 0) == 0) {
            std::string v = line.substr(key.size() + 1);
            size_t b = v.find_first_not_of(" \t");
            return b == std::string::npos ? "" : v.substr(b);
        }
    }
    return "";
}

bool wait_until(const std::function<bool()>& pred, Duration timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (Clock::now() > deadline) return false;
        pause_briefly(20ms);
    }
}

// ---- sockets & HTTP ---------------------------------------------------------

namespace {

// Binds 127.0.0.1:`port` (0: any), closes, and returns the port it got, or -1.
int try_port(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    socklen_t len = sizeof a;
    int got = -1;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
        got = ntohs(a.sin_port);
    }
    ::close(fd);
    return got;
}

}  // namespace

// A port the kernel picked for bind(0) and gave back can be picked again
// for the next bind(0): a test whose daemon listens on "127.0.0.1:0" and on
// a port from here once lost its second bind that way ("Address already in
// use").  Ports below ip_local_port_range are never picked for bind(0).
int free_port() {
    int low = 32768;
    if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
        if (std::fscanf(f, "%d", &low) != 1) low = 32768;
        std::fclose(f);
    }
    int first = std::max(1024, low - 16384);
    int span = low - first;
    if (span > 0) {
        std::minstd_rand pick(std::random_device{}());
        std::uniform_int_distribution<int> below(first, low - 1);
        for (int attempt = 0; attempt < 200; ++attempt) {
            int port = below(pick);
            if (try_port(port) == port) return port;
        }
    }
    return try_port(0);
}

int connect_tcp(int port, int rcvbuf) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

int connect_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) {
        ::close(fd);
        return -1;
    }
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool send_all(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

std::optional<std::string> recv_some(int fd, Duration timeout) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r <= 0) return std::nullopt;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) return std::string();  // ECONNRESET and friends: treat as EOF
    return std::string(buf, static_cast<size_t>(n));
}

std::string Response::header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
}

namespace {

// Reads until `buffer` holds at least `want` bytes or `marker`; false on
// EOF or timeout.
bool fill(int fd, std::string& buffer, size_t want, const char* marker,
          Clock::time_point deadline, bool& eof) {
    eof = false;
    for (;;) {
        if (marker != nullptr ? buffer.find(marker) != std::string::npos : buffer.size() >= want)
            return true;
        auto left = std::chrono::duration_cast<Duration>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        auto chunk = recv_some(fd, left);
        if (!chunk) return false;
        if (chunk->empty()) {
            eof = true;
            return false;
        }
        buffer += *chunk;
    }
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

Response read_response(int fd, std::string& buffer, bool head, Duration timeout) {
    Response r;
    auto deadline = Clock::now() + timeout;
    bool eof = false;
    if (!fill(fd, buffer, 0, "\r\n\r\n", deadline, eof)) {
        r.error = eof ? "connection closed before the header ended (got " +
                            std::to_string(buffer.size()) + " bytes: '" + buffer.substr(0, 200) + "')"
                      : "timeout waiting for the response header (got '" + buffer.substr(0, 200) + "')";
        return r;
    }
    size_t end = buffer.find("\r\n\r\n");
    std::string head_text = buffer.substr(0, end);
    buffer.erase(0, end + 4);
    auto lines = lines_of(head_text);
    if (lines.empty()) {
        r.error = "empty response header";
        return r;
    }
    for (auto& l : lines) {
        if (!l.empty() && l.back() == '\r') l.pop_back();
    }
    r.status_line = lines[0];
    if (r.status_line.rfind("HTTP/1.", 0) != 0 || r.status_line.size() < 12) {
        r.error = "bad status line '" + r.status_line + "'";
        return r;
    }
    r.status = std::atoi(r.status_line.c_str() + 9);
    for (size_t i = 1; i < lines.size(); ++i) {
        size_t colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        std::string value = lines[i].substr(colon + 1);
        size_t b = value.find_first_not_of(" \t");
        r.headers[lower(lines[i].substr(0, colon))] = b == std::string::npos ? "" : value.substr(b);
    }
    if (head || r.status / 100 == 1 || r.status == 204 || r.status == 304) {
        r.ok = true;
        return r;
    }
    if (r.headers.count("content-length") != 0) {
        size_t len = std::strtoull(r.header("content-length").c_str(), nullptr, 10);
        if (!fill(fd, buffer, len, nullptr, deadline, eof)) {
            r.error = "body incomplete: " + std::to_string(buffer.size()) + " of " +
                      std::to_string(len) + " bytes";
            return r;
        }
        r.body = buffer.substr(0, len);
        buffer.erase(0, len);
        r.ok = true;
        return r;
    }
    // No length: the body ends with the connection.
    while (fill(fd, buffer, buffer.size() + 1, nullptr, deadline, eof)) {
    }
    if (!eof) {
        r.error = "timeout reading a close-delimited body";
        return r;
    }
    r.body = buffer;
    buffer.clear();
    r.ok = true;
    return r;
}

std::string request(const std::string& method, const std::string& path, bool keep_alive) {
    return method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: preforkd-itest\r\n" +
           (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
}

namespace {
Response exchange(int fd, const std::string& path, const std::string& method) {
    Response r;
    if (fd < 0) {
        r.error = std::string("connect failed: ") + std::strerror(errno);
        return r;
    }
    if (!send_all(fd, request(method, path, false))) {
        r.error = std::string("send failed: ") + std::strerror(errno);
        ::close(fd);
        return r;
    }
    std::string buffer;
    r = read_response(fd, buffer, method == "HEAD");
    ::close(fd);
    return r;
}
}  // namespace

Response http_get(int port, const std::string& path, const std::string& method) {
    return exchange(connect_tcp(port), path, method);
}

Response http_get_unix(const std::string& sock, const std::string& path) {
    return exchange(connect_unix(sock), path, "GET");
}

namespace {

// 127.0.0.1:port as /proc/net/tcp writes it.
std::string loopback_hex(int port) {
    char text[32];
    snprintf(text, sizeof text, "0100007F:%04X", port);
    return text;
}

// The rows of /proc/net/tcp, each split into its fields:
// sl local rem st tx:rx tr:when retr uid timeout inode ...
std::vector<std::vector<std::string>> tcp_rows() {
    std::vector<std::vector<std::string>> rows;
    for (const auto& line : lines_of(read_file("/proc/net/tcp"))) {
        std::istringstream fields(line);
        std::vector<std::string> f;
        for (std::string w; fields >> w;) f.push_back(w);
        rows.push_back(std::move(f));
    }
    return rows;
}

}  // namespace

std::string tcp_inode(int local_port, int remote_port, const std::string& state) {
    std::string local = loopback_hex(local_port), remote = loopback_hex(remote_port);
    for (const auto& f : tcp_rows()) {
        if (f.size() <= 9 || f[1] != local || f[3] != state) continue;
        if (state == "0A" || f[2] == remote) return f[9];
    }
    return "";
}

int server_connections(int local_port) {
    std::string local = loopback_hex(local_port);
    int n = 0;
    for (const auto& f : tcp_rows())
        if (f.size() > 3 && f[1] == local && f[3] != "0A" && f[3] != "06") ++n;
    return n;
}

int fd_of_socket(pid_t pid, const std::string& inode) {
    std::string want = "socket:[" + inode + "]";
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return -1;
    int found = -1;
    while (dirent* e = readdir(d)) {
        char link[256];
        ssize_t n = readlink((dir + "/" + e->d_name).c_str(), link, sizeof link - 1);
        if (n > 0 && std::string(link, static_cast<size_t>(n)) == want) {
            found = std::atoi(e->d_name);
            break;
        }
    }
    closedir(d);
    return found;
}

pid_t worker_serving(pid_t master, int client_fd, int server_port) {
    sockaddr_in me{};
    socklen_t len = sizeof me;
    if (getsockname(client_fd, reinterpret_cast<sockaddr*>(&me), &len) < 0) return -1;
    std::string inode = tcp_inode(server_port, ntohs(me.sin_port));
    if (inode.empty()) return -1;
    for (pid_t w : children_of(master)) {
        if (fd_of_socket(w, inode) >= 0) return w;
    }
    return -1;
}

// ---- the daemon -------------------------------------------------------------

std::string config_text(const Options& o) {
    std::ostringstream c;
    c << "pid_file = \"preforkd.pid\";\n";
    c << "listen = ( ";
    for (size_t i = 0; i < o.listen.size(); ++i) c << (i ? ", " : "") << '"' << o.listen[i] << '"';
    c << " );\n";
    c << "workers = { start = " << o.start << "; min_spare = " << o.min_spare
      << "; max_spare = " << o.max_spare << "; max = " << o.max
      << "; graceful_timeout = " << o.graceful_timeout
      << "; watchdog_timeout = " << o.watchdog_timeout << "; max_requests = " << o.max_requests
      << "; " << o.workers_extra << " };\n";
    c << "http = { root = \"" << o.root << "\"; index = [ \"index.html\" ]; keepalive_timeout = "
      << o.keepalive_timeout << "; " << o.http_extra << " };\n";
    c << "log = { level = \"" << o.level << "\"; access_log = \"" << o.access_log
      << "\"; access_format = \"combined\"; " << o.log_extra << " };\n";
    c << o.extra;
    return c.str();
}

Daemon Daemon::prepare(const Options& o) {
    Daemon d;
    d.dir = make_tempdir();
    d.conf = d.dir + "/preforkd.conf";
    d.log = d.dir + "/daemon.log";
    d.pid_file = d.dir + "/preforkd.pid";
    make_dir(d.dir + "/www");
    write_file(d.dir + "/www/index.html", "<h1>index of www</h1>\n");
    write_file(d.dir + "/www/x.txt", "hello from preforkd\n");
    d.write_config(o);
    return d;
}

void Daemon::write_config(const Options& o) {
    opts = o;
    write_config_text(config_text(o));
}

void Daemon::write_config_text(const std::string& text) { write_file(conf, text); }

bool Daemon::start() {
    pid = spawn({daemon_binary(), "-f", "-c", conf}, log);
    if (pid < 0) return false;
    bool ready = wait_until([&] {
        if (log_text().find("ready: generation 1") != std::string::npos) return true;
        return is_gone(pid);
    });
    if (!ready || is_gone(pid)) return false;
    port = port_from_log(log_text());
    return true;
}

bool Daemon::signal(int sig) const { return pid > 0 && ::kill(pid, sig) == 0; }

std::optional<std::string> Daemon::wait_log(const std::string& needle, Duration timeout) const {
    std::optional<std::string> found;
    wait_until(
        [&] {
            for (const auto& line : lines_of(log_text())) {
                if (line.find(needle) != std::string::npos) {
                    found = line;
                    return true;
                }
            }
            return false;
        },
        timeout);
    return found;
}

size_t Daemon::count_log(const std::string& needle) const {
    size_t n = 0;
    for (const auto& line : lines_of(log_text())) n += line.find(needle) != std::string::npos;
    return n;
}

bool Daemon::wait_workers(size_t n, Duration timeout) const {
    return wait_until([&] { return workers().size() == n; }, timeout);
}

int port_from_log(const std::string& text, const std::string& host) {
    std::string needle = "listening on " + host + ":";
    size_t at = text.find(needle);
    if (at == std::string::npos) return -1;
    return std::atoi(text.c_str() + at + needle.size());
}

std::string sanitizer_findings() {
    std::string found;
    for (const auto& dir : g_sanitizer_dirs) {
        DIR* d = opendir(dir.c_str());
        if (d == nullptr) continue;
        while (dirent* e = readdir(d)) {
            std::string name = e->d_name;
            bool report = name.rfind("sanitizer", 0) == 0;
            bool output = name.size() > 4 && (name.substr(name.size() - 4) == ".log" ||
                                              name.substr(name.size() - 4) == ".err");
            if (!report && !output) continue;
            std::string text = read_file(dir + "/" + name);
            for (const char* marker : {"ERROR: AddressSanitizer", "runtime error:",
                                       "ERROR: LeakSanitizer"}) {
                size_t at = text.find(marker);
                if (at != std::string::npos && (report || name.find("access") == std::string::npos)) {
                    found += "== " + dir + "/" + name + " ==\n" +
                             text.substr(at > 200 ? at - 200 : 0, 3000) + "\n";
                    break;
                }
            }
        }
        closedir(d);
    }
    return found;
}

void track(pid_t pid) {
    if (pid <= 0) return;
    g_pids.push_back(pid);
    guard_add(pid);  // a daemonized master leads its own session and group
}

std::string format(const char* fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

std::string project_version() {
    const char* src = std::getenv("PREFORKD_SRCDIR");
    std::string makefile = std::string(src != nullptr ? src : ".") + "/Makefile";
    for (const auto& line : lines_of(read_file(makefile))) {
        if (line.rfind("VERSION", 0) != 0) continue;
        size_t eq = line.find('=');
        if (eq == std::string::npos) continue;
        std::string v = line.substr(eq + 1);
        size_t b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t");
        return b == std::string::npos ? "" : v.substr(b, e - b + 1);
    }
    return "";
}

std::string join(const std::vector<pid_t>& pids) {
    std::string s;
    for (pid_t p : pids) s += (s.empty() ? "" : " ") + std::to_string(p);
    return s.empty() ? "(none)" : s;
}

}  // namespace itest
