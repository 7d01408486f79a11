// config.hpp - the configuration of preforkd as plain data.
//
// The loader reads libconfig syntax (DESIGN.md sections 4 and 8) into a
// Config.  libconfig types never leave src/config/.  Every key has a default,
// the value its struct member is initialised with here: this header is the one
// place defaults are written, and the key table (config/schema.hpp) reads
// them from a default-constructed Config.  An unknown key, a wrong type or an
// out-of-range value is an error naming the file and line
// ("preforkd.conf:12: workers.max must be between 1 and 4096").  All errors
// found are collected, not only the first.
//
// Sites and locations are plain values too: the loader validates them
// (header syntax, redirect codes, CIDRs, names) and resolves inheritance
// (http -> site -> location), so a Location holds every rule in effect for it.
// Translating them into the HTTP layer is the master's job.
#pragma once

#include <array>
#include <cstdint>
#include <sched.h>
#include <stdexcept>
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

enum class AccessFormat { common, combined, combined_timing, json, combined_tls };

struct Workers {
    int start = 5;
    int min_spare = 5;
    int max_spare = 10;
    int max = 256;                 // 1..4096 (kMaxWorkers)
    long max_requests = 10000;     // connections before recycling, 0 = never
    int graceful_timeout = 30;     // seconds
    int watchdog_timeout = 60;     // seconds, 0 = off
    int upgrade_timeout = 30;      // seconds a new binary has to get a worker up
    std::string cpu_scheduling = "batch";   // "batch" or "other"
    int cpu_policy = SCHED_BATCH;           // derived

    bool operator==(const Workers&) const = default;
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
    bool parking = true;             // slow and idle connections wait in the parker
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

    bool operator==(const Http&) const = default;
};

struct Log {
    std::string level = "info";            // err warning notice info debug
    int level_priority = 6;                // LOG_INFO, derived from level
    std::string syslog_facility = "daemon";
    int facility_code = 3 << 3;            // LOG_DAEMON, derived
    std::string access_log = "/var/log/preforkd/access.log";  // path, "syslog", "off"
    // Where access_log = "syslog" sends its lines, apart from the diagnostics.
    std::string access_syslog_facility = "daemon";
    int access_facility_code = 3 << 3;     // LOG_DAEMON, derived
    AccessFormat access_format = AccessFormat::combined;
    int access_buffer = 4096;    // bytes a worker gathers per write; 0: a write per line
    int access_flush = 1;        // seconds a gathered line waits at most

    bool operator==(const Log&) const = default;
};

// The tls = { ... } group: what every TLS listener shares.  The defaults
// follow Mozilla's "intermediate" profile (TLS 1.2 and 1.3, ECDHE with AEAD
// ciphers).  Certificates belong to sites (Site::tls).
struct Tls {
    std::vector<std::string> protocols = {"TLSv1.2", "TLSv1.3"};
    std::string ciphers =   // TLS 1.2, OpenSSL names
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
    std::string ciphersuites =   // TLS 1.3
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
    std::string curves = "X25519:prime256v1:secp384r1";
    bool session_tickets = true;
    int ticket_rotation = 3600;      // seconds a ticket key encrypts; kept one more for decrypting
    std::string ticket_key_file;     // "" = keys made by the master, in memory only
    int handshake_timeout = 10;      // seconds a handshake may take
    std::string ticket_key_file_where;   // "file:line" of ticket_key_file, for messages; not a value

    bool operator==(const Tls& o) const
    {
        return protocols == o.protocols && ciphers == o.ciphers && ciphersuites == o.ciphersuites &&
               curves == o.curves && session_tickets == o.session_tickets &&
               ticket_rotation == o.ticket_rotation && ticket_key_file == o.ticket_key_file &&
               handshake_timeout == o.handshake_timeout;
    }
};

// --- sites -------------------------------------------------------------------

