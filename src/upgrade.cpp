// upgrade.cpp - the handover's text, the -t check of a new binary, and exec.
//
// The handover is one environment variable of key=value words, numbers in
// decimal and text percent-encoded: an environment variable is the one
// thing execve() carries besides descriptors and argv, it is readable in
// /proc/PID/environ while debugging, and a word the receiver does not know
// is an error rather than a silent loss.  The master's side (what to hand
// over, adopting it, committing or rolling back) is in master_upgrade.cpp;
// this file knows nothing of the Master.
#include "preforkd/upgrade.hpp"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preforkd/fd.hpp"
#include "preforkd/log.hpp"
#include "preforkd/notify.hpp"
#include "preforkd/scoreboard.hpp"
#include "preforkd/signals.hpp"

extern char** environ;

namespace preforkd::upgrade {
namespace {

std::string g_binary;
// Thread-local: reset in every child (close_in_child()), and a page of
// .data written there would become each worker's own (see worker.cpp).
thread_local Fd g_image;
bool g_taken = false;
std::optional<Handover> g_received;

// ---- encoding -------------------------------------------------------------------

std::string escaped(std::string_view text)
{
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : text) {
        unsigned char u = (unsigned char)ch;
        if (u <= 0x20 || u >= 0x7f || ch == '%' || ch == ',' || ch == '=') {
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            out += ch;
        }
    }
    return out;
}

std::optional<std::string> unescaped(std::string_view text)
{
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        unsigned value = 0;
        if (i + 2 >= text.size())
            return std::nullopt;
        auto r = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
        if (r.ec != std::errc() || r.ptr != text.data() + i + 3)
            return std::nullopt;
        out += char(value);
        i += 2;
    }
    return out;
}

std::vector<std::string_view> split(std::string_view text, char sep)
{
    std::vector<std::string_view> parts;
    for (std::size_t at = 0;;) {
        std::size_t end = text.find(sep, at);
        parts.push_back(text.substr(at, end == std::string_view::npos ? end : end - at));
        if (end == std::string_view::npos)
            return parts;
        at = end + 1;
    }
}

template <class Int>
bool number(std::string_view text, Int& out)
{
    auto r = std::from_chars(text.data(), text.data() + text.size(), out);
    return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

std::string listener_value(const Listener& l)
{
    return std::to_string(l.fd) + "," + (l.created_path ? "1" : "0") + "," + escaped(l.canonical);
}

std::string worker_value(const Worker& w)
{
    return std::to_string(w.pid) + "," + std::to_string(w.slot) + "," +
           std::to_string(w.generation) + "," + std::to_string(w.channel) + "," +
           std::to_string(w.quit_sent_ms) + "," + (w.killed ? "1" : "0");
}

bool parse_listener(const std::vector<std::string_view>& v, Listener& l)
{
    std::optional<std::string> canonical = v.size() == 3 ? unescaped(v[2]) : std::nullopt;
    if (!canonical || !number(v[0], l.fd) || (v[1] != "0" && v[1] != "1"))
        return false;
    l.created_path = v[1] == "1";
    l.canonical = *canonical;
    return true;
}

bool parse_worker(const std::vector<std::string_view>& v, Worker& w)
{
    return v.size() == 6 && number(v[0], w.pid) && number(v[1], w.slot) &&
           number(v[2], w.generation) && number(v[3], w.channel) && number(v[4], w.quit_sent_ms) &&
           (v[5] == "0" || v[5] == "1") && ((w.killed = v[5] == "1"), true);
}

// One word into `h`; false when the word is not understood.
bool apply(std::string_view key, const std::vector<std::string_view>& v, Handover& h)
{
    auto one = [&](auto& out) { return v.size() == 1 && number(v[0], out); };
    if (key == "v")
        return v.size() == 1 && v[0] == "1";
    if (key == "board")
        return v.size() == 2 && number(v[0], h.board) && number(v[1], h.board_size);
    if (key == "control")
        return parse_listener(v, h.control);
    if (key == "client")
        return one(h.client);
    if (key == "tickets")
        return one(h.tickets);
    if (key == "previous")
        return one(h.previous);
    if (key == "parker")
        return one(h.parker);
    if (key == "generation")
        return one(h.generation);
    if (key == "started")
        return v.size() == 2 && number(v[0], h.started_at) && number(v[1], h.started_ms);
    if (key == "queues")
        return v.size() == 4 && number(v[0], h.queues[0]) && number(v[1], h.queues[1]) &&
               number(v[2], h.queues[2]) && number(v[3], h.queues[3]);
    if (key == "pid") {
        std::optional<std::string> path = v.size() == 2 ? unescaped(v[1]) : std::nullopt;
        return path && number(v[0], h.pid_file) && ((h.pid_path = *path), true);
    }
    if (key == "listen")
        return parse_listener(v, h.listeners.emplace_back());
    if (key == "worker")
        return parse_worker(v, h.workers.emplace_back());
    if (key == "arg") {
        std::optional<std::string> arg = v.size() == 1 ? unescaped(v[0]) : std::nullopt;
        return arg && (h.arguments.push_back(*arg), true);
    }
    if (key == "failure") {
        std::optional<std::string> why = v.size() == 1 ? unescaped(v[0]) : std::nullopt;
        return why && ((h.failure = *why), true);
    }
    return false;
}

void set_close_on_exec(const std::vector<int>& fds, bool on)
{
    for (int fd : fds)
        ::fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0);
}

