// daemon.cpp - the classic double fork, with a verdict pipe.
//
// The first child calls setsid() to leave the terminal's session; the second
// fork makes sure the master is not a session leader and so can never
// acquire a controlling terminal again.  The launcher blocks on the pipe's
// read end: "ready" means exit 0; anything else is the failure reason; EOF
// without a word means the master died before it could say.
#include "preforkd/daemon.hpp"

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace preforkd::daemon {
namespace {

[[noreturn]] void wait_for_verdict(Fd read_end)
{
    std::string text = read_all(read_end.get());
    if (text == "ready")
        std::_Exit(0);
    if (text.empty())
        text = "preforkd: the master exited during start-up (see syslog)";
    std::fprintf(stderr, "%s\n", text.c_str());
    std::_Exit(1);
}

void redirect_stdio()
{
    Fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null)
        throw sys_error("open", "/dev/null");
    for (int fd = 0; fd <= 2; ++fd)
        if (::dup2(null.get(), fd) < 0)
            throw sys_error("dup2", "/dev/null");
}

}  // namespace

Fd detach()
{
    auto [read_end, write_end] = make_pipe();
    pid_t pid = ::fork();
    if (pid < 0)
        throw sys_error("fork");
    if (pid > 0) {
        write_end.reset();
        // Reap the intermediate child so no zombie is left to the launcher.
        ::waitpid(pid, nullptr, 0);
        wait_for_verdict(std::move(read_end));
    }
    read_end.reset();
    if (::setsid() < 0)
        throw sys_error("setsid");
    pid = ::fork();
    if (pid < 0)
        throw sys_error("fork");
    if (pid > 0)
        std::_Exit(0);
    if (::chdir("/") != 0)
        throw sys_error("chdir", "/");
    ::umask(022);
    redirect_stdio();
    return std::move(write_end);
}

void report(Fd& pipe, bool ok, const std::string& message)
{
    if (!pipe)
        return;
    std::string text = ok ? "ready" : message;
    ssize_t ignored = ::write(pipe.get(), text.data(), text.size());
    (void)ignored;
    pipe.reset();
}

}  // namespace preforkd::daemon
