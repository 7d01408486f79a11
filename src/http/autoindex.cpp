// http/autoindex.cpp - directory listings.
//
// A listing reads the directory through a duplicate of the descriptor the
// responder already opened and checked, so it lists exactly what was
// resolved under the root, not whatever the path names a moment later.
// Every name is attacker-controlled as far as the page is concerned (anyone
// who can upload a file chooses it): text goes through html_escape, hrefs
// through encode_segment, which leaves only unreserved characters, so a
// name like "javascript:alert(1)" or "<script>" stays inert.  Hidden files
// are left out, as nginx and Apache do, because dot files are usually
// configuration that was never meant to be browsed.  So are names holding
// a control character: percent_decode refuses those in a request path, so
// a link to one could only ever get a 400, and the raw byte has no place in
// the page either.  Rejected: listing them without a link, which would need
// a second, lossy spelling of the name that matches no file.
#include "preforkd/http/autoindex.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "preforkd/http/path.hpp"

namespace preforkd::http {
namespace {

struct Entry {
    std::string name;
    bool directory = false;
    bool sized = false;   // a regular file, whose size is shown
    off_t size = 0;
    time_t mtime = 0;
};

// Closes the DIR (and the duplicate it owns) on every path out.
struct DirCloser {
    void operator()(DIR* d) const noexcept { closedir(d); }
};

// Size and time of the entry itself.  A symlink is not followed: its
// target may lie outside the root, and the listing must not become a way to
// learn the size and age of files there.  Its size shows as "-", like a
// directory's; following the link is the responder's business.
Entry describe(int dirfd, const char* name)
{
    Entry e;
    e.name = name;
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return e;
    e.directory = S_ISDIR(st.st_mode);
    e.sized = S_ISREG(st.st_mode);
    e.size = st.st_size;
    e.mtime = st.st_mtime;
    return e;
}

// Hidden and unreachable names are not listed (see the top of the file).
bool listed(const char* name) noexcept
{
    if (name[0] == '.') return false;
    for (const char* p = name; *p; ++p) {
        auto c = static_cast<unsigned char>(*p);
        if (c < 0x20 || c == 0x7f) return false;
    }
    return true;
}

std::optional<std::vector<Entry>> read_entries(int dirfd)
{
    int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return std::nullopt;
    std::unique_ptr<DIR, DirCloser> dir(fdopendir(dup));
    if (!dir) {
        int saved = errno;
        close(dup);
        errno = saved;
        return std::nullopt;
    }
    rewinddir(dir.get());   // the duplicate shares its offset with dirfd
    std::vector<Entry> entries;
    errno = 0;
    while (const dirent* d = readdir(dir.get())) {
        if (listed(d->d_name)) entries.push_back(describe(dirfd, d->d_name));
        errno = 0;
    }
    if (errno != 0) {
        int saved = errno;
        dir.reset();
        errno = saved;
        return std::nullopt;
    }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.name < b.name; });
    return entries;
}

std::string format_mtime(time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);   // digits only: locale-proof
    return buf;
}

void append_row(std::string& html, const Entry& e)
{
    std::string suffix = e.directory ? "/" : "";
    html += "<tr><td><a href=\"" + encode_segment(e.name) + suffix + "\">" +
            html_escape(e.name) + suffix + "</a></td><td>" + format_mtime(e.mtime) +
            "</td><td>" + (e.sized ? std::to_string(e.size) : std::string("-")) +
            "</td></tr>\n";
}

}  // namespace

std::optional<std::string> directory_listing(int dirfd, std::string_view url_path)
{
    std::optional<std::vector<Entry>> entries = read_entries(dirfd);
    if (!entries) return std::nullopt;
    std::string title = "Index of " + html_escape(url_path);
    std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
                       "</title></head>\n<body><h1>" + title + "</h1>\n<table>\n" +
                       "<tr><th>Name</th><th>Last modified (UTC)</th><th>Size</th></tr>\n";
    if (url_path != "/") html += "<tr><td><a href=\"../\">../</a></td><td></td><td>-</td></tr>\n";
    for (const Entry& e : *entries) append_row(html, e);
    html += "</table>\n</body></html>\n";
    return html;
}

}  // namespace preforkd::http
