// config.cpp - loading, checking and printing the configuration.
//
// libconfig parses; this file decides what the parse means.  The tree is
// walked group by group against tables of known keys, and every setting is
// checked by type and range by hand, because libconfig's lookupValue() keeps
// the default when the type is wrong and so lets a typo pass in silence.  No
// check stops the walk: every error is collected with the file and line of the
// setting it is about, and one ConfigError carries them all.
//
// Before libconfig sees any text, a small scanner that mirrors libconfig's
// lexer (strings, comments, line starts) reads it for two things the library
// gets dangerously wrong in version 1.5: an `@include` of a directory makes
// the library call exit(2), which must never take down a master validating a
// reload, and a decimal integer beyond 32 bits silently wraps instead of
// needing the `L` suffix.  Included files are scanned the same way, first.
//
// The top-level text is handed to readString() for files as well as strings,
// so both entry points share one path; libconfig then reports settings of the
// top file with no source file, and we supply the name the user gave.
// Relative paths are made absolute here, against the configuration file's
// directory, so that no later chdir() (daemonizing, chroot) changes them.
#include "preforkd/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <grp.h>
#include <map>
#include <optional>
#include <pwd.h>
#include <span>
#include <sstream>
#include <string_view>
#include <sys/stat.h>
#include <sched.h>
#include <syslog.h>
#include <unistd.h>

#include <libconfig.h++>

#include "preforkd/listener.hpp"

namespace preforkd::config {

namespace {

namespace fs = std::filesystem;
using Setting = libconfig::Setting;

// --- the schema ----------------------------------------------------------

constexpr std::string_view kTopKeys[] = {"user",   "group",     "pid_file", "chroot", "listen",
                                         "unix_mode", "defer_accept", "sandbox", "workers", "http", "log"};
constexpr std::string_view kWorkerKeys[] = {"start",        "min_spare",        "max_spare",
                                            "max",          "max_requests",     "graceful_timeout",
                                            "watchdog_timeout", "cpu_scheduling"};
constexpr std::string_view kHttpKeys[] = {
    "root",           "index",       "autoindex",       "keepalive_timeout", "keepalive_requests",
    "header_timeout", "send_timeout", "max_header_size", "max_headers",      "server_tokens",
    "mime_types",     "default_type", "follow_symlinks", "gzip_static",      "max_ranges",
    "max_discard_body", "header_timeout_max", "header_min_rate", "adaptive_keepalive"};
constexpr std::string_view kLogKeys[] = {"level",         "syslog_facility", "access_log",
                                         "access_format", "access_buffer",   "access_flush"};

struct Group {
    std::string_view name;   // "" for the top level
    std::span<const std::string_view> keys;
};
constexpr Group kGroups[] = {
    {"", kTopKeys}, {"workers", kWorkerKeys}, {"http", kHttpKeys}, {"log", kLogKeys}};

struct Named {
    std::string_view name;
    int value;
};
constexpr Named kLevels[] = {{"err", LOG_ERR},   {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
                             {"info", LOG_INFO}, {"debug", LOG_DEBUG}};
constexpr Named kFacilities[] = {{"daemon", LOG_DAEMON}, {"user", LOG_USER},
                                 {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},
                                 {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
                                 {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
                                 {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}};
constexpr Named kPolicies[] = {{"other", SCHED_OTHER}, {"batch", SCHED_BATCH}};
constexpr Named kFormats[] = {{"common", int(AccessFormat::common)},
                              {"combined", int(AccessFormat::combined)}};

// libconfig 1.5 refuses deeper nesting itself ("include file nesting too
// deep"); scanning deeper than it reads would only waste time on a loop.
constexpr int kMaxIncludeDepth = 10;

// --- small helpers ---------------------------------------------------------

std::string errno_text(int error) { return std::strerror(error); }

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

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

std::string full_key(std::string_view group, std::string_view key)
{
    return group.empty() ? std::string(key) : std::string(group) + "." + std::string(key);
}

// The known key an unknown one most likely meant, "" if none is close.  A key
// of the same group within two edits wins; a key of another group is offered
// only when it is (nearly) exact, since "root" at the top level means
// "http.root", while a loose match across groups is noise.
std::string suggestion(std::string_view group, std::string_view key)
{
    std::string best;
    std::size_t best_score = SIZE_MAX;
    for (const Group& g : kGroups) {
        bool own = g.name == group;
        for (std::string_view known : g.keys) {
            std::size_t d = edit_distance(key, known);
            // Two edits turn any three-letter word into another: demand
            // that at least half of the longer name survives.
            bool close = d <= 2 && 2 * d <= std::max(key.size(), known.size());
            if (!close || (!own && d > 1))
                continue;
            std::size_t score = 2 * d + (own ? 0 : 1);
            if (score < best_score) {
                best_score = score;
                best = full_key(g.name, known);
            }
        }
    }
    return best;
}

// Joins a relative path to an absolute directory, dropping "." components but
// keeping "..": folding "a/../b" by text would be wrong across a symlink.
std::string absolute_from(const std::string& dir, const std::string& path)
{
    if (path.empty() || path[0] == '/')
        return path;
    fs::path result(dir);
    for (const fs::path& part : fs::path(path)) {
        if (part != "." && !part.empty())
            result /= part;
    }
    return result.string();
}

std::string current_dir()
{
    std::error_code ec;
    fs::path cwd = fs::current_path(ec);
    return ec ? std::string("/") : cwd.string();
}

// Reads a whole file; on failure returns the syscall message instead.
std::optional<std::string> read_all(const std::string& path, std::string& failure)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        failure = "open(" + in_quotes(path) + ") failed: " + errno_text(errno);
        return std::nullopt;
    }
    std::string text;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            failure = "read(" + in_quotes(path) + ") failed: " + errno_text(errno);
            ::close(fd);
            return std::nullopt;
        }
        text.append(buf, std::size_t(n));
    }
    ::close(fd);
    return text;
}

// Where the text came from, and how to name and resolve what it refers to.
struct Origin {
    std::string name;          // the top file as the user named it, or load_string's name
    std::string display_dir;   // prefix for included files in messages ("" or ".../")
    std::string include_dir;   // what libconfig resolves @include against
    std::string base_dir;      // absolute directory for relative paths
    std::string file;          // Config::file
};

// --- collecting errors ------------------------------------------------------

// Every problem found, with where it is.  The pre-scan and the walk find
// problems in their own orders; the administrator reads the file top down,
// so messages() puts them in file order: files as first met, then by line.
class Errors {
public:
    void add(std::string file, unsigned line, std::string message)
    {
        found_.push_back({std::move(file), line, std::move(message)});
    }
    bool empty() const { return found_.empty(); }
    std::vector<std::string> messages() const;

private:
    struct Located {
        std::string file;
        unsigned line;
        std::string message;
    };
    std::vector<Located> found_;
};

std::vector<std::string> Errors::messages() const
{
    std::vector<std::string> files;
    for (const Located& e : found_) {
        if (std::find(files.begin(), files.end(), e.file) == files.end())
            files.push_back(e.file);
    }
    auto rank = [&](const Located& e) {
        return std::pair(std::find(files.begin(), files.end(), e.file) - files.begin(), e.line);
    };
    std::vector<Located> sorted = found_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [&](const Located& a, const Located& b) { return rank(a) < rank(b); });
    std::vector<std::string> lines;
    for (const Located& e : sorted)
        lines.push_back(e.file + ":" + std::to_string(e.line) + ": " + e.message);
    return lines;
}

