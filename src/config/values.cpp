// values.cpp - checking and printing the values of site and location keys
// (config/values.hpp).
//
// Every check happens at load, so that a header line that would split a
// response, a CIDR with a typo or a wildcard in the wrong place is a
// "file:line" error for the administrator, never a surprise for a client.
// Strictness follows the RFCs where one applies (RFC 9110 field syntax,
// RFC 4632 prefixes) and nginx where an administrator expects it (expiry
// units, "= /exact" locations).
#include "preforkd/config/values.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <charconv>

namespace preforkd::config::values {
namespace {

bool is_tchar(char ch)
{
    return std::isalnum((unsigned char)ch) ||
           std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
}

bool iequal(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower((unsigned char)x) == std::tolower((unsigned char)y);
           });
}

// Fields whose values the server computes; a configured one would contradict
// the message framing or the connection's state.
constexpr std::string_view kOwnedFields[] = {"content-length", "transfer-encoding", "connection",
                                             "keep-alive",     "upgrade",           "te",
                                             "trailer",        "date",              "content-range"};

std::optional<long> number(std::string_view text)
{
    long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value < 0)
        return std::nullopt;
    return value;
}

// Host bits set below the prefix: "10.0.0.1/8" is a typo for a network.
bool host_bits_clear(const Cidr& c, int bytes)
{
    for (int bit = c.prefix; bit < bytes * 8; ++bit)
        if (c.bytes[std::size_t(bit / 8)] & (0x80 >> (bit % 8)))
            return false;
    return true;
}

bool is_label_char(char ch) { return std::isalnum((unsigned char)ch) || ch == '-' || ch == '_'; }

}  // namespace

std::string header_problem(std::string_view line)
{
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
        return "must be \"Name: value\"";
    std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar))
        return "has a field name that is not a token (no spaces before the colon)";
    std::string_view value = line.substr(colon + 1);
    for (char ch : value)
        if ((unsigned char)ch < 0x20 ? ch != '\t' : ch == 0x7f)
            return "must not hold control characters (CR, LF, NUL ...)";
    for (std::string_view owned : kOwnedFields)
        if (iequal(name, owned))
            return "sets " + std::string(name) + ", which the server itself sends";
    return "";
}

std::optional<Cidr> parse_cidr(std::string_view text, std::string& why)
{
    Cidr c;
    c.text = std::string(text);
    if (text == "all") {
        c.family = Cidr::Family::any;
        return c;
    }
    auto slash = text.find('/');
    std::string address(text.substr(0, slash));
    bool v6 = address.find(':') != std::string::npos;
    c.family = v6 ? Cidr::Family::v6 : Cidr::Family::v4;
    int bytes = v6 ? 16 : 4;
    if (::inet_pton(v6 ? AF_INET6 : AF_INET, address.c_str(), c.bytes.data()) != 1) {
        why = "\"" + std::string(text) + "\" is not an IPv4 or IPv6 address";
        return std::nullopt;
    }
    c.prefix = bytes * 8;
    if (slash != std::string_view::npos) {
        auto prefix = number(text.substr(slash + 1));
        if (!prefix || *prefix > bytes * 8) {
            why = "\"" + std::string(text) + "\" needs a prefix length from 0 to " +
                  std::to_string(bytes * 8);
            return std::nullopt;
        }
        c.prefix = int(*prefix);
    }
    if (!host_bits_clear(c, bytes)) {
        why = "\"" + std::string(text) + "\" has host bits set below the /" +
              std::to_string(c.prefix);
        return std::nullopt;
    }
    return c;
}

std::optional<Expires> parse_expires(std::string_view text, std::string& why)
{
    Expires e;
    if (text == "off" || text == "epoch" || text == "max") {
        e.kind = text == "off" ? Expires::Kind::off
                 : text == "epoch" ? Expires::Kind::epoch
                                   : Expires::Kind::max;
        return e;
    }
    static constexpr std::pair<char, long> kUnits[] = {
        {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}, {'y', 365 * 86400}};
    long unit = 1;
    std::string_view digits = text;
    for (auto [suffix, seconds] : kUnits)
        if (!text.empty() && text.back() == suffix)
            unit = seconds, digits = text.substr(0, text.size() - 1);
    auto n = number(digits);
    if (!n || *n > 10L * 365 * 86400 / unit) {
        why = "must be \"off\", \"epoch\", \"max\" or a time like \"600\", \"12h\", \"30d\" "
              "(at most ten years)";
        return std::nullopt;
    }
    e.kind = Expires::Kind::seconds;
    e.seconds = *n * unit;
    return e;
}

std::string expires_text(const Expires& e)
{
    switch (e.kind) {
    case Expires::Kind::off: return "off";
    case Expires::Kind::epoch: return "epoch";
    case Expires::Kind::max: return "max";
    case Expires::Kind::seconds: break;
    }
    // The largest unit that says it exactly: 2592000 reads back as "30d".
    static constexpr std::pair<char, long> kUnits[] = {{'d', 86400}, {'h', 3600}, {'m', 60}};
    for (auto [suffix, seconds] : kUnits)
        if (e.seconds > 0 && e.seconds % seconds == 0)
            return std::to_string(e.seconds / seconds) + suffix;
    return std::to_string(e.seconds);
}

std::optional<std::string> server_name(std::string_view text, std::string& why)
{
    std::string name(text);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return char(std::tolower(ch)); });
    if (name.size() > 1 && name.back() == '.')
        name.pop_back();
    if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
        unsigned char buf[16];
        if (::inet_pton(AF_INET6, name.substr(1, name.size() - 2).c_str(), buf) == 1)
            return name;
    }
    std::string_view rest = name;
    if (rest.rfind("*.", 0) == 0)
        rest.remove_prefix(2);
    bool ok = !rest.empty() && rest.size() <= 253;
    std::size_t start = 0;
    while (ok && start <= rest.size()) {
        auto dot = std::min(rest.find('.', start), rest.size());
        std::string_view label = rest.substr(start, dot - start);
        ok = !label.empty() && label.size() <= 63 &&
             std::all_of(label.begin(), label.end(), is_label_char);
        start = dot + 1;
    }
    if (!ok) {
        why = "\"" + std::string(text) +
              "\" is not a host name (letters, digits, '-', dots; \"*.\" only as the first label)";
        return std::nullopt;
    }
    return name;
}

bool parse_location_path(std::string_view text, Location& out, std::string& why)
{
    bool exact = text.rfind("=", 0) == 0;
    std::string_view path = text;
    if (exact) {
        path.remove_prefix(1);
        while (!path.empty() && path.front() == ' ')
            path.remove_prefix(1);
    }
    if (path.empty() || path.front() != '/' || !is_clean_uri(path)) {
        why = "must be \"/prefix/\" or \"= /exact\" (a path starting with '/', no spaces)";
        return false;
    }
    out.path = std::string(path);
    out.exact = exact;
    return true;
}

std::string location_path_text(const Location& l) { return (l.exact ? "= " : "") + l.path; }

bool is_clean_uri(std::string_view text)
{
    return !text.empty() && std::none_of(text.begin(), text.end(), [](char ch) {
        return (unsigned char)ch <= ' ' || ch == 0x7f;
    });
}

}  // namespace preforkd::config::values
