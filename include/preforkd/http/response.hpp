// http/response.hpp - assembling a response head, shared by the responders.
//
// A response is built in three steps: start_response() writes the status
// line, Date and Server; the responder appends its own fields with
// add_header(); finish_response() decides the connection's fate, writes the
// Connection field and the blank line, and strips the body for HEAD.  The
// public entry points (respond, error_response) are in static_file.hpp.
#pragma once

#include <string_view>

#include "preforkd/http/static_file.hpp"

namespace preforkd::http {

// What the head depends on besides the status.
struct Exchange {
    const Site& site;
    int version_minor = 1;     // of the request; 1.0 needs "keep-alive" said
    bool close = false;        // the connection ends after this response
    bool head_only = false;    // HEAD: the head is sent, the body is not
};

Response start_response(const Exchange& x, int status);

// Appends "name: value".  Values come from us, never from the request
// unchecked, so no CR or LF can reach the head.
void add_header(Response& r, std::string_view name, std::string_view value);

// Closes the head.  A status that leaves the stream in doubt (400, 5xx)
// always closes; otherwise x.close decides.
Response finish_response(const Exchange& x, Response r);

// start_response plus a small HTML page naming the status, with its
// Content-Type and Content-Length; the caller may add fields and finishes.
Response status_page(const Exchange& x, int status);

}  // namespace preforkd::http
