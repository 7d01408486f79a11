// test_sandbox.cpp - the worker's sandbox, installed through the worker's
// own function (sandbox::install) in a child forked for each attempt, with
// a temporary root: what may still be read is read, and each forbidden
// call ends in SIGSYS (seccomp) or EACCES (Landlock).  The handler the
// worker uses records the trapped call where the master would read it.
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preforkd/sandbox.hpp"

using preforkd::sandbox::install;

namespace {

// Exit codes of a confined child: what the attempt saw.
constexpr int kAllowed = 10;     // the call succeeded
constexpr int kEacces = 11;      // it failed with EACCES
constexpr int kOther = 12;       // it failed otherwise
constexpr int kNotConfined = 13; // the sandbox did not go in

std::string g_tmp;   // this test's directory, removed by the suite's .fini

void remove_tmp()
{
    if (!g_tmp.empty())
        std::filesystem::remove_all(g_tmp);
}

struct Dirs {
    std::string root, outside;
};

Dirs make_dirs()
{
    char tmpl[] = "/tmp/preforkd-sandbox-XXXXXX";
    cr_assert(mkdtemp(tmpl) != nullptr);
    g_tmp = tmpl;
    Dirs d{std::string(tmpl) + "/www", std::string(tmpl) + "/outside.txt"};
    cr_assert(mkdir(d.root.c_str(), 0755) == 0);
    for (const std::string& path : {d.root + "/index.html", d.outside}) {
        int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        cr_assert(fd >= 0 && write(fd, "x\n", 2) == 2);
        close(fd);
    }
    return d;
}

int verdict(long rc)
{
    return rc >= 0 ? kAllowed : errno == EACCES ? kEacces : kOther;
}

// Forks a child that confines itself to `root` and runs `attempt`, whose
// return value is its exit code.  Returns the wait status.
template <typename F>
int confined(const std::string& root, F attempt)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        preforkd::sandbox::Outcome o = install({root});
        _exit(o.seccomp && o.landlock ? attempt() : kNotConfined);
    }
    int status = 0;
    cr_assert(waitpid(pid, &status, 0) == pid);
    return status;
}

void expect_sigsys(int status, const char* what)
{
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
              "%s: want death by SIGSYS, got %s %d", what,
              WIFSIGNALED(status) ? "signal" : "exit", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

void expect_exit(int status, int code, const char* what)
{
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == code, "%s: want exit %d, got %s %d", what,
              code, WIFEXITED(status) ? "exit" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

}  // namespace

TestSuite(sandbox, .fini = remove_tmp, .timeout = 30);

Test(sandbox, reading_beneath_the_root_still_works)
{
    Dirs d = make_dirs();
    int status = confined(d.root, [&] {
        int fd = open((d.root + "/index.html").c_str(), O_RDONLY | O_CLOEXEC);
        char buf[4];
        return fd >= 0 && pread(fd, buf, sizeof buf, 0) == 2 ? kAllowed : kOther;   // as the file cache reads
    });
    expect_exit(status, kAllowed, "open + read of root/index.html");
}

Test(sandbox, reading_outside_every_root_is_eacces)
{
    Dirs d = make_dirs();
    expect_exit(confined(d.root, [&] { return verdict(open(d.outside.c_str(), O_RDONLY)); }),
                kEacces, "open(outside.txt, O_RDONLY)");
    expect_exit(confined(d.root, [&] { return verdict(open("/etc/passwd", O_RDONLY)); }), kEacces,
                "open(/etc/passwd, O_RDONLY)");
}

Test(sandbox, opening_for_writing_is_refused)
{
    Dirs d = make_dirs();
    std::string inside = d.root + "/index.html";
    expect_sigsys(confined(d.root, [&] { return verdict(open(inside.c_str(), O_WRONLY)); }),
                  "open(root/index.html, O_WRONLY)");
    expect_sigsys(confined(d.root, [&] {
                      return verdict(open((d.root + "/new").c_str(), O_RDONLY | O_CREAT, 0644));
                  }),
                  "open(root/new, O_CREAT)");
    // openat2 carries its flags where seccomp cannot look: Landlock refuses.
    int status = confined(d.root, [&] {
        open_how how{};
        how.flags = O_WRONLY;
        return verdict(syscall(SYS_openat2, AT_FDCWD, inside.c_str(), &how, sizeof how));
    });
    expect_exit(status, kEacces, "openat2(root/index.html, O_WRONLY)");
}

Test(sandbox, execve_is_sigsys)
{
    Dirs d = make_dirs();
    int status = confined(d.root, [] {
        char* argv[] = {const_cast<char*>("true"), nullptr};
        execve("/bin/true", argv, environ);
        return kOther;
    });
    expect_sigsys(status, "execve(/bin/true)");
}

Test(sandbox, no_new_socket_and_connect_is_sigsys)
{
    Dirs d = make_dirs();
    expect_exit(confined(d.root, [] { return verdict(socket(AF_INET, SOCK_STREAM, 0)); }), kEacces,
                "socket(AF_INET)");
    // A socket made before the sandbox (as a worker's inherited ones are).
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(s >= 0);
    int status = confined(d.root, [s] {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(9);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return verdict(connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a));
    });
    close(s);
    expect_sigsys(status, "connect(127.0.0.1:9)");
}