// --- the pre-scan ----------------------------------------------------------

bool is_digit(char ch, bool hex)
{
    return hex ? std::isxdigit((unsigned char)ch) : std::isdigit((unsigned char)ch);
}

bool is_name_char(char ch)
{
    return std::isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '*';
}

// Walks libconfig text token by token, as far as needed to know where
// strings and comments are, and checks @include targets and integer sizes.
class Prescan {
public:
    Prescan(const Origin& origin, Errors& errors)
        : origin_(origin), errors_(errors) {}

    // False when an include is unsafe to hand to libconfig.
    bool run(const std::string& text) { scan(text, origin_.name, 0); return safe_; }

private:
    struct Cursor {
        const std::string& text;
        const std::string& file;
        std::size_t pos = 0;
        int line = 1;
        char peek(std::size_t ahead = 0) const
        {
            return pos + ahead < text.size() ? text[pos + ahead] : '\0';
        }
        bool done() const { return pos >= text.size(); }
    };

    void scan(const std::string& text, const std::string& file, int depth);
    void step(Cursor& c, int depth);
    void skip_until(Cursor& c, std::string_view end);
    void skip_string(Cursor& c);
    void number(Cursor& c);
    bool at_line_start(const Cursor& c) const;
    bool include_directive(Cursor& c, int depth);
    void include(const Cursor& c, const std::string& target, int depth);
    void error(const Cursor& c, const std::string& message, bool unsafe)
    {
        errors_.add(c.file, unsigned(c.line), message);
        safe_ = safe_ && !unsafe;
    }

    const Origin& origin_;
    Errors& errors_;
    bool safe_ = true;
};

void Prescan::scan(const std::string& text, const std::string& file, int depth)
{
    Cursor c{text, file};
    while (!c.done())
        step(c, depth);
}