// An address block of allow/deny: "10.0.0.0/8", "::1" (a /128), "all".
struct Cidr {
    enum class Family { any, v4, v6 };    // any: "all", every client
    std::string text;                     // canonical, as -T prints it
    Family family = Family::v4;
    std::array<std::uint8_t, 16> bytes{}; // network address, host bits zero
    int prefix = 0;                       // 0..32 or 0..128

    bool operator==(const Cidr&) const = default;
};

// `return = ( 301, "https://$host$request_uri" );` - status 0 means none.
struct Return {
    int status = 0;          // 301 302 307 308 (url set) or 403 404 410 (no url)
    std::string url;         // may hold $host $request_uri $uri $scheme

    bool operator==(const Return&) const = default;
};

struct ErrorPage {
    std::vector<int> status;   // 400..599
    std::string page;          // a path in the site, starting with '/'

    bool operator==(const ErrorPage&) const = default;
};

// `expires = "30d"`: off (no header), epoch, max, or a number of seconds.
struct Expires {
    enum class Kind { off, epoch, max, seconds };
    Kind kind = Kind::off;
    long seconds = 0;

    bool operator==(const Expires&) const = default;
};

// What a site sets for its locations and a location may override.  The
// loader fills every field: a location holds its site's value for each key
// it does not set, and a site holds the http group's root, index, autoindex,
// gzip_static and follow_symlinks for each of those it does not set.
struct Rules {
    std::string root;                       // absolute
    std::string alias;                      // location only; "" = none
    std::vector<std::string> index;
    bool autoindex = false;
    bool gzip_static = false;
    bool follow_symlinks = false;
    std::vector<std::string> headers;       // "Name: value", field syntax checked
    std::vector<ErrorPage> error_pages;
    Expires expires;
    std::string cache_control;              // "" = none
    Return ret;
    bool deny_hidden = true;                // "/.x" segments answer 404
    std::vector<Cidr> allow;                // tried before deny; first match wins
    std::vector<Cidr> deny;
    std::string auth_basic;                 // realm; "" = no authentication
    std::string auth_basic_file;            // absolute path, read by the master
    std::string status = "off";             // location only: "text", "json", "auto"

    bool operator==(const Rules&) const = default;
};

struct Location {
    std::string path;        // "/static/" (longest prefix wins) or the exact path
    bool exact = false;      // written "= /path"
    Rules rules;

    bool operator==(const Location&) const = default;
};

// A site's `tls = { certificate = "..."; key = "..."; };`, both absolute
// paths read by the master; both empty: the site has no certificate.
struct SiteTls {
    std::string certificate;   // PEM: the leaf first, then its chain
    std::string key;           // PEM private key, may be 0600 root
    std::string where;         // "file:line" of the group, for messages; not a value

    bool operator==(const SiteTls& o) const { return certificate == o.certificate && key == o.key; }
};

struct Site {
    std::vector<std::string> names;     // lower case; "*.example.net" wildcards
    bool is_default = false;            // `default = true`
    std::vector<std::string> listen;    // a subset of Config::listen; empty = all
    std::string access_log;             // path, "syslog", "off"; log.access_log if unset
    AccessFormat access_format = AccessFormat::combined;   // log.access_format if unset
    Rules rules;                        // the site's own, defaults for its locations
    std::vector<Location> locations;    // as written
    SiteTls tls;                        // its certificate for TLS listeners

    bool operator==(const Site&) const = default;
};

// What a listen entry written as a group adds to its address:
//   { address = "*:443"; tls = true; proxy_protocol = true; proxy_trusted = [ "10.0.0.0/8" ]; }
// A plain string is an entry with every option off.
struct ListenOptions {
    bool tls = false;                  // TLS on this socket, with the sites' certificates
    bool proxy_protocol = false;       // a PROXY v1 or v2 header opens every connection
    std::vector<Cidr> proxy_trusted;   // peers that may send it; empty = any peer

    bool operator==(const ListenOptions&) const = default;
};

inline constexpr int kMaxWorkers = 4096;

