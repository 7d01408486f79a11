// sandbox.cpp - confining a worker: seccomp allow-list and Landlock.
//
// A worker parses bytes from anyone, so it is confined the way OpenBSD
// pledges and unveils: once it has dropped privileges and before its first
// accept(), it may make only the system calls it really makes, and read
// only beneath the roots of its generation.  Logs, the media types file and
// the listeners were opened by the master; the access log is written through
// a descriptor the master passes in.  So a worker needs no path to write,
// create or execute anything, and the rule set allows none.
//
// Landlock goes first (its own system calls are not on the list), through
// syscall(2) since glibc has no wrappers; the rights handled are every
// right the kernel's ABI knows, and each root gets READ_FILE | READ_DIR.
// stat(2), readlink(2) and O_PATH opens are not Landlock's to refuse, so
// realpath(3) still works; an open(2) beneath no root fails with EACCES.
//
// The seccomp filter (libseccomp) traps everything off the list with
// SECCOMP_RET_TRAP, not a plain kill: the worker's SIGSYS handler can then
// record which call it was, for the master's log, before the worker dies.
// A few calls are allowed only with harmless arguments: openat without a
// write mode, O_CREAT or O_TRUNC; mmap and mprotect without PROT_EXEC (no
// new code); ioctl only FIONREAD.  socket(2) fails with EACCES instead of trapping:
// glibc's syslog(3) tries a fresh socket when the one the master opened
// broke, and a lost log line is better than a dead worker; connect(2) stays
// off the list, so no socket reaches anywhere.  openat2(2) is allowed only
// under Landlock (it carries its flags in memory seccomp cannot read);
// without Landlock it says ENOSYS and the static file code takes its
// open(2) path.
//
// The list was measured, not guessed: the whole integration suite with the
// daemon under `strace -D -ff` and a filter whose default action only logs,
// counting each worker's calls after its filter went in (242 workers,
// 2026-11-27): recvfrom 54k, newfstatat 51k, sendto 44k, ppoll 31k,
// rt_sigprocmask 26k, close 20k, accept4 13k, sendfile 7k, openat2 7k,
// ioctl (all FIONREAD) 3.5k, shutdown 3.2k, setitimer 779, write 350,
// openat 208, rt_sigreturn 149, exit_group 97, dup2 96, pread64 48,
// readlink 39, recvmsg 34, epoll_pwait 18, getpid 13, socket 6, fcntl 6,
// getrandom 4, getdents64 4, lseek 3, and once each faccessat2, ftruncate,
// gettid, tgkill.  A wrk run adds nothing new.  kAllowed says who makes
// each; memory and clock calls the C library makes on paths the suite
// does not reach (a large malloc, a clock without vDSO) are kept.
// TLS connections (measured the same way on 2026-11-27, strace -ff over
// handshakes with and without SNI, a resumption, a 3 MB body, plain HTTP
// and a truncated hello on a TLS port, counting calls after each worker's
// first accept4) add read(2) (55; OpenSSL's socket BIO), more write(2) and
// pread64 (records out, file bodies in 16 KiB reads) and one getrandom;
// OpenSSL was initialised by the master, so no file is opened.  setsockopt
// is what OpenSSL's kernel TLS calls (TCP_ULP "tls", then SOL_TLS TLS_TX);
// these kernels lack kernel TLS, so that call is listed from OpenSSL's
// source, not measured.
// Sanitizer builds add what their runtime calls (kSanitizerAllowed, from the
// same run under ASan+UBSan: mmap 4k, clock_gettime 166, pipe2 141,
// sigaltstack 90), and their reports go to stderr (prepare()).
//
// The filter is compiled once, by the master before it forks (compile()),
// in a short-lived child of its own (compile_apart), and each worker only
// hands the ready BPF program to the kernel.  Built with libseccomp in every
// worker, or in the master itself, the filter's scratch memory cost each
// worker some 55 KiB of private heap (bench ka-c256, 300 workers: 56.8 MiB
// total PSS with the sandbox, 40.2 MiB without).  Nothing in it depends on the worker
// (no pid, no root), so one program serves every worker and generation.
//
// What it costs a request (measured 2026-11-27, Linux 6.18, a forked child
// timing a loop of calls with and without install(), best of 7 interleaved
// rounds): the kernel caches "allow" per call number for every call allowed
// whatever its arguments (Linux >= 5.11; an emulation of the kernel's check
// on the loaded filter finds all of them cached, with the binary tree too),
// so those pay only the seccomp entry (getpid +240 ns, recv +320 ns in this
// virtual machine, as much as with a one-instruction allow-all filter).
// Only open, openat, mmap, mprotect and ioctl run the filter (ioctl FIONREAD
// +410 ns, once per connection at most).  Landlock adds to each open beneath
// a root (openat relative to the root's descriptor: 9.8 us, 12.3 us under
// Landlock); stat(2) costs nothing more.
//
// Rejected: a list of forbidden calls (a new kernel's call would be
// allowed), SECCOMP_RET_KILL_PROCESS (the master could not name the call),
// and filtering connect(2) by address (seccomp cannot read the sockaddr).
#include "preforkd/sandbox.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "preforkd/fd.hpp"
#include "preforkd/signals.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace preforkd::sandbox {
namespace {

// Rights newer than the kernel headers of the build machine (Linux 6.2, 6.10).
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

constexpr std::uint64_t kReadRights = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;

// What the worker really calls, by name (resolved per architecture; a name
// the architecture lacks is skipped), and who calls it.  Measured on
// x86_64 with glibc 2.36; the names in parentheses are the same call as
// other C libraries or architectures spell it.
constexpr const char* kAllowed[] = {
    // serving: accept, read the request, answer it, wait for the socket
    "accept4", "recvfrom", "sendto", "sendfile",   // (accept)
    "accept",
    "ppoll", "epoll_pwait", "shutdown", "close",   // waits; lingering close
    // files beneath the roots (openat, openat2 and ioctl are added checked)
    "newfstatat", "fstat", "stat", "lstat", "statx",   // (fstat, stat, lstat, statx)
    "readlink", "readlinkat",                      // realpath(3)  (readlinkat)
    "faccessat2", "faccessat", "access",           // realpath(3) of "dir/"
    "getdents64", "lseek", "fcntl", "pread64",     // autoindex; the file cache
    "getrandom",                                   // multipart boundaries; TLS keys
    // TLS: OpenSSL's socket BIO reads with read(2) (and writes with
    // write(2), listed below); kernel TLS is switched on with setsockopt
    // (TCP_ULP, SOL_TLS) - see the TLS note at the top
    "read", "setsockopt",
    // parking: a connection handed to the parker (sendmsg) and taken back
    // from the ready queue (recvmsg, below), its client address read back,
    // and the look at each listener a leaving worker takes (poll)
    "sendmsg", "getpeername", "poll",
    // logs: lines, syslog(3), a reopened access log passed in, a torn line
    "write", "getpid", "recvmsg", "dup2", "dup3", "ftruncate",
    // memory: malloc (mmap and mprotect are added checked)
    "brk", "munmap", "mremap", "madvise",
    // time and signals: the flush timer, clocks when the vDSO cannot
    "setitimer", "rt_sigprocmask", "rt_sigreturn", "restart_syscall",
    "clock_gettime", "gettimeofday",
    // the end, and raise(3) of SIGSYS by its handler (whose tgkill stays
    // off the list: see on_forbidden_call)
    "exit_group", "exit", "gettid",
};

// The parker's list, measured the same way (strace -f -c on the parker
// through a head completed in it, a keep-alive connection parked and
// resumed, a head that expired, an idle one that expired and one whose
// client left: epoll_pwait 14, epoll_ctl 10, recvmsg 9, close 6, sendmsg 2,
// recvfrom 2, brk 1; the trace began after the loop's start, which adds
// epoll_create1, found when the first sandboxed parker died of it), plus
// what its logging, malloc, clocks and its end need as the worker's do.  It opens no file and accepts nothing: no
// accept, no open.  It sends clients only the rest of an answer a worker handed over (sendto, and sendfile from the
// file whose descriptor came with it).
constexpr const char* kParkerAllowed[] = {
    "epoll_create1", "epoll_pwait", "epoll_ctl", "recvmsg", "sendmsg", "recvfrom", "close", "sendfile",
    "write", "sendto", "getpid",                   // log lines, syslog(3)
    "brk", "munmap", "mremap", "madvise",          // malloc (mmap added checked)
    "clock_gettime", "gettimeofday", "rt_sigprocmask", "rt_sigreturn", "restart_syscall",
    "exit_group", "exit", "gettid",
};

// Extra calls of the ASan/UBSan runtime in sanitizer builds, measured the
// same way and with a report forced from inside the sandbox: its alternate
// signal stack, the pipe through which UBSan's vptr check asks whether
// memory is readable (refused, it reports objects as having an invalid
// vptr), and a futex of its report path.
constexpr const char* kSanitizerAllowed[] = {"sigaltstack", "pipe2", "pipe", "futex"};

// Calls a sanitizer runtime makes to start its symbolizer at report time:
// they fail instead of trapping, so the report is written unsymbolized
// rather than cut off.  (Its reads of /proc/self/cmdline and environ fail
// with EACCES, which it tolerates.)
constexpr const char* kSanitizerRefused[] = {"clone", "clone3", "fork", "vfork", "socketpair"};

bool running_under_sanitizer()
{
#if defined(__SANITIZE_ADDRESS__)
    return true;
#else
    return false;
#endif
}

// ---- Landlock ------------------------------------------------------------

int landlock_abi()
{
    long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? 0 : int(abi);
}

std::uint64_t handled_rights(int abi)
{
    std::uint64_t rights = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;   // ABI 1: bits 0-12
    if (abi >= 2)
        rights |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        rights |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return rights;
}

void allow_reading(int ruleset, const std::string& root)
{
    Fd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir)
        return;
    landlock_path_beneath_attr rule{};
    rule.allowed_access = kReadRights;
    rule.parent_fd = dir.get();
    if (::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0)
        throw sys_error("landlock_add_rule", root);
}