void Prescan::step(Cursor& c, int depth)
{
    char ch = c.peek();
    if (ch == '\n') {
        ++c.line;
        ++c.pos;
    } else if (ch == '#' || (ch == '/' && c.peek(1) == '/')) {
        skip_until(c, "\n");
    } else if (ch == '/' && c.peek(1) == '*') {
        c.pos += 2;
        skip_until(c, "*/");
    } else if (ch == '"') {
        skip_string(c);
    } else if (ch == '@' && at_line_start(c) && include_directive(c, depth)) {
        return;
    } else if (std::isalpha((unsigned char)ch) || ch == '*') {
        while (!c.done() && is_name_char(c.peek()))   // a name, digits and all: "local0"
            ++c.pos;
    } else if (std::isdigit((unsigned char)ch) ||
               ((ch == '-' || ch == '+') && std::isdigit((unsigned char)c.peek(1)))) {
        number(c);
    } else {
        ++c.pos;
    }
}

// Moves past `end` (or to the end of text); a "\n" end is left for step().
void Prescan::skip_until(Cursor& c, std::string_view end)
{
    while (!c.done() && c.text.compare(c.pos, end.size(), end) != 0) {
        c.line += c.peek() == '\n';
        ++c.pos;
    }
    if (end != "\n" && !c.done())
        c.pos += end.size();
}

void Prescan::skip_string(Cursor& c)
{
    for (++c.pos; !c.done() && c.peek() != '"'; ++c.pos) {
        if (c.peek() == '\\')
            ++c.pos;
        else if (c.peek() == '\n')
            ++c.line;
    }
    ++c.pos;
}

// libconfig's scanner only honours @include with nothing but blanks before
// it on the line; anywhere else it is a syntax error, not an include.
bool Prescan::at_line_start(const Cursor& c) const
{
    for (std::size_t i = c.pos; i > 0; --i) {
        char ch = c.text[i - 1];
        if (ch == '\n')
            return true;
        if (ch != ' ' && ch != '\t')
            return false;
    }
    return true;
}

bool Prescan::include_directive(Cursor& c, int depth)
{
    constexpr std::string_view kWord = "@include";
    if (c.text.compare(c.pos, kWord.size(), kWord) != 0)
        return false;
    std::size_t p = c.pos + kWord.size();
    std::size_t blanks = p;
    while (p < c.text.size() && (c.text[p] == ' ' || c.text[p] == '\t'))
        ++p;
    if (p == blanks || p >= c.text.size() || c.text[p] != '"')
        return false;
    std::string target;
    for (++p; p < c.text.size() && c.text[p] != '"'; ++p) {
        if (c.text[p] == '\\' && p + 1 < c.text.size())
            ++p;
        target += c.text[p];
    }
    include(c, target, depth);
    c.pos = p + 1;
    return true;
}

// Checks the file libconfig would open for `target` and scans it in turn.
void Prescan::include(const Cursor& c, const std::string& target, int depth)
{
    std::string what = "@include " + in_quotes(target) + ": ";
    if (!target.empty() && target[0] == '/') {
        // libconfig 1.5 prefixes the include directory to every path,
        // absolute ones too, and then cannot open the result.
        error(c, what + "absolute paths are not supported; give a path relative to " +
                     in_quotes(origin_.include_dir), true);
        return;
    }
    std::string path = origin_.include_dir + "/" + target;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0)
        return error(c, what + errno_text(errno), true);
    if (S_ISDIR(st.st_mode))
        return error(c, what + errno_text(EISDIR), true);
    if (!S_ISREG(st.st_mode))
        return error(c, what + "not a regular file", true);
    std::string failure;
    auto text = read_all(path, failure);
    if (!text)
        return error(c, what + failure, true);
    if (depth + 1 < kMaxIncludeDepth)
        scan(*text, origin_.display_dir + target, depth + 1);
}

// libconfig 1.5 reads a decimal integer literal into an int and wraps,
// and a hexadecimal one into an unsigned int and then an int: 5000000000
// would silently become 705032704.  Such literals need the L suffix.
void Prescan::number(Cursor& c)
{
    std::size_t start = c.pos;
    if (c.peek() == '-' || c.peek() == '+')
        ++c.pos;
    bool hex = c.peek() == '0' && (c.peek(1) == 'x' || c.peek(1) == 'X');
    if (hex)
        c.pos += 2;
    while (!c.done() && is_digit(c.peek(), hex))
        ++c.pos;
    std::string literal = c.text.substr(start, c.pos - start);
    char next = c.peek();
    if (next == 'L' || (!hex && (next == '.' || next == 'e' || next == 'E'))) {
        while (!c.done() && (std::isalnum((unsigned char)c.peek()) || c.peek() == '.' ||
                             ((c.peek() == '-' || c.peek() == '+') &&
                              (c.text[c.pos - 1] == 'e' || c.text[c.pos - 1] == 'E'))))
            ++c.pos;
        return;   // a 64-bit integer or a float: read correctly
    }
    errno = 0;
    long long value = std::strtoll(literal.c_str(), nullptr, 0);
    if (errno == ERANGE || value > INT_MAX || value < INT_MIN)
        error(c, "integer " + literal + " is out of 32-bit range; write " + literal + "L", false);
}