struct Config {
    std::string file;            // absolute path it was loaded from ("" for strings)
    std::string user;            // "" = not set
    std::string group;           // "" = not set
    std::string pid_file = "/run/preforkd.pid";
    std::string control_socket;  // "" = beside pid_file (control::path_of)
    std::string chroot;          // "" = none
    std::vector<std::string> listen = {"0.0.0.0:80", "[::]:80"};
    // The options of listen[i], index for index; an entry missing at the
    // end (code that sets listen alone) has every option off: read it
    // through listen_options_of().
    std::vector<ListenOptions> listen_options;
    std::string unix_mode = "0666";   // permissions of unix: listening sockets
    int unix_mode_bits = 0666;        // derived
    std::string unix_owner;           // owner of unix: sockets, "" = the master's
    std::string unix_group;           // their group, "" = the master's
    int defer_accept = 1;             // TCP_DEFER_ACCEPT seconds, 0 = off
    bool sandbox = true;              // seccomp + Landlock in every worker
    Workers workers;
    Http http;
    Log log;
    Tls tls;
    // As written, includes read; empty means the one default site of
    // effective_sites().
    std::vector<Site> sites;

    bool operator==(const Config&) const = default;
};

// The options of the listen entry at `index` (all off if none were written).
inline const ListenOptions& listen_options_of(const Config& c, std::size_t index)
{
    static const ListenOptions none;
    return index < c.listen_options.size() ? c.listen_options[index] : none;
}

// Loads `path`.  Relative paths inside are resolved against the directory of
// `path`; so are `include` globs.  Throws ConfigError with every problem found.
Config load_file(const std::string& path);

// Loads from text, for tests and for a reload, which loads the dump its
// checking child made (a reload parses once).  `name` appears in messages in
// place of the file name; relative paths are resolved against `base_dir`.
Config load_string(const std::string& text, const std::string& name = "<string>",
                   const std::string& base_dir = "/");

// Loads the dump() of a configuration that was loaded from `file` and
// checked, as a reload's checking child hands it back: the master uses
// exactly what was checked, and reads no file.  Config::file is `file`;
// messages name it, and relative paths (there are none in a dump) resolve
// against its directory.
Config load_checked(const std::string& dump_text, const std::string& file);

// A reload cannot apply some keys (pid_file: the running master holds its
// lock).  Each such key changed in `next` is set back to its value in
// `running`; returns one line per key for the log: "pid_file changes take
// effect at the next start; keeping /run/preforkd.pid".
std::vector<std::string> keep_until_restart(const Config& running, Config& next);

// The sites to serve: `config.sites`, or when there are none, one default
// site made of the http group's root, index, autoindex, gzip_static and
// follow_symlinks and the log group's access log (configuration version 1).
std::vector<Site> effective_sites(const Config& config);

// What -t checks beyond syntax and values: every root exists and is a
// directory, user and group exist, the mime types file is readable, each
// access log's directory exists, so do the unix_owner and unix_group, the
// pid file's directory and the directory of every unix: listener.  Returns every problem found (empty = ok).
std::vector<std::string> check_environment(const Config& config);

// Every key the loader accepts, as dotted names taken from the key table
// ("user", "workers.start", "http.root", "sites.names", "locations.path");
// groups themselves ("workers") are not listed, only their keys.  A key a
// site and a location both take is listed once, under "sites.".
std::vector<std::string> known_keys();

// The effective configuration in libconfig syntax, every key present, that
// load_string() accepts and that loads back equal (==).  Included files are
// already merged into it: the dump has no `include`.
std::string dump(const Config& config);

// dump(), then the "file:line" positions messages name (a site's tls group,
// tls.ticket_key_file) as comment lines: what a reload's checking child
// hands back, so that load_checked() keeps the positions of the file.
std::string dump_for_reload(const Config& config);

// Puts back the positions dump_for_reload() appended to `dump_text`.
void restore_positions(Config& config, const std::string& dump_text);

}  // namespace preforkd::config
