// http/encoding.hpp - does the client accept a gzip-encoded response?
//
// Used by the responder's gzip_static: the only content coding we ever send
// is a precompressed "name.gz" beside "name".
#pragma once

#include "preforkd/http/request.hpp"

namespace preforkd::http {

// RFC 9110 12.5.3 for the gzip coding: true when Accept-Encoding (all its
// lines) lists "gzip" or its alias "x-gzip" with a qvalue above 0, or does
// not list them but has "*" above 0.  No Accept-Encoding at all means any
// coding is acceptable in theory, but in practice such clients (scripts,
// old tools) expect identity, as nginx assumes too: false.  An element
// with a malformed qvalue is ignored.
bool accepts_gzip(const Request& req);

}  // namespace preforkd::http
