// http/auth.cpp - htpasswd parsing and Basic credentials checked with crypt_r(3).
//
// A hash is accepted by its prefix, and the prefixes are a short allow list
// rather than a deny list: an unknown scheme is refused at load time, so an
// administrator learns of it from `preforkd -t`, not from users who can
// never log in.  crypt_r(3) returns "*0" (or "*1") for a hash it cannot use,
// which can never equal a stored hash, so a corrupt entry fails closed.
#include "preforkd/http/auth.hpp"

#include <array>
#include <cerrno>
#include <crypt.h>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "preforkd/http/request.hpp"

namespace preforkd::http {
namespace {

constexpr std::array<std::string_view, 5> kAccepted = {"$2y$", "$2b$", "$5$", "$6$", "$y$"};

bool accepted_hash(std::string_view hash) noexcept
{
    for (std::string_view prefix : kAccepted)
        if (hash.starts_with(prefix)) return true;
    return false;
}

// What is wrong with `hash`, in words an administrator can act on.
std::string refusal(std::string_view hash)
{
    std::string what = hash.starts_with("$apr1$")  ? "an Apache MD5 ($apr1$) hash"
                       : hash.starts_with("{SHA}") ? "an unsalted SHA-1 ({SHA}) hash"
                       : hash.starts_with("$1$")   ? "an MD5-crypt ($1$) hash"
                       : hash.starts_with("$")     ? "a hash of an unsupported scheme"
                                                   : "a plain-text password or a DES hash";
    return what + "; create the entry with bcrypt: htpasswd -B FILE USER";
}

std::string_view trim_cr(std::string_view line)
{
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

// RFC 4648 base64, strict: bad characters or lengths give an empty optional.
bool base64_decode(std::string_view in, std::string& out)
{
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    if (in.size() % 4 != 0) return false;
    unsigned bits = 0;
    int have = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '=') {
            if (i + 2 < in.size() || (i + 1 < in.size() && in[i + 1] != '=')) return false;
            break;
        }
        int v = value(in[i]);
        if (v < 0) return false;
        bits = (bits << 6) | unsigned(v);
        have += 6;
        if (have >= 8) {
            have -= 8;
            out += char((bits >> have) & 0xff);
        }
    }
    return true;
}

// Compares every byte whatever the first difference: the time taken says
// nothing about how much of a hash matched.
bool same_bytes(std::string_view a, std::string_view b) noexcept
{
    volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
    std::size_t n = a.size() < b.size() ? a.size() : b.size();
    for (std::size_t i = 0; i < n; ++i) diff = diff | (a[i] ^ b[i]);
    return diff == 0;
}

bool hash_matches(const std::string& password, const std::string& hash)
{
    static crypt_data data;   // 32 KiB: static, a worker serves one request at a time
    std::memset(&data, 0, sizeof data);
    const char* out = crypt_r(password.c_str(), hash.c_str(), &data);
    return out && out[0] != '*' && same_bytes(out, hash);
}

}  // namespace

HtpasswdResult parse_htpasswd(std::string_view text, const std::string& file_name)
{
    HtpasswdResult r;
    int number = 0;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = trim_cr(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        ++number;
        if (line.empty() || line.front() == '#') continue;
        std::string where = file_name + ":" + std::to_string(number) + ": ";
        std::size_t colon = line.find(':');
        if (colon == 0 || colon == std::string_view::npos) {
            r.errors.push_back(where + "expected USER:HASH");
            continue;
        }
        std::string_view hash = line.substr(colon + 1);
        std::string user(line.substr(0, colon));
        if (!accepted_hash(hash))
            r.errors.push_back(where + "user \"" + user + "\" has " + refusal(hash));
        else
            r.entries.push_back(PasswordEntry{user, std::string(hash)});
    }
    return r;
}

std::vector<PasswordEntry> load_htpasswd(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("open(\"" + path + "\") failed: " +
                                 std::generic_category().message(errno));
    std::ostringstream text;
    text << in.rdbuf();
    HtpasswdResult r = parse_htpasswd(text.str(), path);
    if (!r.errors.empty()) {
        std::string all;
        for (const std::string& e : r.errors) all += (all.empty() ? "" : "\n") + e;
        throw std::runtime_error(all);
    }
    return std::move(r.entries);
}

AuthCheck check_basic(const BasicAuth& auth, std::string_view authorization)
{
    AuthCheck result;
    std::size_t space = authorization.find(' ');
    if (space == std::string_view::npos || !iequals(authorization.substr(0, space), "Basic"))
        return result;
    std::string decoded;
    std::string_view token = authorization.substr(space + 1);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    if (!base64_decode(token, decoded)) return result;
    std::size_t colon = decoded.find(':');
    if (colon == std::string::npos) return result;
    result.user = decoded.substr(0, colon);
    std::string password = decoded.substr(colon + 1);
    const PasswordEntry* found = nullptr;
    for (const PasswordEntry& e : auth.entries)
        if (e.user == result.user) found = &e;
    // An unknown user still costs one hash, against the first entry's.
    if (!found) {
        if (!auth.entries.empty()) hash_matches(password, auth.entries.front().hash);
        return result;
    }
    result.ok = hash_matches(password, found->hash);
    return result;
}

}  // namespace preforkd::http