// --- the loader ------------------------------------------------------------

// Walks a parsed tree into a Config, collecting every error.
class Loader {
public:
    Loader(const Origin& origin, Errors& errors)
        : origin_(origin), errors_(errors) {}

    Config run(const Setting& root);

private:
    void load_top(const Setting& root);
    void load_workers(const Setting* g);
    void load_http(const Setting& g);
    void load_log(const Setting& g);
    void load_listen(const Setting& root);
    std::optional<std::string> listen_address(const Setting& item,
                                              std::map<std::string, std::string>& seen);
    void load_index(const Setting& g);
    void load_unix_mode(const Setting& g);
    void check_pool(const Setting* g);

    const Setting* group(const Setting& parent, const char* key);
    void check_keys(const Setting& g, std::string_view group_name);
    std::optional<long long> integer(const Setting& g, const char* key);
    template <class T>
    void read_int(const Setting& g, const char* key, T& out, long long lo, long long hi);
    void read_bool(const Setting& g, const char* key, bool& out);
    std::optional<std::string> string(const Setting& g, const char* key);
    void read_string(const Setting& g, const char* key, std::string& out, bool allow_empty);
    void read_path(const Setting& g, const char* key, std::string& out, bool allow_empty);
    void read_choice(const Setting& g, const char* key, std::span<const Named> table,
                     std::string& name, int& value);
    std::optional<std::vector<const Setting*>> strings(const Setting& g, const char* key);

    std::string file_of(const Setting& s) const;
    void error(const Setting& s, const std::string& message)
    {
        errors_.add(file_of(s), s.getSourceLine(), message);
    }
    std::string resolve(const std::string& path) const
    {
        return absolute_from(origin_.base_dir, path);
    }

    const Origin& origin_;
    Errors& errors_;
    Config config_;
};

Config Loader::run(const Setting& root)
{
    config_.file = origin_.file;
    load_top(root);
    load_workers(group(root, "workers"));
    if (const Setting* g = group(root, "http"))
        load_http(*g);
    if (const Setting* g = group(root, "log"))
        load_log(*g);
    return config_;
}

std::string Loader::file_of(const Setting& s) const
{
    // libconfig names included files as written in @include, and the text
    // given to readString() not at all.
    const char* file = s.getSourceFile();
    return file ? origin_.display_dir + file : origin_.name;
}

const Setting* Loader::group(const Setting& parent, const char* key)
{
    if (!parent.exists(key))
        return nullptr;
    const Setting& g = parent[key];
    if (!g.isGroup()) {
        error(g, std::string(key) + " must be a group: " + key + " = { ... };");
        return nullptr;
    }
    check_keys(g, key);
    return &g;
}

void Loader::check_keys(const Setting& g, std::string_view group_name)
{
    auto known = std::find_if(std::begin(kGroups), std::end(kGroups),
                              [&](const Group& k) { return k.name == group_name; })->keys;
    for (int i = 0; i < g.getLength(); ++i) {
        const Setting& s = g[i];
        std::string_view name = s.getName();
        if (std::find(known.begin(), known.end(), name) != known.end())
            continue;
        std::string message = "unknown key '" + full_key(group_name, name) + "'";
        std::string hint = suggestion(group_name, name);
        error(s, hint.empty() ? message : message + " (did you mean '" + hint + "'?)");
    }
}

void Loader::load_top(const Setting& root)
{
    check_keys(root, "");
    read_string(root, "user", config_.user, true);
    read_string(root, "group", config_.group, true);
    read_path(root, "pid_file", config_.pid_file, false);
    read_path(root, "chroot", config_.chroot, true);
    load_listen(root);
    load_unix_mode(root);
    read_int(root, "defer_accept", config_.defer_accept, 0, 600);
    read_bool(root, "sandbox", config_.sandbox);
}

void Loader::load_workers(const Setting* g)
{
    Workers& w = config_.workers;
    if (g) {
        read_int(*g, "max", w.max, 1, kMaxWorkers);
        read_int(*g, "start", w.start, 0, kMaxWorkers);
        read_int(*g, "min_spare", w.min_spare, 0, kMaxWorkers);
        read_int(*g, "max_spare", w.max_spare, 0, kMaxWorkers);
        read_int(*g, "max_requests", w.max_requests, 0, LONG_MAX);
        read_int(*g, "graceful_timeout", w.graceful_timeout, 0, 86400);
        read_int(*g, "watchdog_timeout", w.watchdog_timeout, 0, 86400);
        read_choice(*g, "cpu_scheduling", kPolicies, w.cpu_scheduling, w.cpu_policy);
    }
    check_pool(g);
}

