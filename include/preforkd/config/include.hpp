// config/include.hpp - what the loader does before libconfig sees a text:
// the pre-scan that keeps libconfig 1.5's @include and integer traps away,
// and the expansion of the `include` key's globs into files.
#pragma once

#include <string>
#include <vector>

#include "preforkd/config/support.hpp"

namespace preforkd::config::include {

// Scans `text` (named and resolved as `origin` says), and every file it
// @includes, for an @include libconfig would exit() on or fail to open and
// for integers beyond 32 bits without the L suffix; adds each to `errors`.
// False when the text must not be handed to libconfig.
bool prescan(const std::string& text, const Origin& origin, Errors& errors);

// The files one `include` entry names: an absolute or (against `base_dir`)
// relative path or glob, expanded in byte order.  A glob matching nothing is
// fine; a plain path that does not exist, a directory or anything but a
// regular file is `error` (the message after "file:line: ").
struct Expansion {
    std::vector<std::string> files;
    std::string error;
};
Expansion expand(const std::string& pattern, const std::string& base_dir);

}  // namespace preforkd::config::include
