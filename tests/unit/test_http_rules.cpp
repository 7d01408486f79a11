// test_http_rules.cpp - a location's rules, as a client meets them.
//
// An error page is served from the site's files as they are: a location's
// rules (return, allow/deny, auth) do not apply to it, so a page can never
// be refused by the rule whose refusal it explains.
//
// Each test gets a fresh document tree (made by the suite's .init in the
// test's own process) and a site compiled from specs as the master would
// compile them; requests are raw text through the real parser, answered by
// http::answer(), and the checks are the status, the fields and the bytes
// a client would see, and the reason the diagnostic log would get.
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <string>
#include <system_error>

#include "preforkd/http/request.hpp"
#include "preforkd/http/rules.hpp"
#include "preforkd/http/site.hpp"

using namespace preforkd::http;
namespace fs = std::filesystem;

namespace {

std::string g_base;

void write_file(const std::string& path, const std::string& text)
{
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

void setup()
{
    char tmpl[] = "/tmp/preforkd-rules-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    g_base = fs::canonical(tmpl).string();
    const std::string r = g_base + "/root";
    write_file(r + "/index.html", "home");
    write_file(r + "/a.txt", "aaa");
    write_file(r + "/.git/config", "[core] secret");
    write_file(r + "/.htpasswd", "x:y");
    write_file(r + "/sub/.env", "KEY=1");
    write_file(r + "/.well-known/acme-challenge/token", "proof");
    write_file(r + "/errors/404.html", "<p>custom 404</p>");
    write_file(r + "/errors/403.html", "<p>custom 403</p>");
    write_file(r + "/private/p.txt", "private");
    write_file(g_base + "/assets/logo.txt", "logo");
    write_file(g_base + "/assets/sub/index.html", "sub index");
}

void teardown()
{
    std::error_code ec;
    if (!g_base.empty()) fs::remove_all(g_base, ec);
}

SiteSpec spec()
{
    SiteSpec s;
    s.name = "test";
    s.names = {"test.example"};
    s.files.root = g_base + "/root";
    s.files.index = {"index.html"};
    return s;
}

ClientAddress client(const char* v4 = "127.0.0.1")
{
    sockaddr_storage ss{};
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    inet_pton(AF_INET, v4, &in.sin_addr);
    return client_address(ss);
}

Response ask(const SiteTable& t, const std::string& target, const std::string& fields = "",
             const char* from = "127.0.0.1", const std::string& method = "GET")
{
    std::string raw = method + " " + target + " HTTP/1.1\r\nHost: test.example\r\n" + fields + "\r\n";
    Request req;
    ParseResult p = parse(raw, Limits{}, req);
    cr_assert(p.state == ParseState::complete, "[%s] does not parse", raw.c_str());
    ClientAddress c = client(from);
    return answer(req, Visit{t.find(req.host, 0), c, false, UnreadBody::discard});
}

std::string field(const Response& r, const std::string& name)
{
    std::string key = "\r\n" + name + ": ";
    std::size_t at = r.head.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    return r.head.substr(at, r.head.find("\r\n", at) - at);
}

std::string content(const Response& r)
{
    std::string out = r.body;
    if (r.file && r.file_length) {
        std::string buf(r.file_length, '\0');
        cr_assert_eq(pread(r.file.get(), buf.data(), buf.size(), r.file_offset), ssize_t(buf.size()));
        out += buf;
    }
    return out;
}

std::string hash(const char* prefix, const char* password)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    cr_assert_not_null(crypt_gensalt_rn(prefix, 0, nullptr, 0, salt, sizeof salt));
    crypt_data data{};
    return crypt_r(password, salt, &data);
}

}  // namespace

TestSuite(http_rules, .init = setup, .fini = teardown, .timeout = 20);

