// sandbox.hpp - what a worker may still do once it serves: a seccomp
// allow-list of system calls and a Landlock rule set that allows reading
// beneath its generation's roots and nothing else.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace preforkd::sandbox {

// Which mechanisms took effect.  A kernel without one is not an error: the
// worker serves anyway, and the caller says so once.
struct Outcome {
    bool seccomp = false;
    bool landlock = false;
    int landlock_abi = 0;     // the kernel's Landlock ABI; 0 or less: none
    int seccomp_error = 0;    // errno of the failed seccomp load, when !seccomp
};

// Readies, while the process still may, what it needs later and the
// sandbox would refuse: in sanitizer builds, reports go to stderr rather
// than to a file opened at report time; nothing otherwise.  Call before
// the privilege drop; install() calls it too.
void prepare();

// Builds, once per process, the seccomp programs install() loads, so that
// a master calling it before it forks spares every worker and the parker
// from building their own (libseccomp's work, and its heap pages, private
// to each child).  Without it, or when it failed (false), install() builds
// the program itself (and reports what fails).
bool compile() noexcept;

// Confines the calling process for the rest of its life, after the privilege
// drop and before the first accept().  Reading is allowed beneath each of
// `roots` (directories as the process sees them, after any chroot; a root
// that cannot be opened is skipped: nothing there could be served anyway);
// no file may be written, created, removed or executed anywhere.  System
// calls outside the worker's list raise SIGSYS (SECCOMP_RET_TRAP): install a
// handler first if the call's number should be recorded.  Throws
// std::system_error naming the call when a mechanism the kernel has fails to
// install, so a worker never serves half-confined by accident.
// The parker (parker.hpp) gets a smaller list of its own and no file access
// at all: pass Profile::parker and no roots.
enum class Profile { worker, parker };
Outcome install(const std::vector<std::string>& roots, Profile profile = Profile::worker);

// Installs the SIGSYS handler of a confined process: a trapped call stores
// its number + 1 in `where` (shared memory the master reads, such as the
// worker's scoreboard slot), then the signal's default action ends the
// process, so the wait status still says SIGSYS.  Call before install().
void record_forbidden_calls(std::atomic<std::int32_t>& where);

// The name of system call `number` on this architecture ("openat"), or ""
// when it has none.
std::string syscall_name(int number);

}  // namespace preforkd::sandbox
