// http/auth.hpp - HTTP Basic authentication against crypt(3) hashes.
//
// The password file is read by the master, as root, at start and on reload
// (load_htpasswd); workers, which cannot open it once privileges are
// dropped, get the parsed entries in memory.  Only hashes libcrypt checks
// well are taken: bcrypt ($2y$, $2b$), SHA-crypt ($5$, $6$) and yescrypt
// ($y$).  Apache's $apr1$, {SHA} and plain-text entries are refused at load
// time with the file, the line and the fix, never silently never-matching.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::http {

struct PasswordEntry {
    std::string user;
    std::string hash;   // as in the file, e.g. "$2y$10$..."
};

struct BasicAuth {
    std::string realm;                    // shown by the browser's prompt
    std::vector<PasswordEntry> entries;   // users in file order
};

struct HtpasswdResult {
    std::vector<PasswordEntry> entries;
    std::vector<std::string> errors;   // "FILE:LINE: ..." each; empty when usable
};

// Parses htpasswd text ("user:hash" lines; blank lines and '#' comments are
// skipped).  `file_name` only names the file in errors.
HtpasswdResult parse_htpasswd(std::string_view text, const std::string& file_name);

// Reads and parses `path`.  Throws std::runtime_error holding every error
// (one per line) when the file cannot be read or holds a refused entry.
std::vector<PasswordEntry> load_htpasswd(const std::string& path);

// The outcome of checking an Authorization field against `auth`.
struct AuthCheck {
    bool ok = false;
    std::string user;   // the user name offered, "" when none; never the password
};

// Checks `authorization` (the field value, "Basic base64(user:password)")
// with crypt_r(3).  The hash comparison runs in constant time, and an
// unknown user costs a hash computation too, so timing does not tell
// which user names exist.
AuthCheck check_basic(const BasicAuth& auth, std::string_view authorization);

}  // namespace preforkd::http