// The environment of the next image: ours without the two variables we set.
std::vector<std::string> environment_for(const Handover& h)
{
    std::vector<std::string> env;
    auto named = [](const char* entry, const char* name) {
        std::size_t n = std::strlen(name);
        return std::strncmp(entry, name, n) == 0 && entry[n] == '=';
    };
    // Before notify::init() (a crash rollback armed early) NOTIFY_SOCKET is
    // still in the environment, and stays.
    bool notify_set = !notify::socket_name().empty();
    for (char** e = environ; e && *e; ++e)
        if (!named(*e, kVariable) && !(notify_set && named(*e, "NOTIFY_SOCKET")))
            env.emplace_back(*e);
    env.push_back(std::string(kVariable) + "=" + encode(h));
    if (!notify::socket_name().empty())
        env.push_back("NOTIFY_SOCKET=" + notify::socket_name());
    return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings)
{
    std::vector<char*> out;
    for (std::string& s : strings)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

}  // namespace

std::string encode(const Handover& h)
{
    std::string out = "v=1 board=" + std::to_string(h.board) + "," + std::to_string(h.board_size) +
                      " control=" + listener_value(h.control) + " client=" + std::to_string(h.client) +
                      " pid=" + std::to_string(h.pid_file) + "," + escaped(h.pid_path) +
                      " previous=" + std::to_string(h.previous) + " queues=" +
                      std::to_string(h.queues[0]) + "," + std::to_string(h.queues[1]) + "," +
                      std::to_string(h.queues[2]) + "," + std::to_string(h.queues[3]) +
                      " parker=" + std::to_string(h.parker) +
                      " tickets=" + std::to_string(h.tickets) +
                      " generation=" + std::to_string(h.generation) + " started=" +
                      std::to_string(h.started_at) + "," + std::to_string(h.started_ms);
    for (const Listener& l : h.listeners)
        out += " listen=" + listener_value(l);
    for (const Worker& w : h.workers)
        out += " worker=" + worker_value(w);
    for (const std::string& a : h.arguments)
        out += " arg=" + escaped(a);
    if (!h.failure.empty())
        out += " failure=" + escaped(h.failure);
    return out;
}

std::optional<Handover> decode(std::string_view text, std::string& error)
{
    Handover h;
    bool versioned = false;
    for (std::string_view word : split(text, ' ')) {
        if (word.empty())
            continue;
        std::size_t eq = word.find('=');
        std::string_view key = word.substr(0, eq);
        if (eq == std::string_view::npos || !apply(key, split(word.substr(eq + 1), ','), h)) {
            error = "cannot read \"" + std::string(word.substr(0, 80)) + "\" in " + kVariable;
            return std::nullopt;
        }
        versioned = versioned || key == "v";
    }
    if (!versioned || h.board < 0 || h.control.fd < 0 || h.pid_file < 0 || h.arguments.empty()) {
        error = std::string(kVariable) +
                " lacks its version, the scoreboard, the control socket, the pid file or the command line";
        return std::nullopt;
    }
    return h;
}