// The pool settings constrain each other.  A default nobody wrote bends to
// what was written, as in Apache: "max = 2;" alone is a valid small pool, not
// an error about a "start = 5" that is not in the file.  Written values that
// contradict each other are errors.
void Loader::check_pool(const Setting* g)
{
    Workers& w = config_.workers;
    bool has_start = g && g->exists("start");
    bool has_max_spare = g && g->exists("max_spare");
    if (!has_start)
        w.start = std::min(w.start, w.max);
    else if (w.start > w.max)
        error((*g)["start"], "workers.start must be between 0 and " + std::to_string(w.max) +
                                 " (workers.max)");
    if (!has_max_spare)
        w.max_spare = std::max(w.max_spare, w.min_spare);
    else if (w.max_spare < w.min_spare)
        error((*g)["max_spare"], "workers.max_spare must be between " +
                                     std::to_string(w.min_spare) + " and " +
                                     std::to_string(kMaxWorkers) +
                                     " (not below workers.min_spare)");
}

void Loader::load_http(const Setting& g)
{
    Http& h = config_.http;
    read_path(g, "root", h.root, false);
    load_index(g);
    read_bool(g, "autoindex", h.autoindex);
    read_int(g, "keepalive_timeout", h.keepalive_timeout, 0, 3600);
    read_int(g, "keepalive_requests", h.keepalive_requests, 0, 1000000);
    read_int(g, "header_timeout", h.header_timeout, 1, 3600);
    read_int(g, "header_timeout_max", h.header_timeout_max, 1, 3600);
    read_int(g, "header_min_rate", h.header_min_rate, 0, 1 << 30);
    read_bool(g, "adaptive_keepalive", h.adaptive_keepalive);
    if (h.header_timeout_max < h.header_timeout) {
        // Unset, it follows header_timeout up; written, it must not be below.
        if (g.exists("header_timeout_max"))
            error(g["header_timeout_max"], "http.header_timeout_max must not be below http.header_timeout");
        h.header_timeout_max = h.header_timeout;
    }
    read_int(g, "send_timeout", h.send_timeout, 1, 3600);
    read_int(g, "max_header_size", h.max_header_size, 1024, 1048576);
    read_int(g, "max_headers", h.max_headers, 1, 10000);
    read_bool(g, "server_tokens", h.server_tokens);
    read_bool(g, "follow_symlinks", h.follow_symlinks);
    read_bool(g, "gzip_static", h.gzip_static);
    read_int(g, "max_ranges", h.max_ranges, 0, 1000);
    read_int(g, "max_discard_body", h.max_discard_body, 0, 1LL << 30);
    read_path(g, "mime_types", h.mime_types, false);
    read_string(g, "default_type", h.default_type, false);
    // It goes into every Content-Type header as it is.
    auto bad = [](char ch) { return ch <= ' ' || ch == 0x7f; };
    if (g.exists("default_type") && !h.default_type.empty() &&
        (std::any_of(h.default_type.begin(), h.default_type.end(), bad) ||
         h.default_type.find('/') == std::string::npos))
        error(g["default_type"], "http.default_type must be a media type like \"text/plain\"");
}

void Loader::load_log(const Setting& g)
{
    Log& l = config_.log;
    read_choice(g, "level", kLevels, l.level, l.level_priority);
    read_choice(g, "syslog_facility", kFacilities, l.syslog_facility, l.facility_code);
    std::string format = l.access_format == AccessFormat::common ? "common" : "combined";
    int format_value = int(l.access_format);
    read_choice(g, "access_format", kFormats, format, format_value);
    l.access_format = AccessFormat(format_value);
    read_int(g, "access_buffer", l.access_buffer, 0, 1 << 20);
    read_int(g, "access_flush", l.access_flush, 1, 60);
    auto log = string(g, "access_log");
    if (!log)
        return;
    if (log->empty())
        error(g["access_log"], "log.access_log must be a path, \"syslog\" or \"off\"");
    else
        l.access_log = *log == "syslog" || *log == "off" ? *log : resolve(*log);
}

void Loader::load_listen(const Setting& root)
{
    auto items = strings(root, "listen");
    if (!items)
        return;
    if (items->empty())
        return error(root["listen"], "listen must name at least one address");
    config_.listen.clear();
    std::map<std::string, std::string> seen;   // canonical address -> as first written
    for (const Setting* item : *items) {
        if (auto text = listen_address(*item, seen))
            config_.listen.push_back(*text);
    }
}

