// log.cpp - diagnostics through syslog(3) and, in the foreground, stderr.
//
// syslog(3) is kept because it is what an administrator's tools read
// (journald takes it over /dev/log).  The stderr copy is built in one buffer
// and written with one write(2) so lines from the master and the workers do
// not interleave.  Nothing here allocates beyond the line itself.
#include "preforkd/log.hpp"

#include <cstdlib>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

namespace preforkd::log {
namespace {

int g_max_priority = LOG_INFO;
bool g_stderr = false;

const char* level_name(int priority)
{
    switch (priority) {
    case LOG_EMERG: return "emerg";
    case LOG_ALERT: return "alert";
    case LOG_CRIT: return "crit";
    case LOG_ERR: return "err";
    case LOG_WARNING: return "warning";
    case LOG_NOTICE: return "notice";
    case LOG_INFO: return "info";
    default: return "debug";
    }
}

void write_stderr(int priority, const std::string& message)
{
    std::string line = "preforkd[" + std::to_string(::getpid()) + "]: ";
    line += level_name(priority);
    line += ": ";
    line += message;
    line += '\n';
    // A full or closed stderr must not stop the server: the result is ignored.
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

}  // namespace

// Under systemd, stderr is often the journal itself (JOURNAL_STREAM names
// its device and inode); a copy there would show every line twice.
static bool stderr_is_journal()
{
    const char* stream = std::getenv("JOURNAL_STREAM");
    struct stat st;
    if (!stream || ::fstat(STDERR_FILENO, &st) != 0)
        return false;
    std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    return mine == stream;
}

void open(int facility, int max_priority, bool to_stderr)
{
    ::openlog("preforkd", LOG_PID | LOG_NDELAY, facility);
    g_max_priority = max_priority;
    g_stderr = to_stderr && !stderr_is_journal();
}

void configure(int facility, int max_priority)
{
    ::closelog();
    ::openlog("preforkd", LOG_PID | LOG_NDELAY, facility);
    g_max_priority = max_priority;
}

void set_stderr(bool on)
{
    g_stderr = on;
}

void write(int priority, const std::string& message)
{
    if (priority > g_max_priority)
        return;
    ::syslog(priority, "%s", message.c_str());
    if (g_stderr)
        write_stderr(priority, message);
}

void err(const std::string& message) { write(LOG_ERR, message); }
void warning(const std::string& message) { write(LOG_WARNING, message); }
void notice(const std::string& message) { write(LOG_NOTICE, message); }
void info(const std::string& message) { write(LOG_INFO, message); }
void debug(const std::string& message) { write(LOG_DEBUG, message); }

}  // namespace preforkd::log