std::vector<int> descriptors(const Handover& h)
{
    std::vector<int> fds = {h.board, h.control.fd, h.client, h.pid_file, h.previous,
                            h.queues[0], h.queues[1], h.queues[2], h.queues[3], h.tickets};
    for (const Listener& l : h.listeners)
        fds.push_back(l.fd);
    for (const Worker& w : h.workers)
        fds.push_back(w.channel);
    std::erase_if(fds, [](int fd) { return fd < 0; });
    return fds;
}

void init(const char* argv0)
{
    char buf[PATH_MAX];
    if (argv0 && std::strchr(argv0, '/')) {
        std::string given = argv0;
        while (given.rfind("./", 0) == 0)
            given.erase(0, 2);
        g_binary = given;
        if (given[0] != '/' && ::getcwd(buf, sizeof buf))
            g_binary = std::string(buf) + "/" + given;
    } else {
        ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
        g_binary = n > 0 ? std::string(buf, std::size_t(n)) : "";
    }
    g_image.reset(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
}

const std::string& binary_path()
{
    return g_binary;
}

int own_image()
{
    return g_image.get();
}

void close_in_child()
{
    g_image.reset();
    disarm_crash_rollback();
}

const Handover* received()
{
    if (g_taken)
        return g_received ? &*g_received : nullptr;
    g_taken = true;
    const char* text = std::getenv(kVariable);
    if (!text)
        return nullptr;
    std::string error;
    g_received = decode(text, error);
    ::unsetenv(kVariable);
    if (!g_received) {
        log::err("upgrade: " + error + "; starting afresh");
        return nullptr;
    }
    // Ours now, and no helper we run (the next -t check) may inherit them.
    set_close_on_exec(descriptors(*g_received), true);
    // From here until the upgrade commits, a crash returns to the sender
    // with what it handed over (upgrade.hpp).
    if (g_received->failure.empty() && g_received->previous >= 0) {
        Handover back = *g_received;
        back.previous = -1;
        arm_crash_rollback(back, g_received->previous);
    }
    return &*g_received;
}

std::vector<std::string> arguments(const cli::Options& o)
{
    std::vector<std::string> argv = {g_binary};
    if (o.foreground)
        argv.push_back("-f");
    argv.insert(argv.end(), {"-c", o.config_file});
    if (!o.pid_file.empty())
        argv.insert(argv.end(), {"-p", o.pid_file});
    return argv;
}

}  // namespace preforkd::upgrade

namespace preforkd::upgrade {
namespace {

[[noreturn]] void run_check(const std::string& binary, std::vector<std::string> argv, int out)
{
    signals::reset_for_child();
    Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ::dup2(null.get(), 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    std::vector<char*> args = pointers(argv);
    ::execv(binary.c_str(), args.data());
    std::string why = sys_message("execve", binary, errno) + "\n";
    ssize_t ignored = ::write(2, why.data(), why.size());
    (void)ignored;
    ::_exit(127);
}

// The child's output until EOF or `deadline`; false on the deadline.
bool read_until(int fd, std::int64_t deadline, std::string& output)
{
    char buf[4096];
    for (;;) {
        std::int64_t left = deadline - scoreboard::now_ms();
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, int(left)) == 0)
            return false;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return true;
        if (n > 0 && output.size() < 8192)
            output.append(buf, std::size_t(n));
    }
}

std::string one_line(std::string text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    for (std::size_t at; (at = text.find('\n')) != std::string::npos;)
        text.replace(at, 1, "; ");
    return text;
}

}  // namespace

std::string check(const std::string& binary, const cli::Options& o)
{
    std::vector<std::string> argv = arguments(o);
    argv[0] = binary;
    argv.insert(argv.begin() + 1, "-t");
    std::erase(argv, std::string("-f"));
    auto [read_end, write_end] = make_pipe();
    pid_t pid = ::fork();
    if (pid < 0)
        return sys_message("fork", "upgrade check", errno);
    if (pid == 0)
        run_check(binary, argv, write_end.get());
    write_end.reset();
    std::string output;
    bool finished = read_until(read_end.get(), scoreboard::now_ms() + kCheckTimeoutMs, output);
    if (!finished)
        ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string said = one_line(output);
    if (!finished)
        return binary + " -t did not finish within " + std::to_string(kCheckTimeoutMs / 1000) + " s";
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return "";
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && said.rfind("execve(", 0) == 0)
        return said;
    std::string how = WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                          : "failed with exit status " + std::to_string(WEXITSTATUS(status));
    return binary + " -t " + how + (said.empty() ? "" : ": " + said);
}