Test(http_rules, hidden_paths_are_404_by_default_except_well_known)
{
    SiteTable t(spec().files);
    for (const char* hidden : {"/.git/config", "/.htpasswd", "/sub/.env", "/%2egit/config",
                               "/sub/%2Eenv", "/a/../.git/config", "/.git/"}) {
        Response r = ask(t, hidden);
        cr_expect_eq(r.status, 404, "GET %s: %d", hidden, r.status);
        cr_expect(r.refusal.find("hidden path") != std::string::npos, "GET %s: reason \"%s\"",
                  hidden, r.refusal.c_str());
        cr_expect(content(r).find("secret") == std::string::npos);
    }
    Response acme = ask(t, "/.well-known/acme-challenge/token");
    cr_expect_eq(acme.status, 200);
    cr_expect_eq(content(acme), "proof");
    cr_expect_eq(ask(t, "/a.txt").status, 200);
    cr_expect_eq(ask(t, "/").status, 200);
}

Test(http_rules, a_location_can_open_a_hidden_path)
{
    SiteSpec s = spec();
    LocationSpec git{"/.git/", {}};
    LocationSpec off{"/sub/", {}};
    off.rules.deny_hidden = false;
    s.locations = {git, off};
    SiteTable t({s});
    cr_expect_eq(ask(t, "/.git/config").status, 200);
    cr_expect_eq(ask(t, "/sub/.env").status, 200);
    cr_expect_eq(ask(t, "/.htpasswd").status, 404, "still hidden elsewhere");
}

Test(http_rules, headers_reach_every_response_errors_included)
{
    SiteSpec s = spec();
    s.rules.headers = std::vector<std::string>{"Strict-Transport-Security: max-age=63072000",
                                               "X-Frame-Options:DENY"};
    SiteTable t({s});
    for (const char* target : {"/a.txt", "/missing", "/.git/config"}) {
        Response r = ask(t, target);
        cr_expect_eq(field(r, "Strict-Transport-Security"), "max-age=63072000", "%s", target);
        cr_expect_eq(field(r, "X-Frame-Options"), "DENY", "%s", target);
        cr_expect(r.head.ends_with("\r\n\r\n") && r.head.find("\r\n\r\n") == r.head.size() - 4,
                  "the head is broken:\n%s", r.head.c_str());
    }
}

Test(http_rules, cache_fields_only_on_200_206_and_304)
{
    SiteSpec s = spec();
    LocationSpec stat{"/", {}};
    stat.rules.expires = Expiry{Expiry::Kind::seconds, 2592000};
    s.locations = {stat};
    SiteTable t({s});
    Response ok = ask(t, "/a.txt");
    cr_expect_eq(field(ok, "Cache-Control"), "max-age=2592000");
    cr_expect_neq(field(ok, "Expires"), "");
    Response part = ask(t, "/a.txt", "Range: bytes=0-0\r\n");
    cr_expect_eq(part.status, 206);
    cr_expect_eq(field(part, "Cache-Control"), "max-age=2592000");
    Response same = ask(t, "/a.txt", "If-None-Match: " + field(ok, "ETag") + "\r\n");
    cr_expect_eq(same.status, 304);
    cr_expect_eq(field(same, "Cache-Control"), "max-age=2592000");
    Response missing = ask(t, "/missing");
    cr_expect_eq(field(missing, "Cache-Control"), "");
    cr_expect_eq(field(missing, "Expires"), "");

    SiteSpec cc = spec();
    cc.rules.cache_control = "public, max-age=600";
    SiteTable t2({cc});
    cr_expect_eq(field(ask(t2, "/a.txt"), "Cache-Control"), "public, max-age=600");
    cr_expect_eq(field(ask(t2, "/a.txt"), "Expires"), "");

    SiteSpec epoch = spec();
    epoch.rules.expires = Expiry{Expiry::Kind::epoch, 0};
    SiteTable t3({epoch});
    cr_expect_eq(field(ask(t3, "/a.txt"), "Expires"), "Thu, 01 Jan 1970 00:00:01 GMT");
    cr_expect_eq(field(ask(t3, "/a.txt"), "Cache-Control"), "no-cache");
    SiteSpec max = spec();
    max.rules.expires = Expiry{Expiry::Kind::max, 0};
    max.rules.cache_control = "public, immutable";
    SiteTable t4({max});
    cr_expect_eq(field(ask(t4, "/a.txt"), "Expires"), "Thu, 31 Dec 2037 23:55:55 GMT");
    cr_expect_eq(field(ask(t4, "/a.txt"), "Cache-Control"), "public, immutable",
                 "cache_control wins over what expires would say");
}

