// master_support.cpp - exit wording, back-off arithmetic, descriptor limit.
#include "preforkd/master_support.hpp"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <sys/resource.h>
#include <sys/wait.h>

#include "preforkd/log.hpp"
#include "preforkd/sandbox.hpp"

namespace preforkd::master {

std::int64_t backoff_ms(int level)
{
    return std::min<std::int64_t>(kMaxBackoffMs, std::int64_t(100) << std::min(level - 1, 9));
}

std::string exit_text(pid_t pid, int status)
{
    std::string text = "worker " + std::to_string(pid);
    if (WIFSIGNALED(status))
        return text + " exited on signal " + std::to_string(WTERMSIG(status)) + " (" +
               strsignal(WTERMSIG(status)) + ")";
    return text + " exited with status " + std::to_string(WEXITSTATUS(status));
}

// A SIGSYS with nothing recorded (sent from outside) is said as a signal.
std::string exit_text(pid_t pid, int status, const scoreboard::Slot& slot)
{
    std::int32_t call = slot.sandbox_call.load() - 1;
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
        return exit_text(pid, status);
    std::string text = "worker " + std::to_string(pid);
    if (call < 0)
        return text + " killed by SIGSYS";
    std::string name = sandbox::syscall_name(call);
    return text + " killed by its sandbox (system call " +
           (name.empty() ? std::to_string(call) : name) + ")";
}

std::string join(const std::vector<std::string>& lines, const char* sep)
{
    std::string out;
    for (const auto& l : lines)
        out += (out.empty() ? "" : sep) + l;
    return out;
}

// Each worker holds the listeners, its log and channel, one connection and
// one file; the master a channel per worker.  When the configuration needs
// more than the soft limit allows, the soft limit goes up toward the hard one.
void raise_descriptor_limit(const config::Config& c)
{
    rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t need = rlim_t(c.workers.max) + rlim_t(c.listen.size()) + 64;
    if (rl.rlim_cur >= need)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = std::min(rl.rlim_max, need);
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = was;
    if (rl.rlim_cur < need)
        log::warning("RLIMIT_NOFILE " + std::to_string(rl.rlim_cur) + " is below the " +
                     std::to_string(need) + " descriptors workers.max = " +
                     std::to_string(c.workers.max) + " needs; raise it (ulimit -n, LimitNOFILE=)");
    else
        log::notice("raised RLIMIT_NOFILE from " + std::to_string(was) + " to " +
                    std::to_string(rl.rlim_cur));
}

}  // namespace preforkd::master
