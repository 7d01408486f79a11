// http/path.cpp - decoding, normalising and re-encoding request paths.
//
// The document root is protected twice: here, lexically, by decoding once
// and then removing dot segments so that the path cannot climb above "/";
// and in static_file.cpp, on the file system, by checking where symlinks
// lead.  Decoding happens before normalisation on purpose: "%2e%2e" and
// "%2f" become ".." and "/" first and are then removed like literal ones,
// instead of surviving as an opaque segment the kernel would interpret.
#include "preforkd/http/path.hpp"
#include "preforkd/http/fields.hpp"

#include <vector>

namespace preforkd::http {
namespace {

bool is_control(unsigned char c) noexcept { return c < 0x20 || c == 0x7f; }

bool is_unreserved(unsigned char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

// RFC 3986 pchar minus '%' (which is what we are encoding) plus '/'.
bool is_path_char(unsigned char c) noexcept
{
    static constexpr std::string_view extra = "!$&'()*+,;=:@/";
    return is_unreserved(c) || extra.find(static_cast<char>(c)) != std::string_view::npos;
}

template <typename Keep>
std::string encode(std::string_view s, Keep keep)
{
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size() + 8);
    for (unsigned char c : s) {
        if (keep(c)) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 15];
        }
    }
    return out;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view path)
{
    std::string out;
    out.reserve(path.size());
    for (std::size_t i = 0; i < path.size(); ++i) {
        char c = path[i];
        if (c == '%') {
            if (i + 2 >= path.size()) return std::nullopt;
            int hi = hex_value(path[i + 1]), lo = hex_value(path[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        }
        if (is_control(static_cast<unsigned char>(c))) return std::nullopt;
        out += c;
    }
    return out;
}

// Built in place: "/seg" is appended for each segment kept, and ".." cuts
// the last one off again (back to its slash), so no list of segments is
// needed.
std::string normalize_path(std::string_view decoded)
{
    std::string out;
    out.reserve(decoded.size() + 1);
    bool directory = false;   // does the result end with '/'?
    std::size_t pos = 0;
    while (pos <= decoded.size()) {
        std::size_t slash = decoded.find('/', pos);
        if (slash == std::string_view::npos) slash = decoded.size();
        std::string_view seg = decoded.substr(pos, slash - pos);
        pos = slash + 1;
        // An empty, "." or ".." last segment names a directory (RFC 3986
        // 5.2.4 keeps the slash: "/a/b/." -> "/a/b/").
        directory = seg.empty() || seg == "." || seg == "..";
        if (seg == "..") {
            out.resize(out.empty() ? 0 : out.rfind('/'));
        } else if (!seg.empty() && seg != ".") {
            out += '/';
            out += seg;
        }
    }
    if (directory || out.empty()) out += '/';
    return out;
}

std::string encode_path(std::string_view decoded)
{
    return encode(decoded, is_path_char);
}

std::string encode_segment(std::string_view name)
{
    return encode(name, is_unreserved);
}

std::string html_escape(std::string_view text)
{
    std::string out;
    out.reserve(text.size() + 16);
    for (char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

}  // namespace preforkd::http
