// http/autoindex.hpp - the HTML listing of a directory.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace preforkd::http {

// The listing of the open directory `dirfd` (not consumed) whose decoded
// URL path is `url_path` (ending in '/').  Entries are sorted by name, with
// size and modification time; hidden entries (".name") and names holding
// a control character (which no request path can name) are left out.  Names
// are HTML-escaped in text and percent-encoded in hrefs.  Empty optional,
// errno set, when the directory cannot be read.
std::optional<std::string> directory_listing(int dirfd, std::string_view url_path);

}  // namespace preforkd::http
