// log_writer.cpp - buffered access-log lines, written whole.
//
// A failed write (a full disk) must not fail the request: it is said once
// a minute, and the recovery once.  A write that took part of the buffer
// leaves a fragment the next line would be glued to, so it is cut off
// again when nothing was appended after it: the log holds whole lines or
// none.  A reopened descriptor is dup2()ed over the old one, so the number
// the writer holds never changes.
#include "preforkd/log_writer.hpp"

#include <cerrno>
#include <cstdint>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include "preforkd/log.hpp"
#include "preforkd/scoreboard.hpp"

namespace preforkd::log_writer {
namespace {

// The flush timer runs while a buffer holds lines: it interrupts whatever
// wait the worker is in once `seconds` have passed, and again every
// `seconds` after, in case one signal landed just before a blocking accept().
void set_flush_timer(int seconds)
{
    itimerval t{};
    t.it_value.tv_sec = t.it_interval.tv_sec = seconds;
    ::setitimer(ITIMER_REAL, &t, nullptr);
}

// A full disk takes part of a line: if nothing was appended after it, the
// fragment is cut off again.
void take_back(int fd, ssize_t written)
{
    off_t end = ::lseek(fd, 0, SEEK_CUR);
    struct stat st;
    if (written > 0 && end >= written && ::fstat(fd, &st) == 0 && st.st_size == end) {
        int ignored = ::ftruncate(fd, end - written);
        (void)ignored;
    }
}

// A written buffer's whole pages go back to the kernel, so a worker between
// bursts holds none of them: each worker's are private (4 KiB and a bit
// with the default log.access_buffer, 16 KiB each with 16384: 4 MiB over a
// pool of 256), and its next lines fault in zeroed ones, a page fault or
// two per buffer of lines.
// Only pages wholly inside the reserved storage are released; the
// allocator's own words lie outside it.
void release_pages(std::string& buffer)
{
    // Not a function-local static: its guard would be one more page of
    // .bss written in every worker (see worker.cpp on per-process state).
    const std::uintptr_t page = std::uintptr_t(::sysconf(_SC_PAGESIZE));
    auto start = reinterpret_cast<std::uintptr_t>(buffer.data());
    std::uintptr_t begin = (start + page - 1) & ~(page - 1);
    std::uintptr_t end = (start + buffer.capacity()) & ~(page - 1);
    if (end > begin)
        ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace

Writer::Writer(Settings settings, std::vector<Sink> sinks, Reopen reopen)
    : settings_(settings), reopen_(reopen)
{
    for (Sink& s : sinks)
        outs_.push_back(Out{std::move(s), {}, false, 0});
    // A buffer grown line by line doubles its way past the limit and leaves
    // each smaller copy behind in the heap: about 60 KiB of pages touched
    // for a 16 KiB buffer (log.access_buffer = 16384).  Reserved once (with
    // room for the line that takes it past the limit), only the bytes
    // written are.
    constexpr std::size_t kLineRoom = 2048;
    if (settings_.buffer > 0)
        for (Out& out : outs_)
            if (out.sink.fd)
                out.pending.reserve(settings_.buffer + kLineRoom);
}

bool Writer::enabled() const noexcept
{
    return settings_.mode != access_log::Mode::off || outs_.size() > 1;
}

void Writer::write(const access_log::Entry& e)
{
    bool site_log = e.sink > 0 && std::size_t(e.sink) < outs_.size();
    if (e.sink < 0 || (!site_log && settings_.mode == access_log::Mode::off))
        return;
    if (!site_log && settings_.mode == access_log::Mode::syslog) {
        std::string line = access_log::format(e, settings_.format);
        line.pop_back();
        ::syslog(settings_.syslog_priority, "%s", line.c_str());
        return;
    }
    Out& out = outs_[site_log ? std::size_t(e.sink) : 0];
    bool was_empty = pending_bytes_ == 0;
    std::size_t before = out.pending.size();
    access_log::append(out.pending, e, out.sink.format);
    pending_bytes_ += out.pending.size() - before;
    if (pending_bytes_ >= settings_.buffer)
        flush();
    else if (was_empty)
        set_flush_timer(settings_.flush_seconds);
}

void Writer::flush()
{
    if (pending_bytes_ == 0)
        return;
    if (settings_.buffer > 0)
        set_flush_timer(0);
    // A reopen since the last write: these lines go to the new files, so
    // the renamed ones stop growing once the reopen is done.
    take_reopened();
    for (Out& out : outs_) {
        if (out.pending.empty())
            continue;
        write_lines(out);
        out.pending.clear();
        release_pages(out.pending);
    }
    pending_bytes_ = 0;
}

void Writer::write_lines(Out& out)
{
    int fd = out.sink.fd.get();
    ssize_t n = ::write(fd, out.pending.data(), out.pending.size());
    if (n >= 0 && std::size_t(n) < out.pending.size()) {
        take_back(fd, n);
        n = -1;
        errno = ENOSPC;
    }
    std::int64_t now = scoreboard::now_ms();
    if (n < 0) {
        if (!out.failing || now - out.failure_said_ms >= 60000) {
            log::err(sys_message("write", out.sink.path, errno) + "; access log lines are being lost");
            out.failure_said_ms = now;
        }
        out.failing = true;
    } else if (out.failing) {
        log::notice("access log " + out.sink.path + " is writable again");
        out.failing = false;
    }
}

void Writer::take_reopened()
{
    if (!reopen_.epoch)
        return;
    std::uint32_t epoch = reopen_.epoch->load(std::memory_order_acquire);
    if (epoch == reopen_.seen)
        return;
    for (const access_log::Received& r : access_log::receive_fds(reopen_.channel))
        if (r.sink < outs_.size() && outs_[r.sink].sink.fd)
            ::dup2(r.fd.get(), outs_[r.sink].sink.fd.get());
    reopen_.seen = epoch;
}

}  // namespace preforkd::log_writer
