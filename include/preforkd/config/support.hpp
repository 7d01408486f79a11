// config/support.hpp - what every part of the configuration code shares:
// the error collector, the origin of a text, and path and text helpers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::config {

// Every problem found, with where it is.  The pre-scan, the include reader
// and the walk find problems in their own orders; the administrator reads the
// files top down, so messages() puts them in file order: files as first met,
// then by line.
class Errors {
public:
    void add(std::string file, unsigned line, std::string message);
    // Places `file` after those met so far, before any error is found in it:
    // files are read in this order, errors in them found later.
    void met(const std::string& file);
    bool empty() const { return found_.empty(); }
    std::vector<std::string> messages() const;

private:
    struct Located {
        std::string file;
        unsigned line;
        std::string message;
    };
    std::vector<Located> found_;
    std::vector<std::string> files_;   // in the order met
};

// Where a text came from, and how to name and resolve what it refers to.
struct Origin {
    std::string name;          // the file as the user named it, or load_string's name
    std::string display_dir;   // prefix for @included files in messages ("" or ".../")
    std::string include_dir;   // what libconfig resolves @include against
    std::string base_dir;      // absolute directory for relative paths
    std::string file;          // Config::file
};

// The origin of the file at `path` (as the user wrote it), relative paths
// inside resolved against `base_dir` ("" = the file's own directory).
Origin origin_of_file(const std::string& path, const std::string& base_dir = "");

std::string errno_text(int error);
std::string in_quotes(std::string_view s);

// Joins a relative path to an absolute directory, dropping "." components but
// keeping "..": folding "a/../b" by text would be wrong across a symlink.
std::string absolute_from(const std::string& dir, const std::string& path);
std::string current_dir();

// Reads a whole file; on failure returns nullopt and sets `failure` to the
// syscall message ("open(\"/x\") failed: No such file or directory").
std::optional<std::string> read_all(const std::string& path, std::string& failure);

}  // namespace preforkd::config