Test(http_rules, return_redirects_with_variables_and_refuses_without)
{
    SiteSpec s = spec();
    LocationSpec old{"= /old", {}};
    old.rules.ret = Return{301, "https://$host$request_uri"};
    LocationSpec moved{"/moved/", {}};
    moved.rules.ret = Return{308, "$scheme://new.example$uri"};
    LocationSpec gone{"/gone/", {}};
    gone.rules.ret = Return{410, ""};
    s.locations = {old, moved, gone};
    SiteTable t({s});
    Response r = ask(t, "/old?x=1");
    cr_expect_eq(r.status, 301);
    cr_expect_eq(field(r, "Location"), "https://test.example/old?x=1");
    Response m = ask(t, "/moved/a%20b/../c");
    cr_expect_eq(m.status, 308);
    cr_expect_eq(field(m, "Location"), "http://new.example/moved/c");
    Response g = ask(t, "/gone/x");
    cr_expect_eq(g.status, 410);
    cr_expect_eq(field(g, "Location"), "");
}

Test(http_rules, return_urls_cannot_carry_cr_or_lf)
{
    Request req;
    req.path = "/a";
    req.host = "h.example";
    std::string url = expand_return_url("https://$host/x y\r\nSet-Cookie: a=b\x80$uri", req,
                                        "/p\r\nq", "https");
    cr_expect_eq(url, "https://h.example/x%20y%0D%0ASet-Cookie:%20a=b%80/p%0D%0Aq");
}

Test(http_rules, allow_and_deny_decide_by_the_client_address)
{
    SiteSpec s = spec();
    LocationSpec priv{"/private/", {}};
    priv.rules.access = std::vector<AccessRule>{*parse_access_rule(false, "10.9.0.0/16"),
                                                *parse_access_rule(true, "10.0.0.0/8")};
    s.locations = {priv};
    SiteTable t({s});
    cr_expect_eq(ask(t, "/private/p.txt", "", "10.1.2.3").status, 200);
    Response denied = ask(t, "/private/p.txt", "", "10.9.1.1");
    cr_expect_eq(denied.status, 403);
    cr_expect(denied.refusal.find("allow/deny") != std::string::npos, "%s", denied.refusal.c_str());
    cr_expect_eq(ask(t, "/private/p.txt", "", "192.0.2.1").status, 403);
    cr_expect_eq(ask(t, "/a.txt", "", "192.0.2.1").status, 200, "other locations are open");
}

Test(http_rules, basic_auth_asks_checks_and_never_tells_the_password)
{
    SiteSpec s = spec();
    LocationSpec priv{"/private/", {}};
    BasicAuth auth;
    auth.realm = "Staff";
    auth.entries = {{"alice", hash("$2b$", "open sesame")}};
    priv.rules.auth = auth;
    s.locations = {priv};
    SiteTable t({s});
    Response none = ask(t, "/private/p.txt");
    cr_expect_eq(none.status, 401);
    cr_expect_eq(field(none, "WWW-Authenticate"), "Basic realm=\"Staff\", charset=\"UTF-8\"");
    // "alice:wrong" and "alice:open sesame" in base64
    Response wrong = ask(t, "/private/p.txt", "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n");
    cr_expect_eq(wrong.status, 401);
    cr_expect(wrong.refusal.find("\"alice\"") != std::string::npos, "%s", wrong.refusal.c_str());
    cr_expect(wrong.refusal.find("wrong") == std::string::npos ||
                  wrong.refusal.find("wrong password") != std::string::npos,
              "%s", wrong.refusal.c_str());
    Response ok = ask(t, "/private/p.txt", "Authorization: Basic YWxpY2U6b3BlbiBzZXNhbWU=\r\n");
    cr_expect_eq(ok.status, 200);
    cr_expect_eq(content(ok), "private");
}

