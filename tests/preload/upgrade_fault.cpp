// upgrade_fault.cpp - a fault, on purpose, in the new image of an upgrade
// test, preloaded (LD_PRELOAD) by the wrapper script the test installs as
// the "new binary".
//
// The failures the upgrade must survive happen inside the new image after
// it has read its handover, where no script can reach: this library waits
// there, in fork(), the call with which the new image starts its workers.
// PREFORKD_TEST_FAULT says what happens:
//   crash:SIGNAL:N  the master raises SIGNAL at its Nth fork (a crash of
//                   the new image with N-1 of its workers started);
//   exit            every worker it forks exits 1 at once (workers that
//                   die at start-up);
//   hang            every worker it forks waits forever (workers that
//                   never come up).
// Only an image that took over forward (a handover without failure=) is
// affected; the library removes LD_PRELOAD and PREFORKD_TEST_FAULT from the
// environment at load, so the image the master returns to, and every later
// upgrade, runs without it.
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

namespace {

enum class Mode { none, crash, exit, hang };

Mode g_mode = Mode::none;
int g_signal = 0;
int g_crash_at = 1;
int g_forks = 0;
pid_t g_master = 0;
bool g_compiler_next = false;   // the next fork is the seccomp compiler's

__attribute__((constructor)) void load()
{
    const char* fault = std::getenv("PREFORKD_TEST_FAULT");
    const char* handover = std::getenv("PREFORKD_UPGRADE");
    bool forward = handover && !std::strstr(handover, "failure=");
    if (fault && forward) {
        if (std::strncmp(fault, "crash:", 6) == 0) {
            g_mode = Mode::crash;
            char* end = nullptr;
            g_signal = int(std::strtol(fault + 6, &end, 10));
            if (end && *end == ':')
                g_crash_at = int(std::strtol(end + 1, nullptr, 10));
        } else if (std::strcmp(fault, "exit") == 0) {
            g_mode = Mode::exit;
        } else if (std::strcmp(fault, "hang") == 0) {
            g_mode = Mode::hang;
        }
    }
    g_master = ::getpid();
    ::unsetenv("PREFORKD_TEST_FAULT");
    ::unsetenv("LD_PRELOAD");
}

}  // namespace

// The master compiles the workers' seccomp filter in a short-lived child
// of its own (src/sandbox.cpp: memfd_create("seccomp"), then fork); that
// fork starts no worker, and is neither counted nor faulted.
extern "C" int memfd_create(const char* name, unsigned int flags)
{
    using Create = int (*)(const char*, unsigned int);
    static Create real = reinterpret_cast<Create>(::dlsym(RTLD_NEXT, "memfd_create"));
    if (::getpid() == g_master && name && std::strcmp(name, "seccomp") == 0)
        g_compiler_next = true;
    return real(name, flags);
}

extern "C" pid_t fork(void)
{
    using Fork = pid_t (*)();
    static Fork real = reinterpret_cast<Fork>(::dlsym(RTLD_NEXT, "fork"));
    bool compiler = g_compiler_next;
    g_compiler_next = false;
    if (g_mode == Mode::none || ::getpid() != g_master || compiler)
        return real();
    if (g_mode == Mode::crash) {
        if (++g_forks == g_crash_at)
            ::raise(g_signal);
        return real();
    }
    pid_t pid = real();
    if (pid == 0 && g_mode == Mode::exit)
        ::_exit(1);
    if (pid == 0)
        for (;;)
            ::pause();
    return pid;
}
