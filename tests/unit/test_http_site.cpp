// test_http_site.cpp - which site and which location answer a request.
//
// The tables are compiled from specs as the master would build them from a
// configuration; the checks are the administrator's expectations from
// nginx: exact name, then the longest wildcard, then the default site;
// exact location, then the longest prefix.
#include <criterion/criterion.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "preforkd/http/site.hpp"

using namespace preforkd::http;

namespace {

SiteSpec site(const std::string& name, std::vector<std::string> names, bool is_default = false)
{
    SiteSpec s;
    s.name = name;
    s.names = std::move(names);
    s.is_default = is_default;
    s.files.root = "/srv/" + name;
    return s;
}

std::string found(const SiteTable& t, const char* host, int listener = 0)
{
    return t.find(host, listener).name;
}

std::string compile_error(const std::vector<SiteSpec>& specs)
{
    try {
        SiteTable t(specs);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

}  // namespace

Test(http_site, one_site_answers_every_host_and_listener)
{
    Site files;
    files.root = "/srv/www";
    SiteTable t(files);
    cr_expect_eq(t.find("anything.example", 0).defaults.files.root, "/srv/www");
    cr_expect_eq(&t.find("", 3), &t.default_site());
}

Test(http_site, exact_names_ignore_case_port_and_trailing_dot)
{
    SiteTable t({site("first", {"first.example"}), site("org", {"example.org", "www.example.org"})});
    cr_expect_eq(found(t, "example.org"), "org");
    cr_expect_eq(found(t, "WWW.Example.ORG"), "org");
    cr_expect_eq(found(t, "www.example.org:8080"), "org");
    cr_expect_eq(found(t, "www.example.org."), "org");
    cr_expect_eq(found(t, "www.example.org.:80"), "org");
    SiteTable ips({site("first", {"first.example"}), site("v6", {"[2001:DB8::1]", "192.0.2.1"})});
    cr_expect_eq(found(ips, "[2001:db8::1]:8080"), "v6");
    cr_expect_eq(found(ips, "192.0.2.1:80"), "v6");
}

Test(http_site, longest_wildcard_wins_and_exact_beats_wildcard)
{
    SiteTable t({site("default", {"default.example"}), site("net", {"*.example.net"}),
                 site("deep", {"*.a.example.net"}), site("www", {"www.a.example.net"})});
    cr_expect_eq(found(t, "x.example.net"), "net");
    cr_expect_eq(found(t, "x.a.example.net"), "deep");
    cr_expect_eq(found(t, "y.x.a.example.net"), "deep");
    cr_expect_eq(found(t, "a.example.net"), "net");
    cr_expect_eq(found(t, "www.a.example.net"), "www");
    // "*.example.net" is for subdomains, as in nginx: not the bare domain.
    cr_expect_eq(found(t, "example.net"), "default");
}

Test(http_site, unknown_names_go_to_the_marked_default_else_the_first)
{
    SiteTable first({site("a", {"a.example"}), site("b", {"b.example"})});
    cr_expect_eq(found(first, "nobody.example"), "a");
    cr_expect_eq(found(first, ""), "a", "an HTTP/1.0 request without Host");
    SiteTable marked({site("a", {"a.example"}), site("b", {"b.example"}, true)});
    cr_expect_eq(found(marked, "nobody.example"), "b");
    cr_expect_eq(found(marked, "[::1]:8080"), "b");
}

Test(http_site, a_site_bound_to_a_listener_answers_only_there)
{
    SiteSpec internal = site("internal", {"status.example", "*.internal.example"});
    internal.listeners = {1};
    SiteTable t({site("public", {"www.example"}), internal});
    cr_expect_eq(found(t, "status.example", 1), "internal");
    cr_expect_eq(found(t, "x.internal.example", 1), "internal");
    cr_expect_eq(found(t, "status.example", 0), "public", "not on the public listener");
    cr_expect_eq(found(t, "x.internal.example", 0), "public");
    cr_expect_eq(found(t, "www.example", 1), "public", "unbound sites answer everywhere");
}

Test(http_site, the_default_of_a_listener_is_a_site_that_answers_on_it)
{
    SiteSpec pub = site("public", {"www.example"}, true);
    pub.listeners = {0};
    SiteSpec internal = site("internal", {"status.example"});
    internal.listeners = {1};
    SiteTable t({pub, internal});
    cr_expect_eq(found(t, "unknown", 0), "public");
    cr_expect_eq(found(t, "unknown", 1), "internal");
}

Test(http_site, same_name_on_two_listeners)
{
    SiteSpec a = site("outside", {"app.example"});
    a.listeners = {0};
    SiteSpec b = site("inside", {"app.example"});
    b.listeners = {1};
    SiteTable t({a, b});
    cr_expect_eq(found(t, "app.example", 0), "outside");
    cr_expect_eq(found(t, "app.example", 1), "inside");
}

Test(http_site, exact_location_then_longest_prefix_then_the_site)
{
    SiteSpec s = site("s", {"s.example"});
    s.rules.cache_control = "site";
    LocationSpec health{"= /healthz", {}};
    health.rules.cache_control = "health";
    LocationSpec stat{"/static/", {}};
    stat.rules.cache_control = "static";
    LocationSpec img{"/static/img/", {}};
    img.rules.cache_control = "img";
    s.locations = {stat, health, img};
    SiteTable t({s});
    const VirtualSite& v = t.find("s.example", 0);
    cr_expect_eq(v.locate("/healthz").cache_control, "health");
    cr_expect_eq(v.locate("/healthz/x").cache_control, "site", "= is exact");
    cr_expect_eq(v.locate("/static/a.css").cache_control, "static");
    cr_expect_eq(v.locate("/static/img/a.png").cache_control, "img");
    cr_expect_eq(v.locate("/static").cache_control, "site");
    cr_expect_eq(v.locate("/").cache_control, "site");
}

Test(http_site, locations_inherit_what_they_do_not_set)
{
    SiteSpec s = site("s", {"s.example"});
    s.rules.headers = std::vector<std::string>{"Strict-Transport-Security: max-age=63072000"};
    s.rules.deny_hidden = false;
    s.files.index = {"index.html"};
    LocationSpec docs{"/docs/", {}};
    docs.rules.autoindex = true;
    docs.rules.root = "/srv/docs/";
    s.locations = {docs};
    SiteTable t({s});
    const Policy& p = t.find("s.example", 0).locate("/docs/a");
    cr_expect_eq(p.headers, "Strict-Transport-Security: max-age=63072000\r\n");
    cr_expect(!p.deny_hidden);
    cr_expect(p.files.autoindex);
    cr_expect_eq(p.files.root, "/srv/docs");
    cr_expect_eq(p.files.index.size(), 1u);
    const Policy& top = t.find("s.example", 0).locate("/");
    cr_expect(!top.files.autoindex);
    cr_expect_eq(top.files.root, "/srv/s");
}

Test(http_site, plain_policies_take_the_fast_path)
{
    SiteTable t(Site{});
    cr_expect(t.default_site().defaults.plain());
    SiteSpec s = site("s", {"s.example"});
    s.rules.expires = Expiry{Expiry::Kind::seconds, 600};
    SiteTable rules({s});
    cr_expect(!rules.default_site().defaults.plain());
    cr_expect_eq(rules.default_site().defaults.cache_control, "max-age=600");
}

Test(http_site, every_problem_is_reported_at_once)
{
    SiteSpec bad = site("bad", {"ok.example", "bad name", "*.*.example", "a:80", "[::1]:80"});
    bad.rules.headers = std::vector<std::string>{"X-Ok: 1", "Bad Header: x", "X-CRLF: a\r\nSet-Cookie: b"};
    bad.rules.ret = Return{200, ""};
    LocationSpec rel{"static/", {}};
    LocationSpec twice{"/a/", {}};
    LocationSpec redirect_without_url{"/r/", {}};
    redirect_without_url.rules.ret = Return{301, ""};
    bad.locations = {rel, twice, twice, redirect_without_url};
    SiteSpec second = site("second", {"second.example"}, true);
    SiteSpec third = site("third", {"third.example"}, true);
    std::string e = compile_error({bad, second, third});
    for (const char* want : {"\"bad name\"", "\"*.*.example\"", "\"a:80\"", "\"[::1]:80\"", "Bad Header",
                             "X-CRLF", "return status 200", "\"static/\"", "\"/a/\" is given twice",
                             "return 301 needs a URL", "a second default site"})
        cr_expect(e.find(want) != std::string::npos, "no \"%s\" in:\n%s", want, e.c_str());
    cr_expect(e.find("X-Ok") == std::string::npos, "a good header reported:\n%s", e.c_str());
    cr_expect(compile_error({}).find("no sites") != std::string::npos);
}

Test(http_site, hundreds_of_sites_are_found_by_name)
{
    std::vector<SiteSpec> specs;
    for (int i = 0; i < 200; ++i) {
        SiteSpec s = site("s" + std::to_string(i), {"site" + std::to_string(i) + ".example",
                                                  "*.w" + std::to_string(i) + ".example"});
        for (int l = 0; l < 20; ++l) s.locations.push_back({"/p" + std::to_string(l) + "/", {}});
        specs.push_back(s);
    }
    SiteTable t(specs);
    cr_expect_eq(found(t, "site137.example"), "s137");
    cr_expect_eq(found(t, "a.b.w199.example"), "s199");
    cr_expect_eq(found(t, "none.example"), "s0");
}
