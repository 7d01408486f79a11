// config.hpp - the configuration of preforkd as plain data.
//
// The loader reads libconfig syntax (DESIGN.md section 4) into a Config.
// libconfig types never leave config.cpp.  Every key has a default; an
// unknown key, a wrong type or an out-of-range value is an error naming the
// file and line ("preforkd.conf:12: workers.max must be between 1 and 4096").
// All errors found are collected, not only the first.
#pragma once

#include <stdexcept>
#include <sched.h>
#include <string>
#include <vector>

namespace preforkd::config {

// Every error found while loading or checking, one "file:line: message" each.
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<std::string> messages);
    const std::vector<std::string>& messages() const noexcept { return messages_; }

private:
    std::vector<std::string> messages_;
};

enum class AccessFormat { common, combined };

struct Workers {
    int start = 5;
    int min_spare = 5;
    int max_spare = 10;
    int max = 256;                 // 1..4096 (kMaxWorkers)
    long max_requests = 10000;     // connections before recycling, 0 = never
    int graceful_timeout = 30;     // seconds
    int watchdog_timeout = 60;     // seconds, 0 = off
    std::string cpu_scheduling = "batch";   // "batch" or "other"
    int cpu_policy = SCHED_BATCH;           // derived
};

struct Http {
    std::string root = "/var/www/html";
    std::vector<std::string> index = {"index.html"};
    bool autoindex = false;
    int keepalive_timeout = 5;
    int keepalive_requests = 100;
    int header_timeout = 20;       // seconds for a request head...
    int header_timeout_max = 40;   // ...extended up to this while data flows
    int header_min_rate = 500;     // bytes/s that earn one more second (0 = none)
    bool adaptive_keepalive = true;  // shorten keep-alive as idle workers run out
    int send_timeout = 60;
    int max_header_size = 8192;
    int max_headers = 100;
    bool server_tokens = false;
    bool follow_symlinks = false;  // symlinks may lead outside root
    bool gzip_static = false;      // serve file.gz to clients accepting gzip
    int max_ranges = 64;           // ranges in one request, 0 = ranges off
    int max_discard_body = 65536;  // bytes of a refused request's body skipped
    std::string mime_types = "/etc/mime.types";
    std::string default_type = "application/octet-stream";
};

struct Log {
    std::string level = "info";            // err warning notice info debug
    int level_priority = 6;                // LOG_INFO, derived from level
    std::string syslog_facility = "daemon";
    int facility_code = 3 << 3;            // LOG_DAEMON, derived
    std::string access_log = "/var/log/preforkd/access.log";  // path, "syslog", "off"
    AccessFormat access_format = AccessFormat::combined;
    int access_buffer = 16384;   // bytes a worker gathers per write; 0: a write per line
    int access_flush = 1;        // seconds a gathered line waits at most
};

inline constexpr int kMaxWorkers = 4096;

struct Config {
    std::string file;            // absolute path it was loaded from ("" for strings)
    std::string user;            // "" = not set
    std::string group;           // "" = not set
    std::string pid_file = "/run/preforkd.pid";
    std::string chroot;          // "" = none
    std::vector<std::string> listen = {"0.0.0.0:80", "[::]:80"};
    std::string unix_mode = "0666";   // permissions of unix: listening sockets
    int unix_mode_bits = 0666;        // derived
    int defer_accept = 1;             // TCP_DEFER_ACCEPT seconds, 0 = off
    bool sandbox = true;              // seccomp + Landlock in every worker
    Workers workers;
    Http http;
    Log log;
};

// Loads `path`.  Relative paths inside are resolved against the directory of
// `path`.  Throws ConfigError with every problem found.
Config load_file(const std::string& path);

// Loads from text, for tests.  `name` appears in messages in place of the
// file name; relative paths are resolved against `base_dir`.
Config load_string(const std::string& text, const std::string& name = "<string>",
                   const std::string& base_dir = "/");

// What -t checks beyond syntax and values: root exists and is a directory,
// user and group exist, the mime types file is readable, the access log's
// directory exists.  Returns every problem found (empty = ok).
std::vector<std::string> check_environment(const Config& config);

// Every key the loader accepts, as dotted names ("user", "workers.start",
// "http.root"), taken from the loader's own key tables; groups themselves
// ("workers") are not listed, only their keys.
std::vector<std::string> known_keys();

// The effective configuration in libconfig syntax, every key present, that
// load_string() accepts and that loads back to the same values.
std::string dump(const Config& config);

}  // namespace preforkd::config