// One listen entry with a unix path made absolute; nullopt if rejected.
std::optional<std::string> Loader::listen_address(const Setting& item,
                                                  std::map<std::string, std::string>& seen)
{
    std::string written = item.c_str();
    std::string text = written;
    if (text.rfind("unix:", 0) == 0 && text.size() > 5)
        text = "unix:" + resolve(text.substr(5));
    auto parsed = listener::parse(text);
    if (!parsed.address) {
        error(item, parsed.error);
        return std::nullopt;
    }
    // Port 0 asks the kernel for any free port: two of them are two sockets.
    const listener::Address& a = *parsed.address;
    bool any_port = a.family != listener::Family::unix_path && a.port == 0;
    auto [first, is_new] = seen.emplace(a.canonical, written);
    if (!is_new && !any_port) {
        error(item, "listen address " + in_quotes(written) + " is the same as " +
                        in_quotes(first->second));
        return std::nullopt;
    }
    return text;
}

void Loader::load_index(const Setting& g)
{
    auto items = strings(g, "index");
    if (!items)
        return;
    config_.http.index.clear();
    for (const Setting* item : *items) {
        std::string name = item->c_str();
        if (name.empty() || name.find('/') != std::string::npos)
            error(*item, "http.index entries must be file names without '/'");
        else
            config_.http.index.push_back(name);
    }
}

// A string, not an integer: libconfig 1.5 reads 0660 as decimal 660.
void Loader::load_unix_mode(const Setting& g)
{
    if (!g.exists("unix_mode"))
        return;
    const Setting& s = g["unix_mode"];
    if (s.getType() != Setting::TypeString)
        return error(s, "unix_mode must be a string of octal digits, like \"0660\"");
    std::string text = s.c_str();
    bool octal = !text.empty() && text.size() <= 4 &&
                 text.find_first_not_of("01234567") == std::string::npos;
    int bits = octal ? std::stoi(text, nullptr, 8) : -1;
    if (bits < 0 || bits > 0777)
        return error(s, "unix_mode must be between \"0000\" and \"0777\" "
                        "(octal digits, like \"0660\")");
    char normal[8];
    std::snprintf(normal, sizeof normal, "%04o", unsigned(bits));
    config_.unix_mode = normal;
    config_.unix_mode_bits = bits;
}

// --- typed access to one setting --------------------------------------------

std::optional<long long> Loader::integer(const Setting& g, const char* key)
{
    if (!g.exists(key))
        return std::nullopt;
    const Setting& s = g[key];
    if (s.getType() == Setting::TypeInt)
        return static_cast<long long>(static_cast<int>(s));
    if (s.getType() == Setting::TypeInt64)
        return static_cast<long long>(s);
    error(s, s.getPath() + " must be an integer");
    return std::nullopt;
}

template <class T>
void Loader::read_int(const Setting& g, const char* key, T& out, long long lo, long long hi)
{
    auto value = integer(g, key);
    if (!value)
        return;
    if (*value < lo || *value > hi)
        error(g[key], g[key].getPath() + " must be between " + std::to_string(lo) + " and " +
                          std::to_string(hi));
    else
        out = static_cast<T>(*value);
}

void Loader::read_bool(const Setting& g, const char* key, bool& out)
{
    if (!g.exists(key))
        return;
    const Setting& s = g[key];
    if (s.getType() == Setting::TypeBoolean)
        out = s;
    else
        error(s, s.getPath() + " must be true or false");
}

std::optional<std::string> Loader::string(const Setting& g, const char* key)
{
    if (!g.exists(key))
        return std::nullopt;
    const Setting& s = g[key];
    if (s.getType() == Setting::TypeString)
        return std::string(s.c_str());
    error(s, s.getPath() + " must be a string");
    return std::nullopt;
}

void Loader::read_string(const Setting& g, const char* key, std::string& out, bool allow_empty)
{
    auto value = string(g, key);
    if (!value)
        return;
    if (value->empty() && !allow_empty)
        error(g[key], g[key].getPath() + " must not be empty");
    else
        out = *value;
}

void Loader::read_path(const Setting& g, const char* key, std::string& out, bool allow_empty)
{
    read_string(g, key, out, allow_empty);
    out = resolve(out);
}

void Loader::read_choice(const Setting& g, const char* key, std::span<const Named> table,
                         std::string& name, int& value)
{
    auto text = string(g, key);
    if (!text)
        return;
    for (const Named& n : table) {
        if (n.name == *text) {
            name = *text;
            value = n.value;
            return;
        }
    }
    std::string choices;
    for (const Named& n : table)
        choices += (choices.empty() ? "" : ", ") + std::string(n.name);
    error(g[key], g[key].getPath() + " must be one of " + choices);
}

// The elements of a list or array of strings; an error if it is anything else.
std::optional<std::vector<const Setting*>> Loader::strings(const Setting& g, const char* key)
{
    if (!g.exists(key))
        return std::nullopt;
    const Setting& s = g[key];
    std::string message = s.getPath() + " must be a list of strings: " + key + " = ( \"...\" );";
    if (!s.isList() && !s.isArray()) {
        error(s, message);
        return std::nullopt;
    }
    std::vector<const Setting*> items;
    for (int i = 0; i < s.getLength(); ++i) {
        if (s[i].getType() != Setting::TypeString) {
            error(s[i], message);
            return std::nullopt;
        }
        items.push_back(&s[i]);
    }
    return items;
}