Test(http_rules, error_pages_keep_the_status_and_cannot_loop)
{
    SiteSpec s = spec();
    s.rules.error_pages = std::vector<ErrorPage>{{{404}, "/errors/404.html"}, {{410}, "/errors/none.html"}};
    LocationSpec gone{"/gone/", {}};
    gone.rules.ret = Return{410, ""};
    s.locations = {gone};
    SiteTable t({s});
    Response r = ask(t, "/missing.html");
    cr_expect_eq(r.status, 404);
    cr_expect(r.head.starts_with("HTTP/1.1 404 Not Found\r\n"), "%s", r.head.c_str());
    cr_expect_eq(content(r), "<p>custom 404</p>");
    Response head = ask(t, "/missing.html", "", "127.0.0.1", "HEAD");
    cr_expect_eq(head.status, 404);
    cr_expect_eq(content(head), "");
    Response g = ask(t, "/gone/x");
    cr_expect_eq(g.status, 410, "a missing page leaves the plain error");
    cr_expect(content(g).find("410 Gone") != std::string::npos);

    // The page for 404 is itself missing: its own 404 is not given the
    // page again; the plain 404 goes out.
    s.rules.error_pages = std::vector<ErrorPage>{{{404}, "/errors/missing.html"}};
    SiteTable looping({s});
    Response l = ask(looping, "/missing.html");
    cr_expect_eq(l.status, 404);
    cr_expect(content(l).find("404 Not Found") != std::string::npos, "%s", content(l).c_str());
}

Test(http_rules, alias_serves_a_prefix_from_another_directory)
{
    SiteSpec s = spec();
    LocationSpec assets{"/static/", {}};
    assets.rules.alias = g_base + "/assets/";
    s.locations = {assets};
    SiteTable t({s});
    Response r = ask(t, "/static/logo.txt");
    cr_expect_eq(r.status, 200);
    cr_expect_eq(content(r), "logo");
    cr_expect_eq(ask(t, "/static/../a.txt").status, 200, "normalised out of the location");
    cr_expect_eq(ask(t, "/static/a.txt").status, 404);
    Response dir = ask(t, "/static/sub");
    cr_expect_eq(dir.status, 301);
    cr_expect_eq(field(dir, "Location"), "/static/sub/", "the redirect keeps the location's prefix");
    Response index = ask(t, "/static/sub/");
    cr_expect_eq(index.status, 200);
    cr_expect_eq(content(index), "sub index");
}

Test(http_rules, an_error_page_for_401_keeps_the_challenge)
{
    SiteSpec s = spec();
    s.rules.error_pages = std::vector<ErrorPage>{{{401, 403}, "/errors/403.html"}};
    LocationSpec priv{"/private/", {}};
    BasicAuth auth;
    auth.realm = "Staff";
    auth.entries = {{"alice", hash("$5$", "pw")}};
    priv.rules.auth = auth;
    s.locations = {priv};
    SiteTable t({s});
    Response r = ask(t, "/private/p.txt");
    cr_expect_eq(r.status, 401);
    cr_expect(r.head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "%s", r.head.c_str());
    cr_expect_eq(content(r), "<p>custom 403</p>");
    cr_expect_eq(field(r, "WWW-Authenticate"), "Basic realm=\"Staff\", charset=\"UTF-8\"");
}

Test(http_rules, refusals_from_the_file_system_carry_their_reason)
{
    SiteTable t(spec().files);
    fs::create_directory_symlink("/", g_base + "/root/out");
    Response out = ask(t, "/out/etc/hostname");
    cr_expect_eq(out.status, 403);
    cr_expect(out.refusal.find("outside the root") != std::string::npos, "%s", out.refusal.c_str());
    Response dir = ask(t, "/errors/");
    cr_expect_eq(dir.status, 403);
    cr_expect(dir.refusal.find("autoindex") != std::string::npos, "%s", dir.refusal.c_str());
    cr_expect_eq(ask(t, "/missing").refusal, "", "an ordinary 404 needs no reason");
    Response climb = ask(t, "/../../etc/passwd");
    cr_expect_eq(climb.status, 404);
    cr_expect(climb.refusal.find("outside the root") != std::string::npos, "%s",
              climb.refusal.c_str());
    cr_expect_eq(ask(t, "/errors/../a.txt").status, 200);
}
