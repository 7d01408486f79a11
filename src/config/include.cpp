// include.cpp - the pre-scan and the `include` key (config/include.hpp).
//
// Before libconfig sees any text, a small scanner that mirrors libconfig's
// lexer (strings, comments, line starts) reads it for two things the library
// gets dangerously wrong in version 1.5: an `@include` of a directory makes
// the library call exit(2), which must never take down a master validating a
// reload, and a decimal integer beyond 32 bits silently wraps instead of
// needing the `L` suffix.  Included files are scanned the same way, first.
//
// The `include` key is ours, not libconfig's: glob(3) expands each entry, the
// loader reads the files in byte order, and each is pre-scanned and parsed on
// its own.  A directory never reaches libconfig: expand() refuses it.
#include "preforkd/config/include.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <glob.h>
#include <string_view>
#include <sys/stat.h>

namespace preforkd::config::include {
namespace {

// libconfig 1.5 refuses deeper nesting itself ("include file nesting too
// deep"); scanning deeper than it reads would only waste time on a loop.
constexpr int kMaxIncludeDepth = 10;

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

}  // namespace

bool prescan(const std::string& text, const Origin& origin, Errors& errors)
{
    return Prescan(origin, errors).run(text);
}

Expansion expand(const std::string& pattern, const std::string& base_dir)
{
    Expansion out;
    std::string full = absolute_from(base_dir, pattern);
    glob_t g{};
    int rc = ::glob(full.c_str(), 0, nullptr, &g);
    if (rc == 0) {
        for (std::size_t i = 0; i < g.gl_pathc; ++i)
            out.files.emplace_back(g.gl_pathv[i]);
    }
    ::globfree(&g);
    std::sort(out.files.begin(), out.files.end());
    std::string what = "include " + in_quotes(pattern) + ": ";
    bool wildcard = full.find_first_of("*?[") != std::string::npos;
    if (rc == GLOB_NOMATCH && !wildcard)
        out.error = what + in_quotes(full) + ": " + errno_text(ENOENT);
    else if (rc != 0 && rc != GLOB_NOMATCH)
        out.error = what + "glob(" + in_quotes(full) + ") failed";
    for (const std::string& file : out.files) {
        struct stat st{};
        if (::stat(file.c_str(), &st) != 0)
            out.error = what + in_quotes(file) + ": " + errno_text(errno);
        else if (S_ISDIR(st.st_mode))
            out.error = what + in_quotes(file) + " is a directory";
        else if (!S_ISREG(st.st_mode))
            out.error = what + in_quotes(file) + " is not a regular file";
        if (!out.error.empty())
            break;
    }
    if (!out.error.empty())
        out.files.clear();
    return out;
}

}  // namespace preforkd::config::include