std::string exec(const std::string& path, int image, const std::vector<std::string>& argv,
                 const Handover& h)
{
    std::vector<int> fds = descriptors(h);
    std::vector<std::string> env = environment_for(h);
    std::vector<std::string> args = argv;
    std::vector<char*> envp = pointers(env), argp = pointers(args);
    set_close_on_exec(fds, false);
    if (image >= 0)
        ::fexecve(image, argp.data(), envp.data());
    else
        ::execve(path.c_str(), argp.data(), envp.data());
    int err = errno;
    set_close_on_exec(fds, true);
    return sys_message(image >= 0 ? "fexecve" : "execve", path, err);
}

std::string roll_back(Handover h, const std::string& why)
{
    log::err("upgrade failed, returning to the previous binary: " + why);
    h.failure = why;
    if (h.previous < 0)
        return "no descriptor of the previous binary was handed over";
    std::vector<std::string> argv = h.arguments;
    return exec(argv[0], h.previous, argv, h);
}

}  // namespace preforkd::upgrade

namespace preforkd::upgrade {
namespace {

constexpr int kFatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
constexpr int kFatalCount = int(sizeof kFatal / sizeof kFatal[0]);

// What the handler executes, complete before it is published: the
// handler reads it and allocates nothing.
struct CrashExit {
    int image = -1;
    std::vector<int> fds;
    std::vector<std::string> argv_text;
    std::vector<char*> argv;
    std::vector<std::string> env_text[kFatalCount];
    std::vector<char*> envp[kFatalCount];
};

// Two, so that one is rebuilt while the handler may read the other.
CrashExit g_exits[2];
volatile sig_atomic_t g_armed = -1;   // the published one, or -1
volatile sig_atomic_t g_armed_pid = 0;
bool g_installed = false;
// A stack overflow leaves no stack to run the handler on.
alignas(16) char g_alt_stack[64 * 1024];

extern "C" void on_crash(int number)
{
    int at = g_armed;
    if (at >= 0 && ::getpid() == pid_t(g_armed_pid)) {
        CrashExit& e = g_exits[at];
        int k = 0;
        while (k < kFatalCount - 1 && kFatal[k] != number)
            ++k;
        for (int fd : e.fds)
            ::fcntl(fd, F_SETFD, 0);
        ::fexecve(e.image, e.argv.data(), e.envp[k].data());
    }
    // Not the master, or no way back: die of the signal, as without us
    // (SA_RESETHAND has restored the default action).
    ::raise(number);
}

void install_crash_handler()
{
    stack_t alt{};
    alt.ss_sp = g_alt_stack;
    alt.ss_size = sizeof g_alt_stack;
    ::sigaltstack(&alt, nullptr);
    struct sigaction sa {};
    sa.sa_handler = on_crash;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_ONSTACK | SA_NODEFER | SA_RESETHAND;
    for (int number : kFatal)
        ::sigaction(number, &sa, nullptr);
    g_installed = true;
}

}  // namespace

void arm_crash_rollback(const Handover& back, int image)
{
    int next = g_armed == 0 ? 1 : 0;
    CrashExit& e = g_exits[next];
    e.image = image;
    e.fds = descriptors(back);
    e.argv_text = back.arguments;
    e.argv = pointers(e.argv_text);
    for (int k = 0; k < kFatalCount; ++k) {
        Handover h = back;
        const char* name = sigabbrev_np(kFatal[k]);
        h.failure = "the new binary was killed by signal " + std::to_string(kFatal[k]) + " (SIG" +
                    (name ? name : "?") + ") before it served";
        e.env_text[k] = environment_for(h);
        e.envp[k] = pointers(e.env_text[k]);
    }
    std::atomic_signal_fence(std::memory_order_seq_cst);
    g_armed_pid = ::getpid();
    g_armed = next;
    if (!g_installed)
        install_crash_handler();
}

void disarm_crash_rollback()
{
    if (!g_installed)
        return;
    g_armed = -1;
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int number : kFatal)
        ::sigaction(number, &sa, nullptr);
    g_installed = false;
}

}  // namespace preforkd::upgrade
