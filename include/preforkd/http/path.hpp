// http/path.hpp - request paths: decoding, normalising, re-encoding, escaping.
//
// Pure string functions, no file system.  The static-file responder decodes a
// request path exactly once, normalises it so that it can only name something
// beneath the document root, and encodes names again when it writes them into
// a Location header or an HTML listing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace preforkd::http {

// Decodes %XX escapes once.  Empty optional for a malformed escape, an
// encoded NUL, or any control character (raw or decoded): file names with
// those are not served, and they must never reach a log line or a header.
std::optional<std::string> percent_decode(std::string_view path);

// Removes "." and ".." segments (RFC 3986 section 5.2.4) and collapses empty
// segments ("//").  The result starts with '/', never contains "//", "/./"
// or "/../", and keeps a trailing slash when the input named a directory
// ("/a/b/.." -> "/a/").  A ".." at the top is dropped, so the result can
// never climb above "/".  A backslash is an ordinary byte, not a separator.
std::string normalize_path(std::string_view decoded);

// Percent-encodes a decoded path for a Location header: '/' stays a
// separator, every byte outside RFC 3986 pchar is encoded (including '\\',
// so "/\host" can never read as a scheme-relative URL).
std::string encode_path(std::string_view decoded);

// Percent-encodes one file name for an href: only unreserved characters
// survive, so a name like "javascript:x" or "a/b" cannot change the link.
std::string encode_segment(std::string_view name);

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view text);

}  // namespace preforkd::http
