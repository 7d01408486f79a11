// http/fields.hpp - small helpers for header field values (RFC 9110 5.6)
// and the numbers written into them.
//
// The parser, the precondition checks and the content negotiation all read
// comma-separated lists with optional whitespace; they share these few
// functions instead of each carrying its own copy.  Header-only because the
// list walker is a template taking the caller's lambda.
#pragma once

#include <array>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace preforkd::http {

inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

// ASCII lower case, whatever the locale (names, extensions, schemes).
inline char ascii_lower(char c) noexcept
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

inline std::string ascii_lower(std::string_view s)
{
    std::string out(s);
    for (char& c : out)
        c = ascii_lower(c);
    return out;
}

// RFC 9110 5.6.2 tchar, as a 256-entry table: the bytes of a token (method,
// field name, transfer coding, chunk extension name).
inline constexpr std::array<bool, 256> kTchar = [] {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}();

inline bool is_tchar(char c) noexcept { return kTchar[static_cast<unsigned char>(c)]; }

// The value of a hexadecimal digit (percent-encoding, chunk sizes), -1 if
// `c` is none.
inline int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Appends `n` in base 10 or 16 (lower-case digits), without a format string
// or a locale (std::to_chars): for the numbers written on every response
// and log line.
inline void append_unsigned(std::string& out, std::uint64_t n, int base = 10)
{
    char buf[20];
    char* end = std::to_chars(buf, buf + sizeof buf, n, base).ptr;
    out.append(buf, std::size_t(end - buf));
}

// Removes optional whitespace (SP, HTAB) from both ends.
inline std::string_view trim_ows(std::string_view s) noexcept
{
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

// Calls fn(element) for each element of a comma-separated list, trimmed, with
// empty elements skipped as RFC 9110 5.6.1 asks of a recipient.  Stops as
// soon as fn returns true and then returns true; false after the whole list.
// (A quoted string holding a comma is split too: none of the lists we read -
// tokens, entity-tags, codings, ranges - may contain one.)
template <typename Fn>
bool any_list_element(std::string_view list, Fn fn)
{
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view item = trim_ows(list.substr(0, comma));
        if (!item.empty() && fn(item)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace preforkd::http