Test(sandbox, executable_memory_is_sigsys)
{
    Dirs d = make_dirs();
    int status = confined(d.root, [] {
        return verdict(long(mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0));
    });
    expect_sigsys(status, "mmap(PROT_EXEC)");
}

// The master compiles the filter once, before it forks (sandbox::compile),
// and each worker only loads it: the same confinement as a child that
// compiles its own, as in the tests above.
Test(sandbox, a_filter_compiled_before_the_fork_confines_the_same)
{
    Dirs d = make_dirs();
    cr_assert(preforkd::sandbox::compile(), "the filters were not compiled");
    int status = confined(d.root, [&] {
        int fd = open((d.root + "/index.html").c_str(), O_RDONLY | O_CLOEXEC);
        char buf[4];
        return fd >= 0 && pread(fd, buf, sizeof buf, 0) == 2 ? kAllowed : kOther;
    });
    expect_exit(status, kAllowed, "precompiled: open + read of root/index.html");
    expect_exit(confined(d.root, [&] { return verdict(open(d.outside.c_str(), O_RDONLY)); }),
                kEacces, "precompiled: open(outside.txt, O_RDONLY)");
    expect_exit(confined(d.root, [] { return verdict(socket(AF_INET, SOCK_STREAM, 0)); }), kEacces,
                "precompiled: socket(AF_INET)");
    expect_sigsys(confined(d.root, [&] { return verdict(open((d.root + "/index.html").c_str(), O_WRONLY)); }),
                  "precompiled: open(root/index.html, O_WRONLY)");
    expect_sigsys(confined(d.root, [] {
                      char* argv[] = {const_cast<char*>("true"), nullptr};
                      execve("/bin/true", argv, environ);
                      return kOther;
                  }),
                  "precompiled: execve(/bin/true)");
    // The parker's program: no file at all, and a trap for what it lacks.
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        preforkd::sandbox::Outcome o = install({}, preforkd::sandbox::Profile::parker);
        if (!o.seccomp)
            _exit(kNotConfined);
        _exit(verdict(open(d.outside.c_str(), O_RDONLY | O_CLOEXEC)));
    }
    cr_assert(waitpid(pid, &status, 0) == pid);
    expect_sigsys(status, "precompiled parker: open(outside.txt)");
}

// The worker's handler: the trapped call's number reaches shared memory (the
// slot the master reads), and the process still dies of SIGSYS.
Test(sandbox, trapped_call_is_recorded_for_the_master)
{
    Dirs d = make_dirs();
    void* shared = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert(shared != MAP_FAILED);
    auto* recorded = new (shared) std::atomic<std::int32_t>(0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        preforkd::sandbox::record_forbidden_calls(*recorded);
        install({d.root});
        char* argv[] = {const_cast<char*>("true"), nullptr};
        execve("/bin/true", argv, environ);
        _exit(kOther);
    }
    int status = 0;
    cr_assert(waitpid(pid, &status, 0) == pid);
    expect_sigsys(status, "execve with the worker's handler");
    cr_assert_eq(recorded->load(), SYS_execve + 1, "recorded %d, want execve (%d) + 1",
                 recorded->load(), SYS_execve);
    std::string name = preforkd::sandbox::syscall_name(recorded->load() - 1);
    cr_assert_str_eq(name.c_str(), "execve");
}

Test(sandbox, syscall_names)
{
    // Named first: the macros keep the pointer past a temporary's life.
    std::string openat = preforkd::sandbox::syscall_name(SYS_openat);
    std::string connect = preforkd::sandbox::syscall_name(SYS_connect);
    std::string unknown = preforkd::sandbox::syscall_name(99999);
    cr_assert_str_eq(openat.c_str(), "openat");
    cr_assert_str_eq(connect.c_str(), "connect");
    cr_assert_str_eq(unknown.c_str(), "");
}

#if defined(__SANITIZE_ADDRESS__)
// In sanitizer builds (make check runs every test there too) a report
// written from inside the sandbox must come out whole, not end in SIGSYS.
Test(sandbox, a_sanitizer_report_survives_the_sandbox)
{
    Dirs d = make_dirs();
    std::string out = g_tmp + "/report";
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        install({d.root});
        char* p = static_cast<char*>(std::malloc(8));
        volatile int i = 8;
        p[i] = 'x';
        std::free(p);
        _exit(kOther);
    }
    int status = 0;
    cr_assert(waitpid(pid, &status, 0) == pid);
    std::string report;
    char buf[4096];
    int fd = open(out.c_str(), O_RDONLY);
    for (ssize_t n; fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0;)
        report.append(buf, std::size_t(n));
    cr_assert(!WIFSIGNALED(status), "the report ended in signal %d:\n%s", WTERMSIG(status), report.c_str());
    cr_assert(report.find("SUMMARY: AddressSanitizer: heap-buffer-overflow") != std::string::npos ||
                  report.find("runtime error:") != std::string::npos,
              "no whole report:\n%s", report.c_str());
}
#endif
