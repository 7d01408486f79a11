// http/mime.hpp - choosing a Content-Type for a file name.
//
// load_mime_types() (declared in static_file.hpp) reads the table; this
// header adds the lookup the responder uses.
#pragma once

#include <string>
#include <string_view>

#include "preforkd/http/static_file.hpp"

namespace preforkd::http {

// The Content-Type for `filename` (last path segment): the site's map,
// keyed by the lower-cased extension after the last dot, or the site's
// default type.  text/* types get "; charset=utf-8" unless they name one.
// The text stays valid until the next call (it is the function's memo of
// its last answer), which is as long as one response needs it.
const std::string& content_type(const Site& site, std::string_view filename);

}  // namespace preforkd::http
