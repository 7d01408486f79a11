// http/mime.cpp - the mime.types table and the Content-Type lookup.
//
// The table is read once per configuration load (Debian's media-types
// package ships /etc/mime.types) into a hash table; a lookup is one
// lower-cased extension.  When an extension is listed twice the first line
// wins, which is what Apache and nginx do with the same file.  Text types
// are served as UTF-8: the web's default encoding and what a modern site
// stores.
#include "preforkd/http/mime.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include "preforkd/http/fields.hpp"

namespace preforkd::http {
namespace {

// The whitespace-separated words of one line.
template <typename Fn>
void for_each_word(std::string_view line, Fn fn)
{
    static constexpr std::string_view blanks = " \t\r\f\v";
    for (;;) {
        std::size_t start = line.find_first_not_of(blanks);
        if (start == std::string_view::npos) return;
        line.remove_prefix(start);
        std::size_t end = std::min(line.find_first_of(blanks), line.size());
        fn(line.substr(0, end));
        line.remove_prefix(end);
    }
}

// One "type ext ext ..." line, the comment already cut off.
void add_line(std::string_view line, MimeMap& map)
{
    std::string_view type;
    for_each_word(line, [&](std::string_view word) {
        if (type.empty())
            type = word;
        else if (type.find('/') != std::string_view::npos)
            map.emplace(ascii_lower(word), std::string(type));
    });
}

std::string read_all(const std::string& path)
{
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw sys_error("open", path);
    std::string text;
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n == 0) return text;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw sys_error("read", path);
        text.append(buf, static_cast<std::size_t>(n));
    }
}

}  // namespace

MimeMap load_mime_types(const std::string& path)
{
    std::string text = read_all(path);
    std::string_view rest = text;
    MimeMap map;
    while (!rest.empty()) {
        std::size_t nl = std::min(rest.find('\n'), rest.size());
        std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(std::min(nl + 1, rest.size()));
        add_line(line.substr(0, line.find('#')), map);
    }
    return map;
}

const std::string& content_type(const Site& site, std::string_view filename)
{
    std::size_t dot = filename.rfind('.');
    const std::string* type = &site.default_type;
    // dot == 0 is a hidden file (".profile"), which has no extension.
    if (site.mime && dot != std::string_view::npos && dot != 0) {
        std::string_view ext = filename.substr(dot + 1);
        char buf[64];
        auto it = site.mime->end();
        if (ext.size() <= sizeof buf) {
            // Lower-cased on the stack: the common case builds no string.
            for (std::size_t i = 0; i < ext.size(); ++i)
                buf[i] = ascii_lower(ext[i]);
            it = site.mime->find(std::string_view(buf, ext.size()));
        } else {
            it = site.mime->find(ascii_lower(ext));
        }
        if (it != site.mime->end()) type = &it->second;
    }
    // The last answer is kept: a worker mostly serves the same few types,
    // and the charset test and the concatenation are then skipped.  Keyed by
    // the type's text, not its address, so a table freed and another built
    // in its place can never hand back a stale answer.
    thread_local std::string for_type;   // thread_local: see worker.cpp
    thread_local std::string answer;
    if (*type != for_type) {
        constexpr std::string_view kCharset = "; charset=utf-8";
        bool add_charset = type->starts_with("text/") && type->find("charset") == std::string::npos;
        answer = *type;
        if (add_charset)
            answer += kCharset;
        for_type = *type;
    }
    return answer;
}

}  // namespace preforkd::http