// --- the common path of load_file and load_string -----------------------------

Config load_text(const std::string& text, const Origin& origin)
{
    Errors errors;
    if (!Prescan(origin, errors).run(text))
        throw ConfigError(errors.messages());   // libconfig would exit() or fail on these
    libconfig::Config parsed;
    parsed.setIncludeDir(origin.include_dir.c_str());
    try {
        parsed.readString(text);
    } catch (const libconfig::ParseException& e) {
        errors.add(e.getFile() ? origin.display_dir + e.getFile() : origin.name,
                   unsigned(e.getLine()), e.getError());
        throw ConfigError(errors.messages());
    }
    Config config = Loader(origin, errors).run(parsed.getRoot());
    if (!errors.empty())
        throw ConfigError(errors.messages());
    return config;
}

std::string join_lines(const std::vector<std::string>& messages)
{
    std::string text;
    for (const std::string& m : messages)
        text += (text.empty() ? "" : "\n") + m;
    return text;
}

// --- dump --------------------------------------------------------------------

// A libconfig string literal.  Control characters are escaped so that the
// output stays one setting per line and reads back byte for byte.
std::string literal(std::string_view s)
{
    std::string out = "\"";
    for (char ch : s) {
        switch (ch) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\f': out += "\\f"; break;
        default:
            if ((unsigned char)ch < 0x20 || ch == 0x7f) {
                char hex[8];
                std::snprintf(hex, sizeof hex, "\\x%02x", unsigned((unsigned char)ch));
                out += hex;
            } else {
                out += ch;
            }
        }
    }
    return out + "\"";
}

std::string literal_list(const std::vector<std::string>& items, char open, char close)
{
    std::string out(1, open);
    for (std::size_t i = 0; i < items.size(); ++i)
        out += (i ? ", " : " ") + literal(items[i]);
    return out + (items.empty() ? "" : " ") + close;
}

std::string bool_literal(bool b) { return b ? "true" : "false"; }

// libconfig reads an integer beyond 32 bits only with the L suffix.
std::string int_literal(long n)
{
    return std::to_string(n) + (n > INT_MAX || n < INT_MIN ? "L" : "");
}

void dump_workers(std::ostream& o, const Workers& w)
{
    o << "workers = {\n"
      << "  start = " << w.start << ";\n"
      << "  min_spare = " << w.min_spare << ";\n"
      << "  max_spare = " << w.max_spare << ";\n"
      << "  max = " << w.max << ";\n"
      << "  max_requests = " << int_literal(w.max_requests) << ";\n"
      << "  graceful_timeout = " << w.graceful_timeout << ";\n"
      << "  watchdog_timeout = " << w.watchdog_timeout << ";\n"
      << "  cpu_scheduling = " << literal(w.cpu_scheduling) << ";\n"
      << "};\n";
}

void dump_http(std::ostream& o, const Http& h)
{
    o << "http = {\n"
      << "  root = " << literal(h.root) << ";\n"
      << "  index = " << literal_list(h.index, '[', ']') << ";\n"
      << "  autoindex = " << bool_literal(h.autoindex) << ";\n"
      << "  keepalive_timeout = " << h.keepalive_timeout << ";\n"
      << "  keepalive_requests = " << h.keepalive_requests << ";\n"
      << "  header_timeout = " << h.header_timeout << ";\n"
      << "  header_timeout_max = " << h.header_timeout_max << ";\n"
      << "  header_min_rate = " << h.header_min_rate << ";\n"
      << "  adaptive_keepalive = " << bool_literal(h.adaptive_keepalive) << ";\n"
      << "  send_timeout = " << h.send_timeout << ";\n"
      << "  max_header_size = " << h.max_header_size << ";\n"
      << "  max_headers = " << h.max_headers << ";\n"
      << "  server_tokens = " << bool_literal(h.server_tokens) << ";\n"
      << "  follow_symlinks = " << bool_literal(h.follow_symlinks) << ";\n"
      << "  gzip_static = " << bool_literal(h.gzip_static) << ";\n"
      << "  max_ranges = " << h.max_ranges << ";\n"
      << "  max_discard_body = " << h.max_discard_body << ";\n"
      << "  mime_types = " << literal(h.mime_types) << ";\n"
      << "  default_type = " << literal(h.default_type) << ";\n"
      << "};\n";
}

