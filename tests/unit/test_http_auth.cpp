// test_http_auth.cpp - htpasswd files and Basic credentials.
//
// Hashes are made at test time with crypt_r(3) and a fresh salt, never
// committed.  The refusals are the ones an administrator meets with
// Apache's default htpasswd: each names the file, the line and the fix.
#include <criterion/criterion.h>

#include <crypt.h>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "preforkd/http/auth.hpp"

using namespace preforkd::http;

namespace {

std::string hash(const char* prefix, const char* password)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    cr_assert_not_null(crypt_gensalt_rn(prefix, 0, nullptr, 0, salt, sizeof salt), "%s", prefix);
    crypt_data data{};
    const char* out = crypt_r(password, salt, &data);
    cr_assert(out && out[0] != '*', "crypt_r failed for %s", prefix);
    return out;
}

std::string basic(const std::string& credentials)
{
    static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out = "Basic ";
    std::size_t i = 0;
    for (; i + 2 < credentials.size(); i += 3) {
        unsigned n = (unsigned char)credentials[i] << 16 | (unsigned char)credentials[i + 1] << 8 |
                     (unsigned char)credentials[i + 2];
        for (int k = 3; k >= 0; --k) out += table[(n >> (6 * k)) & 63];
    }
    std::size_t rest = credentials.size() - i;
    if (rest > 0) {
        unsigned n = (unsigned char)credentials[i] << 16 |
                     (rest > 1 ? (unsigned char)credentials[i + 1] << 8 : 0);
        out += table[(n >> 18) & 63];
        out += table[(n >> 12) & 63];
        out += rest > 1 ? table[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

}  // namespace

Test(http_auth, bcrypt_sha_crypt_and_yescrypt_entries_verify)
{
    BasicAuth auth;
    auth.realm = "Staff";
    std::string text = "# staff\n\nalice:" + hash("$2b$", "alice pw") + "\nbob:" +
                       hash("$y$", "bob:pw") + "\r\ncarol:" + hash("$6$", "carol") + "\n";
    HtpasswdResult r = parse_htpasswd(text, "staff.htpasswd");
    cr_assert(r.errors.empty(), "%s", r.errors.empty() ? "" : r.errors.front().c_str());
    cr_assert_eq(r.entries.size(), 3u);
    auth.entries = r.entries;
    cr_expect(check_basic(auth, basic("alice:alice pw")).ok);
    cr_expect(check_basic(auth, basic("bob:bob:pw")).ok, "a password may hold ':'");
    cr_expect(check_basic(auth, basic("carol:carol")).ok);
    AuthCheck wrong = check_basic(auth, basic("alice:guess"));
    cr_expect(!wrong.ok);
    cr_expect_eq(wrong.user, "alice");
    AuthCheck unknown = check_basic(auth, basic("mallory:alice pw"));
    cr_expect(!unknown.ok);
    cr_expect_eq(unknown.user, "mallory");
    cr_expect(!check_basic(auth, "").ok);
    cr_expect(!check_basic(auth, "Bearer abc").ok);
    cr_expect(!check_basic(auth, "Basic !!!!").ok);
    cr_expect(check_basic(auth, "basic " + basic("alice:alice pw").substr(6)).ok,
              "the scheme is case-insensitive");
}

Test(http_auth, apache_defaults_are_refused_with_line_and_fix)
{
    std::string text = "ok:" + hash("$2y$", "x") +
                       "\n"
                       "apr:$apr1$abcdefgh$0123456789012345678901\n"
                       "sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"
                       "plain:secret\n"
                       "md5:$1$saltsalt$abcdefghijklmnopqrstuv\n"
                       "nocolon\n";
    HtpasswdResult r = parse_htpasswd(text, "/etc/preforkd/htpasswd");
    cr_expect_eq(r.entries.size(), 1u);
    cr_assert_eq(r.errors.size(), 5u);
    cr_expect(r.errors[0].starts_with("/etc/preforkd/htpasswd:2: user \"apr\""), "%s", r.errors[0].c_str());
    cr_expect(r.errors[1].starts_with("/etc/preforkd/htpasswd:3: "), "%s", r.errors[1].c_str());
    cr_expect(r.errors[2].starts_with("/etc/preforkd/htpasswd:4: "), "%s", r.errors[2].c_str());
    cr_expect(r.errors[4].starts_with("/etc/preforkd/htpasswd:6: expected USER:HASH"), "%s",
              r.errors[4].c_str());
    for (int i = 0; i < 4; ++i)
        cr_expect(r.errors[std::size_t(i)].find("htpasswd -B") != std::string::npos, "%s",
                  r.errors[std::size_t(i)].c_str());
    cr_expect(r.errors[2].find("secret") == std::string::npos, "the password is echoed: %s",
              r.errors[2].c_str());
}

Test(http_auth, load_names_the_file)
{
    char tmpl[] = "/tmp/preforkd-auth-XXXXXX";
    int fd = mkstemp(tmpl);
    cr_assert_neq(fd, -1);
    close(fd);
    std::ofstream(tmpl) << "a:" << hash("$5$", "pw") << "\n";
    cr_expect_eq(load_htpasswd(tmpl).size(), 1u);
    std::ofstream(tmpl) << "a:$apr1$x$y\n";
    std::string what;
    try {
        load_htpasswd(tmpl);
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    cr_expect(what.find(std::string(tmpl) + ":1:") != std::string::npos, "%s", what.c_str());
    unlink(tmpl);
    what.clear();
    try {
        load_htpasswd(tmpl);
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    cr_expect(what.find(tmpl) != std::string::npos && what.find("No such file") != std::string::npos,
              "%s", what.c_str());
}
