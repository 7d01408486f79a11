// log_writer.hpp - a worker's access logs: buffered whole lines, reopen.
//
// A worker writes the lines of its requests to the main access log (a
// file or syslog) and to the logs of the sites that have their own.  Lines
// are gathered per log and written whole, many per write(2) on an O_APPEND
// file, so that the lines of many workers never interleave.  The buffers
// are written when they hold Settings::buffer bytes, when the oldest line
// is Settings::flush_seconds old, and when the worker leaves.
//
// The age is kept by ITIMER_REAL: write() arms it when a buffer stops
// being empty, flush() disarms it.  The process's SIGALRM handler only
// records that a flush is due; its owner calls flush() outside the handler.
//
// A reopen (SIGUSR1 to the master) arrives as new descriptors on the
// worker's channel to the master, with a bump of the scoreboard's log
// epoch; the writer takes them before its next write, so buffered lines go
// to the new files.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "preforkd/access_log.hpp"
#include "preforkd/fd.hpp"

namespace preforkd::log_writer {

// One log the worker writes: the main one or a site's.
struct Sink {
    Fd fd;                               // O_APPEND; invalid for no file
    std::string path;                    // for diagnostics
    access_log::Format format = access_log::Format::combined;
};

struct Settings {
    access_log::Mode mode = access_log::Mode::off;   // of the main log
    access_log::Format format = access_log::Format::combined;   // syslog lines
    int syslog_priority = (3 << 3) | 6;  // access_log::syslog_priority()
    std::size_t buffer = 0;              // bytes held before a write; 0: none
    int flush_seconds = 1;               // longest a buffered line waits
};

// Where reopened descriptors come from: the channel, and the epoch the
// master bumps after sending them (`seen`: its value at fork).
struct Reopen {
    int channel = -1;
    const std::atomic<std::uint32_t>* epoch = nullptr;
    std::uint32_t seen = 0;
};

class Writer {
public:
    Writer() = default;
    // `sinks[0]` is the main log; `sinks[n]` the site log whose sink
    // number (http::VirtualSite::log) is n.
    Writer(Settings settings, std::vector<Sink> sinks, Reopen reopen);

    // Whether any line is written at all.
    bool enabled() const noexcept;
    // Buffers (or, in syslog mode, sends) the line of one request.
    void write(const access_log::Entry& entry);
    // Writes every buffered line now and disarms the timer.
    void flush();

private:
    struct Out {
        Sink sink;
        std::string pending;             // whole lines only
        bool failing = false;
        std::int64_t failure_said_ms = 0;
    };

    void write_lines(Out& out);
    void take_reopened();

    Settings settings_;
    std::vector<Out> outs_;
    Reopen reopen_;
    std::size_t pending_bytes_ = 0;      // over all logs
};

}  // namespace preforkd::log_writer