void dump_log(std::ostream& o, const Log& l)
{
    o << "log = {\n"
      << "  level = " << literal(l.level) << ";\n"
      << "  syslog_facility = " << literal(l.syslog_facility) << ";\n"
      << "  access_log = " << literal(l.access_log) << ";\n"
      << "  access_format = "
      << literal(l.access_format == AccessFormat::common ? "common" : "combined") << ";\n"
      << "  access_buffer = " << l.access_buffer << ";\n"
      << "  access_flush = " << l.access_flush << ";\n"
      << "};\n";
}

// --- check_environment -----------------------------------------------------

void check_directory(std::vector<std::string>& problems, const std::string& what,
                     const std::string& path)
{
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0)
        problems.push_back(what + " " + in_quotes(path) + ": " + errno_text(errno));
    else if (!S_ISDIR(st.st_mode))
        problems.push_back(what + " " + in_quotes(path) + ": " + errno_text(ENOTDIR));
}

void check_readable(std::vector<std::string>& problems, const std::string& what,
                    const std::string& path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        problems.push_back(what + " " + in_quotes(path) + ": " + errno_text(errno));
    else
        ::close(fd);
}

// getpwnam() and getgrnam() say "not found" with a null result and one of
// several errno values (or none); only other errors are worth showing.
bool lookup_failed_for_real(int error)
{
    return error != 0 && error != ENOENT && error != ESRCH && error != EBADF && error != EPERM;
}

void check_user(std::vector<std::string>& problems, const Config& c)
{
    errno = 0;
    if (!c.user.empty() && !::getpwnam(c.user.c_str()))
        problems.push_back("user " + in_quotes(c.user) + ": " +
                           (lookup_failed_for_real(errno) ? errno_text(errno) : "no such user"));
    errno = 0;
    if (!c.group.empty() && !::getgrnam(c.group.c_str()))
        problems.push_back("group " + in_quotes(c.group) + ": " +
                           (lookup_failed_for_real(errno) ? errno_text(errno) : "no such group"));
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> messages)
    : std::runtime_error(join_lines(messages)), messages_(std::move(messages))
{
}

Config load_file(const std::string& path)
{
    std::string failure;
    auto text = read_all(path, failure);
    if (!text)
        throw ConfigError({failure});
    Origin origin;
    origin.name = path;
    auto slash = path.rfind('/');
    origin.display_dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    origin.include_dir = slash == std::string::npos ? "."
                         : slash == 0                ? "/"
                                                     : path.substr(0, slash);
    origin.file = absolute_from(current_dir(), path);
    origin.base_dir = fs::path(origin.file).parent_path().string();
    return load_text(*text, origin);
}

Config load_string(const std::string& text, const std::string& name, const std::string& base_dir)
{
    Origin origin;
    origin.name = name;
    origin.include_dir = base_dir.empty() ? "." : base_dir;
    origin.display_dir = base_dir.empty() || base_dir.back() == '/' ? base_dir : base_dir + "/";
    origin.base_dir = absolute_from(current_dir(), base_dir.empty() ? "." : base_dir);
    return load_text(text, origin);
}

std::vector<std::string> check_environment(const Config& c)
{
    std::vector<std::string> problems;
    check_directory(problems, "http.root", c.http.root);
    if (!c.chroot.empty())
        check_directory(problems, "chroot", c.chroot);
    check_user(problems, c);
    check_readable(problems, "http.mime_types", c.http.mime_types);
    if (c.log.access_log != "syslog" && c.log.access_log != "off") {
        std::string dir = fs::path(c.log.access_log).parent_path().string();
        check_directory(problems, "log.access_log directory", dir.empty() ? "." : dir);
    }
    return problems;
}

std::vector<std::string> known_keys()
{
    std::vector<std::string> keys;
    for (const Group& g : kGroups) {
        for (std::string_view key : g.keys) {
            bool is_group = g.name.empty() &&
                            std::any_of(std::begin(kGroups), std::end(kGroups),
                                        [&](const Group& sub) { return sub.name == key; });
            if (!is_group)
                keys.push_back(full_key(g.name, key));
        }
    }
    return keys;
}

std::string dump(const Config& c)
{
    std::ostringstream o;
    o << "# preforkd: effective configuration"
      << (c.file.empty() ? "" : " of " + literal(c.file)) << ", every default filled in\n"
      << "user = " << literal(c.user) << ";\n"
      << "group = " << literal(c.group) << ";\n"
      << "pid_file = " << literal(c.pid_file) << ";\n"
      << "chroot = " << literal(c.chroot) << ";\n"
      << "listen = " << literal_list(c.listen, '(', ')') << ";\n"
      << "unix_mode = " << literal(c.unix_mode) << ";\n"
      << "defer_accept = " << c.defer_accept << ";\n"
      << "sandbox = " << bool_literal(c.sandbox) << ";\n\n";
    dump_workers(o, c.workers);
    o << "\n";
    dump_http(o, c.http);
    o << "\n";
    dump_log(o, c.log);
    return o.str();
}

}  // namespace preforkd::config