void install_landlock(int abi, const std::vector<std::string>& roots)
{
    landlock_ruleset_attr attr{};
    attr.handled_access_fs = handled_rights(abi);
    Fd ruleset(int(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0)));
    if (!ruleset)
        throw sys_error("landlock_create_ruleset");
    for (const std::string& root : roots)
        allow_reading(ruleset.get(), root);
    // Required by landlock_restrict_self for an unprivileged process.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        throw sys_error("prctl", "PR_SET_NO_NEW_PRIVS");
    if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0)
        throw sys_error("landlock_restrict_self");
}

// ---- seccomp -------------------------------------------------------------

// Owns a libseccomp context; libseccomp reports errors as negative errno.
class Filter {
public:
    Filter() : ctx_(seccomp_init(SCMP_ACT_TRAP))
    {
        if (!ctx_)
            throw sys_error("seccomp_init", "", ENOMEM);
        // A call whose rule checks an argument runs the filter: a binary
        // tree of call numbers instead of a linear list keeps that to a few
        // compares.  (A call allowed whatever its arguments never runs it:
        // the kernel caches that verdict per call number.)
        seccomp_attr_set(ctx_, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    }
    ~Filter() { seccomp_release(ctx_); }
    Filter(const Filter&) = delete;
    Filter& operator=(const Filter&) = delete;

    template <typename... Cmp>
    void add(std::uint32_t action, const char* name, Cmp... cmp)
    {
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
            return;   // not a call of this architecture
        int rc = seccomp_rule_add(ctx_, action, nr, sizeof...(cmp), cmp...);
        if (rc < 0)
            throw sys_error("seccomp_rule_add", name, -rc);
    }

    // Writes the BPF program libseccomp generates, as the kernel takes it.
    void export_to(int fd)
    {
        int rc = seccomp_export_bpf(ctx_, fd);
        if (rc < 0)
            throw sys_error("seccomp_export_bpf", "", -rc);
    }

private:
    scmp_filter_ctx ctx_;
};

// The calls both lists allow with their arguments checked.  None depends
// on the process, so one program serves every worker the master forks.
void add_common_checked(Filter& f)
{
    f.add(SCMP_ACT_ALLOW, "mmap", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    f.add(SCMP_ACT_ALLOW, "mprotect", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    f.add(SCMP_ACT_ERRNO(EACCES), "socket");
}

void add_checked_calls(Filter& f, bool landlock)
{
    constexpr scmp_datum_t kWriting = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC;
    f.add(SCMP_ACT_ALLOW, "openat", SCMP_A2(SCMP_CMP_MASKED_EQ, kWriting, 0));
    f.add(SCMP_ACT_ALLOW, "open", SCMP_A1(SCMP_CMP_MASKED_EQ, kWriting, 0));
    f.add(landlock ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(ENOSYS), "openat2");
    f.add(SCMP_ACT_ALLOW, "ioctl", SCMP_A1(SCMP_CMP_EQ, FIONREAD));
    add_common_checked(f);
}

// Writes the program of `profile` to `fd`.
void export_program(int fd, Profile profile, bool landlock)
{
    Filter f;
    if (profile == Profile::parker) {
        for (const char* name : kParkerAllowed)
            f.add(SCMP_ACT_ALLOW, name);
        add_common_checked(f);
    } else {
        for (const char* name : kAllowed)
            f.add(SCMP_ACT_ALLOW, name);
        add_checked_calls(f, landlock);
    }
    if (running_under_sanitizer()) {
        for (const char* name : kSanitizerAllowed)
            f.add(SCMP_ACT_ALLOW, name);
        for (const char* name : kSanitizerRefused)
            f.add(SCMP_ACT_ERRNO(EPERM), name);
        // Whether the report may be coloured: "not a terminal".
        f.add(SCMP_ACT_ERRNO(ENOTTY), "ioctl", SCMP_A1(SCMP_CMP_EQ, TCGETS));
    }
    f.export_to(fd);
}

// A memory file for an exported program, and the program read back from it.
Fd program_file()
{
    Fd out(::memfd_create("seccomp", MFD_CLOEXEC));
    if (!out)
        throw sys_error("memfd_create", "seccomp");
    return out;
}

std::vector<sock_filter> read_program(int fd)
{
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % off_t(sizeof(sock_filter)) != 0)
        throw sys_error("seccomp_export_bpf", "", EINVAL);
    std::vector<sock_filter> code(std::size_t(size) / sizeof(sock_filter));
    if (::pread(fd, code.data(), std::size_t(size), 0) != size)
        throw sys_error("pread", "seccomp program");
    return code;
}

std::vector<sock_filter> compile_here(Profile profile, bool landlock)
{
    Fd out = program_file();
    export_program(out.get(), profile, landlock);
    return read_program(out.get());
}

// The same, with libseccomp run in a short-lived child: its scratch memory,
// freed, would stay behind as small free chunks spread over the caller's
// heap, and every child forked later would copy each such page the first
// time its malloc relinked a chunk there (some 50 KiB per worker, measured).
std::vector<sock_filter> compile_apart(Profile profile, bool landlock)
{
    Fd out = program_file();
    pid_t pid = ::fork();
    if (pid < 0)
        throw sys_error("fork", "seccomp compiler");
    if (pid == 0) {
        int rc = 0;
        try {
            export_program(out.get(), profile, landlock);
        } catch (...) {
            rc = 1;
        }
        ::_exit(rc);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw sys_error("seccomp_export_bpf", "", EINVAL);
    return read_program(out.get());
}

// The programs compile() built before the forks, read (never written) by
// each child: its copy of these pages stays the master's.
struct Compiled {
    bool ready = false;
    bool landlock = false;   // what the worker's program assumes
    std::vector<sock_filter> worker, parker;
};
Compiled g_compiled;

// Returns 0, or the errno of a kernel that has no seccomp filters.
int load(const std::vector<sock_filter>& code)
{
    sock_fprog prog{};
    prog.len = static_cast<unsigned short>(code.size());
    prog.filter = const_cast<sock_filter*>(code.data());
    // Required for an unprivileged process (Landlock set it already).
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        throw sys_error("prctl", "PR_SET_NO_NEW_PRIVS");
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0)
        return 0;
    int e = errno;
    if (e == EINVAL || e == ENOSYS)
        return e;
    throw sys_error("seccomp", "SECCOMP_SET_MODE_FILTER", e);
}

int install_seccomp(bool landlock, Profile profile)
{
    const Compiled& c = g_compiled;
    if (c.ready && profile == Profile::parker)
        return load(c.parker);
    if (c.ready && c.landlock == landlock)
        return load(c.worker);
    // The master could not compile it before the fork, so this process
    // built its own in its heap and freed it again: give those pages back,
    // or it keeps some 50 KiB of private memory that nothing uses.  Only
    // here: in a worker that loaded the master's program, malloc_trim()
    // would itself write a page of the heap it shares with the master.
    int result = load(compile_here(profile, landlock));
    ::malloc_trim(0);
    return result;
}

// Set in each worker after the fork; in .data with the rest of what a
// handler touches (PREFORKD_HANDLER_STATE, signals.hpp).
PREFORKD_HANDLER_STATE std::atomic<std::int32_t>* g_record = nullptr;

// si_code of a SIGSYS raised by a seccomp filter (SYS_SECCOMP in the
// kernel's <asm-generic/siginfo.h>, which clashes with <signal.h>).
constexpr int kSysSeccomp = 1;

// A trapped call: record which (a lock-free atomic store), then die of the
// signal.  SA_RESETHAND has restored the default action.  Under the filter
// raise(3)'s tgkill(2) is itself off the list: its trap finds SIGSYS blocked
// (this handler runs) and the default action in place, so the kernel
// unblocks it and the process dies of SIGSYS at once, the first call still
// recorded.  Before the filter, the raised signal lands as soon as this
// handler returns.  A SIGSYS sent by kill(2) carries no call and records
// nothing.
extern "C" void on_forbidden_call(int, siginfo_t* info, void*)
{
    if (g_record && info->si_code == kSysSeccomp)
        g_record->store(info->si_syscall + 1);
    ::raise(SIGSYS);
}

}  // namespace

void record_forbidden_calls(std::atomic<std::int32_t>& where)
{
    static_assert(std::atomic<std::int32_t>::is_always_lock_free);
    g_record = &where;
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_forbidden_call;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    if (::sigaction(SIGSYS, &sa, nullptr) != 0)
        throw sys_error("sigaction", "SIGSYS");
}

// A sanitizer runtime opens its report file (log_path.PID) only when it
// first reports, which the sandbox, or a dropped privilege, would refuse
// (and it dies of the refusal).  A confined process reports to stderr
// instead, which the daemon's output already collects; opening the file
// early would leave an empty one behind for every worker.
void prepare()
{
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_set_report_fd(reinterpret_cast<void*>(std::uintptr_t(STDERR_FILENO)));
#endif
}

bool compile() noexcept
{
    if (g_compiled.ready)
        return true;
    try {
        g_compiled.landlock = landlock_abi() >= 1;
        g_compiled.worker = compile_apart(Profile::worker, g_compiled.landlock);
        g_compiled.parker = compile_apart(Profile::parker, true);
        g_compiled.ready = true;
    } catch (const std::exception&) {
        // Each child then compiles its own, and says why if it fails too.
    }
    return g_compiled.ready;
}

Outcome install(const std::vector<std::string>& roots, Profile profile)
{
    prepare();
    Outcome o;
    o.landlock_abi = landlock_abi();
    if (o.landlock_abi >= 1) {
        install_landlock(o.landlock_abi, roots);
        o.landlock = true;
    }
    o.seccomp_error = install_seccomp(o.landlock, profile);
    o.seccomp = o.seccomp_error == 0;
    return o;
}

std::string syscall_name(int number)
{
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, number);
    if (!name)
        return "";
    std::string out = name;
    std::free(name);
    return out;
}

}  // namespace preforkd::sandbox
