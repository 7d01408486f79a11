// schema.cpp - the one table of configuration keys (config/schema.hpp).
//
// Read top to bottom it is the configuration: the top-level keys, the
// workers, http and log groups, then what a site and a location may set.
// Each entry reaches its field through a small function of a Slot; the
// macros below only shorten those one-line lambdas.  Ranges and choices are
// here and nowhere else, so an error message, the man page test and the
// round-trip test all see the same limits.
//
// Rejected: a key table per group plus load_*/dump_* functions per group (the
// shape this replaced), where a key was written six times and a key missing
// from the dump went unnoticed.
#include "preforkd/config/schema.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <syslog.h>
#include <type_traits>

namespace preforkd::config::schema {
namespace {

#define IN_CONFIG(member) [](const Slot& s) -> Field { return &s.config->member; }
#define IN_SITE(member) [](const Slot& s) -> Field { return &s.site->member; }
#define IN_RULES(member) [](const Slot& s) -> Field { return &s.rules->member; }
#define DERIVED(member) [](const Slot& s) -> int* { return &s.config->member; }

constexpr Named kLevels[] = {{"err", LOG_ERR},   {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
                             {"info", LOG_INFO}, {"debug", LOG_DEBUG}};
constexpr Named kFacilities[] = {{"daemon", LOG_DAEMON}, {"user", LOG_USER},
                                 {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},
                                 {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
                                 {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
                                 {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}};
constexpr Named kPolicies[] = {{"other", SCHED_OTHER}, {"batch", SCHED_BATCH}};
// The values of a location's status: the Named value is unused, the
// string is kept (http::status_format reads it).
constexpr Named kStatusPages[] = {{"off", 0}, {"text", 1}, {"json", 2}, {"auto", 3}};
constexpr Named kFormats[] = {{"common", int(AccessFormat::common)},
                              {"combined", int(AccessFormat::combined)},
                              {"combined_timing", int(AccessFormat::combined_timing)},
                              {"json", int(AccessFormat::json)},
                              {"combined_tls", int(AccessFormat::combined_tls)}};

bool is_control(char ch) { return (unsigned char)ch < 0x20 || ch == 0x7f; }

const char* index_entry(std::string_view v)
{
    return v.empty() || v.find('/') != std::string_view::npos
               ? " entries must be file names without '/'"
               : nullptr;
}

// It goes into every Content-Type header as it is.
const char* media_type(std::string_view v)
{
    bool bad = std::any_of(v.begin(), v.end(), [](char ch) { return ch <= ' ' || ch == 0x7f; });
    return bad || v.find('/') == std::string_view::npos
               ? " must be a media type like \"text/plain\""
               : nullptr;
}

// A header field value: the response must never be split by a value.
const char* field_value(std::string_view v)
{
    return std::any_of(v.begin(), v.end(), [](char ch) { return is_control(ch) && ch != '\t'; })
               ? " must not hold control characters"
               : nullptr;
}

// It is quoted in WWW-Authenticate: Basic realm="...".
const char* realm(std::string_view v)
{
    bool bad = std::any_of(v.begin(), v.end(),
                           [](char ch) { return is_control(ch) || ch == '"' || ch == '\\'; });
    return bad ? " must not hold quotes, backslashes or control characters" : nullptr;
}

const char* tls_protocol(std::string_view v)
{
    return v == "TLSv1.2" || v == "TLSv1.3" ? nullptr : " entries must be \"TLSv1.2\" or \"TLSv1.3\"";
}

constexpr unsigned kRule = site | location;

constexpr Key kKeys[] = {
    // --- top level ---
    {.group = "", .name = "include", .kind = Kind::include,
     .doc = "files to read too (globs, sorted); they may add sites"},
    {.group = "", .name = "user", .kind = Kind::string, .field = IN_CONFIG(user),
     .allow_empty = true, .doc = "user the workers run as"},
    {.group = "", .name = "group", .kind = Kind::string, .field = IN_CONFIG(group),
     .allow_empty = true, .doc = "group the workers run as"},
    {.group = "", .name = "pid_file", .kind = Kind::path, .field = IN_CONFIG(pid_file),
     .reload = Reload::next_start, .doc = "the master's pid file"},
    {.group = "", .name = "control_socket", .kind = Kind::path, .field = IN_CONFIG(control_socket),
     .allow_empty = true, .reload = Reload::next_start,
     .doc = "the master's control socket; \"\": beside pid_file"},
    {.group = "", .name = "chroot", .kind = Kind::path, .field = IN_CONFIG(chroot),
     .allow_empty = true, .doc = "directory workers chroot into"},
    {.group = "", .name = "listen", .kind = Kind::listen, .field = IN_CONFIG(listen),
     .doc = "addresses to listen on"},
    {.group = "", .name = "unix_mode", .kind = Kind::unix_mode, .field = IN_CONFIG(unix_mode),
     .doc = "permissions of unix: sockets, an octal string"},
    {.group = "", .name = "unix_owner", .kind = Kind::string, .field = IN_CONFIG(unix_owner),
     .allow_empty = true, .doc = "user owning unix: sockets"},
    {.group = "", .name = "unix_group", .kind = Kind::string, .field = IN_CONFIG(unix_group),
     .allow_empty = true, .doc = "group owning unix: sockets"},
    {.group = "", .name = "defer_accept", .kind = Kind::integer, .lo = 0, .hi = 600,
     .field = IN_CONFIG(defer_accept), .doc = "TCP_DEFER_ACCEPT seconds, 0 = off"},
    {.group = "", .name = "sandbox", .kind = Kind::boolean,
     .field = IN_CONFIG(sandbox), .doc = "seccomp and Landlock in every worker"},
    {.group = "", .name = "workers", .kind = Kind::group, .doc = "the worker pool"},
    {.group = "", .name = "http", .kind = Kind::group, .doc = "HTTP limits and the default site"},
    {.group = "", .name = "log", .kind = Kind::group, .doc = "diagnostic and access logs"},
    {.group = "", .name = "tls", .kind = Kind::group, .doc = "what TLS listeners share"},
    {.group = "", .name = "sites", .kind = Kind::sites, .field = IN_CONFIG(sites),
     .doc = "virtual hosts; none: http.root is the one site"},
    // --- workers ---
    {.group = "workers", .name = "start", .kind = Kind::integer, .lo = 0, .hi = kMaxWorkers,
     .field = IN_CONFIG(workers.start), .doc = "workers forked at start; the pool's floor"},
    {.group = "workers", .name = "min_spare", .kind = Kind::integer, .lo = 0, .hi = kMaxWorkers,
     .field = IN_CONFIG(workers.min_spare), .doc = "idle workers kept at least"},
    {.group = "workers", .name = "max_spare", .kind = Kind::integer, .lo = 0, .hi = kMaxWorkers,
     .field = IN_CONFIG(workers.max_spare), .doc = "idle workers kept at most"},
    {.group = "workers", .name = "max", .kind = Kind::integer, .lo = 1, .hi = kMaxWorkers,
     .field = IN_CONFIG(workers.max), .doc = "workers at most"},
    {.group = "workers", .name = "max_requests", .kind = Kind::integer, .lo = 0, .hi = LONG_MAX,
     .field = IN_CONFIG(workers.max_requests), .doc = "connections before recycling, 0 = never"},
    {.group = "workers", .name = "graceful_timeout", .kind = Kind::integer, .lo = 0, .hi = 86400,
     .field = IN_CONFIG(workers.graceful_timeout), .doc = "seconds old workers may finish in"},
    {.group = "workers", .name = "watchdog_timeout", .kind = Kind::integer, .lo = 0, .hi = 86400,
     .field = IN_CONFIG(workers.watchdog_timeout), .doc = "seconds without progress, 0 = off"},
    {.group = "workers", .name = "upgrade_timeout", .kind = Kind::integer, .lo = 1, .hi = 60,
     .field = IN_CONFIG(workers.upgrade_timeout), .doc = "seconds a new binary has to get a worker up"},
    {.group = "workers", .name = "cpu_scheduling", .kind = Kind::choice, .choices = kPolicies,
     .field = IN_CONFIG(workers.cpu_scheduling), .derived = DERIVED(workers.cpu_policy),
     .doc = "scheduling policy of workers"},
    // --- http ---
    {.group = "http", .name = "root", .kind = Kind::path, .field = IN_CONFIG(http.root),
     .doc = "document root; the default for sites"},
    {.group = "http", .name = "index", .kind = Kind::strings, .field = IN_CONFIG(http.index),
     .check = index_entry, .doc = "index files; the default for sites"},
    {.group = "http", .name = "autoindex", .kind = Kind::boolean,
     .field = IN_CONFIG(http.autoindex), .doc = "list directories; the default for sites"},
    {.group = "http", .name = "keepalive_timeout", .kind = Kind::integer, .lo = 0, .hi = 3600,
     .field = IN_CONFIG(http.keepalive_timeout), .doc = "seconds an idle connection is kept"},
    {.group = "http", .name = "keepalive_requests", .kind = Kind::integer, .lo = 0, .hi = 1000000,
     .field = IN_CONFIG(http.keepalive_requests), .doc = "requests on one connection"},
    {.group = "http", .name = "header_timeout", .kind = Kind::integer, .lo = 1, .hi = 3600,
     .field = IN_CONFIG(http.header_timeout), .doc = "seconds for a request head"},
    {.group = "http", .name = "header_timeout_max", .kind = Kind::integer, .lo = 1, .hi = 3600,
     .field = IN_CONFIG(http.header_timeout_max), .doc = "the same, extended while bytes flow"},
    {.group = "http", .name = "header_min_rate", .kind = Kind::integer, .lo = 0, .hi = 1 << 30,
     .field = IN_CONFIG(http.header_min_rate), .doc = "bytes/s earning one more second"},
    {.group = "http", .name = "adaptive_keepalive", .kind = Kind::boolean,
     .field = IN_CONFIG(http.adaptive_keepalive), .doc = "shorten keep-alive when busy"},
    {.group = "http", .name = "parking", .kind = Kind::boolean,
     .field = IN_CONFIG(http.parking), .doc = "slow and idle clients wait in the parker"},
    {.group = "http", .name = "send_timeout", .kind = Kind::integer, .lo = 1, .hi = 3600,
     .field = IN_CONFIG(http.send_timeout), .doc = "seconds a client may stall reading"},
    {.group = "http", .name = "max_header_size", .kind = Kind::integer, .lo = 1024, .hi = 1048576,
     .field = IN_CONFIG(http.max_header_size), .doc = "bytes of a request head"},
    {.group = "http", .name = "max_headers", .kind = Kind::integer, .lo = 1, .hi = 10000,
     .field = IN_CONFIG(http.max_headers), .doc = "header fields of a request"},
    {.group = "http", .name = "server_tokens", .kind = Kind::boolean,
     .field = IN_CONFIG(http.server_tokens), .doc = "Server: names the version"},
    {.group = "http", .name = "follow_symlinks", .kind = Kind::boolean,
     .field = IN_CONFIG(http.follow_symlinks), .doc = "symlinks may leave the root"},
    {.group = "http", .name = "gzip_static", .kind = Kind::boolean,
     .field = IN_CONFIG(http.gzip_static), .doc = "serve file.gz to gzip clients"},
    {.group = "http", .name = "max_ranges", .kind = Kind::integer, .lo = 0, .hi = 1000,
     .field = IN_CONFIG(http.max_ranges), .doc = "byte ranges in one request, 0 = off"},
    {.group = "http", .name = "max_discard_body", .kind = Kind::integer, .lo = 0, .hi = 1LL << 30,
     .field = IN_CONFIG(http.max_discard_body), .doc = "bytes of a refused body skipped"},
    {.group = "http", .name = "mime_types", .kind = Kind::path,
     .field = IN_CONFIG(http.mime_types), .doc = "the mime.types file"},
    {.group = "http", .name = "default_type", .kind = Kind::string,
     .field = IN_CONFIG(http.default_type), .check = media_type,
     .doc = "Content-Type of unknown extensions"},
    // --- log ---
    {.group = "log", .name = "level", .kind = Kind::choice, .choices = kLevels,
     .field = IN_CONFIG(log.level), .derived = DERIVED(log.level_priority),
     .doc = "least important diagnostic logged"},
    {.group = "log", .name = "syslog_facility", .kind = Kind::choice, .choices = kFacilities,
     .field = IN_CONFIG(log.syslog_facility), .derived = DERIVED(log.facility_code),
     .doc = "syslog facility"},
    {.group = "log", .name = "access_log", .kind = Kind::access_log,
     .field = IN_CONFIG(log.access_log), .doc = "path, \"syslog\" or \"off\""},
    {.group = "log", .name = "access_syslog_facility", .kind = Kind::choice,
     .choices = kFacilities, .field = IN_CONFIG(log.access_syslog_facility),
     .derived = DERIVED(log.access_facility_code), .doc = "syslog facility of access lines"},
    {.group = "log", .name = "access_format", .kind = Kind::choice, .choices = kFormats,
     .field = IN_CONFIG(log.access_format), .doc = "access log line format"},
    {.group = "log", .name = "access_buffer", .kind = Kind::integer, .lo = 0, .hi = 1 << 20,
     .field = IN_CONFIG(log.access_buffer), .doc = "bytes gathered per write, 0 = none"},
    {.group = "log", .name = "access_flush", .kind = Kind::integer, .lo = 1, .hi = 60,
     .field = IN_CONFIG(log.access_flush), .doc = "seconds a gathered line waits"},
    // --- tls ---
    {.group = "tls", .name = "protocols", .kind = Kind::strings, .field = IN_CONFIG(tls.protocols),
     .check = tls_protocol, .doc = "TLS versions offered"},
    {.group = "tls", .name = "ciphers", .kind = Kind::string, .field = IN_CONFIG(tls.ciphers),
     .doc = "TLS 1.2 cipher list, OpenSSL syntax"},
    {.group = "tls", .name = "ciphersuites", .kind = Kind::string,
     .field = IN_CONFIG(tls.ciphersuites), .doc = "TLS 1.3 cipher suites"},
    {.group = "tls", .name = "curves", .kind = Kind::string, .field = IN_CONFIG(tls.curves),
     .doc = "key exchange groups"},
    {.group = "tls", .name = "session_tickets", .kind = Kind::boolean,
     .field = IN_CONFIG(tls.session_tickets), .doc = "resumption by session tickets"},
    {.group = "tls", .name = "ticket_rotation", .kind = Kind::integer, .lo = 1, .hi = 7 * 86400,
     .field = IN_CONFIG(tls.ticket_rotation), .doc = "seconds between ticket key rotations"},
    {.group = "tls", .name = "ticket_key_file", .kind = Kind::path,
     .field = IN_CONFIG(tls.ticket_key_file), .allow_empty = true,
     .doc = "ticket keys shared by several machines"},
    {.group = "tls", .name = "handshake_timeout", .kind = Kind::integer, .lo = 1, .hi = 3600,
     .field = IN_CONFIG(tls.handshake_timeout), .doc = "seconds a handshake may take"},
    // --- a site ---
    {.group = "sites", .name = "names", .kind = Kind::names, .scope = site,
     .field = IN_SITE(names), .doc = "host names, \"*.example.net\" wildcards"},
    {.group = "sites", .name = "default", .kind = Kind::boolean, .scope = site,
     .field = IN_SITE(is_default), .doc = "answers hosts no site names"},
    {.group = "sites", .name = "listen", .kind = Kind::site_listen, .scope = site,
     .field = IN_SITE(listen), .doc = "top-level listen entries it answers on"},
    {.group = "sites", .name = "access_log", .kind = Kind::access_log, .scope = site,
     .field = IN_SITE(access_log), .doc = "the site's access log"},
    {.group = "sites", .name = "access_format", .kind = Kind::choice, .scope = site,
     .choices = kFormats, .field = IN_SITE(access_format), .doc = "its line format"},
    {.group = "sites", .name = "tls", .kind = Kind::site_tls, .scope = site,
     .field = IN_SITE(tls), .doc = "certificate and key for TLS listeners"},
    {.group = "sites", .name = "locations", .kind = Kind::locations, .scope = site,
     .field = IN_SITE(locations), .doc = "rules by path"},
    // --- a site, or a location of it ---
    {.group = "sites", .name = "root", .kind = Kind::path, .scope = kRule,
     .field = IN_RULES(root), .doc = "document root"},
    {.group = "sites", .name = "index", .kind = Kind::strings, .scope = kRule,
     .field = IN_RULES(index), .check = index_entry, .doc = "index files"},
    {.group = "sites", .name = "autoindex", .kind = Kind::boolean, .scope = kRule,
     .field = IN_RULES(autoindex), .doc = "list directories"},
    {.group = "sites", .name = "gzip_static", .kind = Kind::boolean, .scope = kRule,
     .field = IN_RULES(gzip_static), .doc = "serve file.gz to gzip clients"},
    {.group = "sites", .name = "follow_symlinks", .kind = Kind::boolean, .scope = kRule,
     .field = IN_RULES(follow_symlinks), .doc = "symlinks may leave the root"},
    {.group = "sites", .name = "headers", .kind = Kind::headers, .scope = kRule,
     .field = IN_RULES(headers), .doc = "\"Name: value\" fields added to responses"},
    {.group = "sites", .name = "error_page", .kind = Kind::error_page, .scope = kRule,
     .field = IN_RULES(error_pages), .doc = "pages served for error statuses"},
    {.group = "sites", .name = "expires", .kind = Kind::expires, .scope = kRule,
     .field = IN_RULES(expires), .doc = "Cache-Control max-age and Expires"},
    {.group = "sites", .name = "cache_control", .kind = Kind::string, .scope = kRule,
     .field = IN_RULES(cache_control), .check = field_value, .allow_empty = true,
     .doc = "Cache-Control as written"},
    {.group = "sites", .name = "return", .kind = Kind::ret, .scope = kRule,
     .field = IN_RULES(ret), .doc = "redirect or refuse"},
    {.group = "sites", .name = "deny_hidden", .kind = Kind::boolean, .scope = kRule,
     .field = IN_RULES(deny_hidden), .doc = "404 for /.name except /.well-known/"},
    {.group = "sites", .name = "allow", .kind = Kind::cidrs, .scope = kRule,
     .field = IN_RULES(allow), .doc = "client addresses allowed"},
    {.group = "sites", .name = "deny", .kind = Kind::cidrs, .scope = kRule,
     .field = IN_RULES(deny), .doc = "client addresses refused"},
    {.group = "sites", .name = "auth_basic", .kind = Kind::string, .scope = kRule,
     .field = IN_RULES(auth_basic), .check = realm, .allow_empty = true,
     .doc = "basic authentication realm"},
    {.group = "sites", .name = "auth_basic_file", .kind = Kind::path, .scope = kRule,
     .field = IN_RULES(auth_basic_file), .allow_empty = true, .doc = "its password file"},
    // --- a location only ---
    {.group = "locations", .name = "path", .kind = Kind::location_path, .scope = location,
     .doc = "\"/prefix/\" or \"= /exact\""},
    {.group = "locations", .name = "alias", .kind = Kind::path, .scope = location,
     .field = IN_RULES(alias), .allow_empty = true, .doc = "directory the path maps to"},
    {.group = "locations", .name = "status", .kind = Kind::choice, .scope = location,
     .choices = kStatusPages, .field = IN_RULES(status),
     .doc = "answer with the pool's status: text, json, auto"},
};

#undef IN_CONFIG
#undef IN_SITE
#undef IN_RULES
#undef DERIVED

// Optimal string alignment distance: a swapped pair of letters ("wokrers")
// counts as one edit, the commonest typo in a key name.
std::size_t edit_distance(std::string_view a, std::string_view b)
{
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i)
        d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j)
        d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

// The key as met where `scope` is being read: a site or location key
// belongs to the scope, not to its group's name.
bool visible(const Key& k, std::string_view group, unsigned scope)
{
    if (scope == global)
        return k.scope == global && k.group == group;
    return (k.scope & scope) != 0;
}

}  // namespace

std::span<const Key> keys() { return kKeys; }

const Key* find(std::string_view group, std::string_view name, unsigned scope)
{
    for (const Key& k : kKeys)
        if (k.name == name && visible(k, group, scope))
            return &k;
    return nullptr;
}

std::string dotted(std::string_view group, std::string_view name)
{
    return group.empty() ? std::string(name) : std::string(group) + "." + std::string(name);
}

// A key of the same group within two edits wins; a key of another group is
// offered only when it is (nearly) exact, since "root" at the top level means
// "http.root", while a loose match across groups is noise.
std::string suggestion(std::string_view group, std::string_view name, unsigned scope)
{
    std::string best;
    std::size_t best_score = SIZE_MAX;
    for (const Key& k : kKeys) {
        if ((k.scope == global) != (scope == global))
            continue;   // site keys are no hint at the top level, nor the reverse
        bool own = visible(k, group, scope);
        std::size_t d = edit_distance(name, k.name);
        // Two edits turn any three-letter word into another: demand
        // that at least half of the longer name survives.
        bool close = d <= 2 && 2 * d <= std::max(name.size(), k.name.size());
        if (!close || (!own && d > 1))
            continue;
        std::size_t score = 2 * d + (own ? 0 : 1);
        if (score < best_score) {
            best_score = score;
            best = dotted(own && scope != global ? group : k.group, k.name);
        }
    }
    return best;
}

std::string_view name_of(std::span<const Named> choices, int value)
{
    for (const Named& n : choices)
        if (n.value == value)
            return n.name;
    return "";
}

std::span<const Named> access_formats() { return kFormats; }

}  // namespace preforkd::config::schema

namespace preforkd::config {

std::vector<std::string> keep_until_restart(const Config& running, Config& next)
{
    std::vector<std::string> kept;
    for (const schema::Key& k : schema::keys()) {
        if (k.reload != schema::Reload::next_start || k.scope != schema::global)
            continue;
        std::string was = schema::value_text(k, running);
        if (schema::value_text(k, next) == was)
            continue;
        Config source = running;   // the table reaches fields through mutable slots
        schema::Field from = k.field(schema::Slot{&source});
        std::visit(
            [&](auto target) {
                if constexpr (std::is_pointer_v<decltype(target)>)
                    *target = *std::get<decltype(target)>(from);
            },
            k.field(schema::Slot{&next}));
        if (was.size() >= 2 && was.front() == '"')
            was = was.substr(1, was.size() - 2);
        kept.push_back(schema::dotted(k.group, k.name) +
                       " changes take effect at the next start; keeping " + was);
    }
    return kept;
}

std::vector<std::string> known_keys()
{
    std::vector<std::string> names;
    for (const schema::Key& k : schema::keys())
        if (k.kind != schema::Kind::group)
            names.push_back(schema::dotted(k.group, k.name));
    return names;
}

}  // namespace preforkd::config
