// test_config_sites.cpp - sites and locations as an administrator writes
// them: what each site and location holds once loaded (inheritance
// resolved), and the exact "file:line: message" of each mistake the loader
// must catch before a client could meet it.
#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "preforkd/config.hpp"
#include "preforkd/config/values.hpp"
#include "test_config_helpers.hpp"

using namespace preforkd::config;
using namespace config_test;
namespace values = preforkd::config::values;

TestSuite(config_sites, .init = make_dir, .fini = remove_dir, .timeout = 10);

// --- version 1 and inheritance ----------------------------------------------------

Test(config_sites, http_root_alone_is_the_one_default_site)
{
    Config c = load("http = { root = \"/srv/www\"; autoindex = true; };\n"
                    "log = { access_log = \"off\"; access_format = \"common\"; };");
    cr_assert(c.sites.empty());
    std::vector<Site> sites = effective_sites(c);
    cr_assert_eq(sites.size(), 1u);
    cr_assert(sites[0].is_default && sites[0].names.empty() && sites[0].locations.empty());
    assert_text(sites[0].rules.root, "/srv/www");
    cr_assert(sites[0].rules.autoindex && sites[0].rules.deny_hidden);
    assert_text(sites[0].access_log, "off");
    cr_assert_eq(sites[0].access_format, AccessFormat::common);
}

Test(config_sites, sites_inherit_from_http_and_locations_from_their_site)
{
    Config c = load(R"(
http = { root = "/srv/default"; index = [ "home.html" ]; gzip_static = true; };
log = { access_log = "/var/log/all.log"; access_format = "combined_timing"; };
sites = (
  { names = [ "Example.ORG.", "www.example.org" ]; root = "htdocs"; default = true;
    headers = [ "Strict-Transport-Security: max-age=63072000" ];
    access_log = "example.log"; access_format = "json"; expires = "1h";
    locations = ( { path = "/static/"; expires = "30d"; autoindex = true; },
                  { path = "= /old"; return = ( 301, "https://example.org/new" ); },
                  { path = "/img/"; alias = "/srv/images"; } ); },
  { names = [ "*.example.net" ]; }
);)");
    cr_assert_eq(c.sites.size(), 2u);
    const Site& a = c.sites[0];
    cr_assert(a.names == (std::vector<std::string>{"example.org", "www.example.org"}));
    cr_assert(a.is_default);
    assert_text(a.rules.root, g_dir + "/htdocs");
    assert_text(a.access_log, g_dir + "/example.log");
    cr_assert_eq(a.access_format, AccessFormat::json);
    cr_assert(a.rules.index == std::vector<std::string>{"home.html"} && a.rules.gzip_static);
    cr_assert_eq(a.locations.size(), 3u);
    const Location& s = a.locations[0];
    assert_text(s.path, "/static/");
    cr_assert(!s.exact && s.rules.autoindex && !a.rules.autoindex);
    cr_assert_eq(s.rules.expires.seconds, 30 * 86400);
    cr_assert(s.rules.headers == a.rules.headers, "a location keeps its site's headers");
    assert_text(s.rules.root, g_dir + "/htdocs");
    cr_assert(a.locations[1].exact);
    assert_text(a.locations[1].path, "/old");
    cr_assert_eq(a.locations[1].rules.ret.status, 301);
    assert_text(a.locations[1].rules.ret.url, "https://example.org/new");
    cr_assert_eq(a.locations[1].rules.expires.seconds, 3600, "inherited from the site");
    assert_text(a.locations[2].rules.alias, "/srv/images");
    const Site& b = c.sites[1];
    cr_assert(!b.is_default && b.rules.headers.empty());
    assert_text(b.rules.root, "/srv/default");
    assert_text(b.access_log, "/var/log/all.log");
    cr_assert_eq(b.access_format, AccessFormat::combined_timing);
    cr_assert(effective_sites(c) == c.sites);
    cr_assert(load_string(dump(c), "dump", "/") == c, "-T output loads back equal");
}

Test(config_sites, a_site_may_answer_on_some_listeners_only)
{
    Config c = load("listen = ( \"*:8080\", \"unix:run/internal.sock\" );\n"
                    "sites = ( { names = [ \"a.test\" ]; listen = [ \"0.0.0.0:8080\" ]; },\n"
                    "          { names = [ \"b.test\" ]; listen = [ \"unix:run/internal.sock\" ]; } );");
    cr_assert(c.sites[0].listen == std::vector<std::string>{"*:8080"},
              "named as the top-level entry it is");
    cr_assert(c.sites[1].listen == std::vector<std::string>{"unix:" + g_dir + "/run/internal.sock"});
    assert_errors("listen = ( \"127.0.0.1:8080\" );\n"
                  "sites = ( { names = [ \"a.test\" ];\n  listen = [ \"127.0.0.1:9090\" ]; } );\n",
                  {"t.conf:3: sites.listen: \"127.0.0.1:9090\" is not one of the top-level "
                   "listen addresses"});
}

// --- names and defaults -------------------------------------------------------------

Test(config_sites, names_are_host_names_with_a_leading_wildcard_only)
{
    assert_errors("sites = ( { names = [\n  \"a.*.example\",\n  \"*x.example\",\n  \"a b\",\n"
                  "  \"\" ]; } );\n",
                  {"t.conf:2: sites.names: \"a.*.example\" is not a host name (letters, digits, "
                   "'-', dots; \"*.\" only as the first label)",
                   "t.conf:3: sites.names: \"*x.example\" is not a host name (letters, digits, "
                   "'-', dots; \"*.\" only as the first label)",
                   "t.conf:4: sites.names: \"a b\" is not a host name (letters, digits, "
                   "'-', dots; \"*.\" only as the first label)",
                   "t.conf:5: sites.names: \"\" is not a host name (letters, digits, "
                   "'-', dots; \"*.\" only as the first label)"});
    std::string why;
    cr_assert(values::server_name("[::1]", why) == std::string("[::1]"));
    cr_assert(values::server_name("127.0.0.1", why) == std::string("127.0.0.1"));
    cr_assert(values::server_name("*.Example.NET.", why) == std::string("*.example.net"));
}

Test(config_sites, a_name_belongs_to_one_site_and_one_site_is_the_default)
{
    assert_errors("sites = (\n  { names = [ \"a.test\" ]; default = true; },\n"
                  "  { names = [ \"A.test.\" ];\n    default = true; }\n);\n",
                  {"t.conf:3: sites.names: \"a.test\" is already a name of the site at t.conf:2",
                   "t.conf:4: sites.default: only one site may be the default; the first is at "
                   "t.conf:2"});
}

// --- rules --------------------------------------------------------------------------

Test(config_sites, header_lines_are_checked_against_field_syntax)
{
    assert_errors("sites = ( { headers = [\n  \"X-Frame-Options: DENY\",\n  \"Bad Name: x\",\n"
                  "  \"X-A: b\\r\\nSet-Cookie: evil=1\",\n  \"no colon\",\n"
                  "  \"content-length: 5\" ]; } );\n",
                  {"t.conf:3: sites.headers: \"Bad Name: x\" has a field name that is not a "
                   "token (no spaces before the colon)",
                   "t.conf:4: sites.headers: \"X-A: b\r\nSet-Cookie: evil=1\" must not hold "
                   "control characters (CR, LF, NUL ...)",
                   "t.conf:5: sites.headers: \"no colon\" must be \"Name: value\"",
                   "t.conf:6: sites.headers: \"content-length: 5\" sets content-length, which "
                   "the server itself sends"});
    assert_text(values::header_problem("Content-Security-Policy: default-src 'self'"), "");
    assert_text(values::header_problem("X-Tab:\tvalue"), "");
}

Test(config_sites, return_takes_a_url_for_redirects_and_none_for_refusals)
{
    Config c = load("sites = ( { return = ( 302, \"https://$host$request_uri\" );\n"
                    "  locations = ( { path = \"/gone/\"; return = ( 410 ); },\n"
                    "                { path = \"/open/\"; return = ( ); } ); } );");
    cr_assert(c.sites[0].rules.ret == (Return{302, "https://$host$request_uri"}));
    cr_assert(c.sites[0].locations[0].rules.ret == (Return{410, ""}));
    cr_assert(c.sites[0].locations[1].rules.ret == Return{}, "( ) drops the site's return");
    std::string usage = " must be ( 301, \"URL\" ) with 301, 302, 307 or 308, or ( 403 ), "
                        "( 404 ) or ( 410 )";
    assert_errors("sites = ( { locations = (\n  { path = \"/a\"; return = ( 301 ); },\n"
                  "  { path = \"/b\"; return = ( 404, \"/x\" ); },\n"
                  "  { path = \"/c\"; return = ( 200, \"/x\" ); },\n"
                  "  { path = \"/d\"; return = ( 308, \"https://a b\" ); } ); } );\n",
                  {"t.conf:2: locations.return" + usage, "t.conf:3: locations.return" + usage,
                   "t.conf:4: locations.return" + usage,
                   "t.conf:5: locations.return: the URL must be a string without spaces or "
                   "control characters"});
}

Test(config_sites, allow_and_deny_take_addresses_and_networks)
{
    Config c = load("sites = ( { allow = [ \"10.0.0.0/8\", \"::1\", \"2001:db8::/32\" ];\n"
                    "  deny = [ \"all\" ]; } );");
    const Rules& r = c.sites[0].rules;
    cr_assert_eq(r.allow.size(), 3u);
    cr_assert(r.allow[0].family == Cidr::Family::v4 && r.allow[0].prefix == 8);
    cr_assert_eq(r.allow[0].bytes[0], 10);
    cr_assert(r.allow[1].family == Cidr::Family::v6 && r.allow[1].prefix == 128);
    cr_assert_eq(r.allow[1].bytes[15], 1);
    cr_assert(r.deny[0].family == Cidr::Family::any);
    assert_errors("sites = ( { deny = [\n  \"10.0.0.1/8\",\n  \"::1/129\",\n  \"300.1.1.1\",\n"
                  "  \"10.0.0.0/\" ]; } );\n",
                  {"t.conf:2: sites.deny: \"10.0.0.1/8\" has host bits set below the /8",
                   "t.conf:3: sites.deny: \"::1/129\" needs a prefix length from 0 to 128",
                   "t.conf:4: sites.deny: \"300.1.1.1\" is not an IPv4 or IPv6 address",
                   "t.conf:5: sites.deny: \"10.0.0.0/\" needs a prefix length from 0 to 32"});
}

Test(config_sites, expires_takes_times_with_units_or_a_word)
{
    std::string why;
    auto seconds = [&](const char* text) {
        auto e = values::parse_expires(text, why);
        return e && e->kind == Expires::Kind::seconds ? e->seconds : -1;
    };
    cr_assert_eq(seconds("600"), 600);
    cr_assert_eq(seconds("600s"), 600);
    cr_assert_eq(seconds("15m"), 900);
    cr_assert_eq(seconds("12h"), 43200);
    cr_assert_eq(seconds("30d"), 2592000);
    cr_assert_eq(seconds("1y"), 365 * 86400);
    cr_assert(values::parse_expires("max", why)->kind == Expires::Kind::max);
    cr_assert(values::parse_expires("epoch", why)->kind == Expires::Kind::epoch);
    cr_assert(values::parse_expires("off", why)->kind == Expires::Kind::off);
    assert_text(values::expires_text({Expires::Kind::seconds, 2592000}), "30d");
    assert_text(values::expires_text({Expires::Kind::seconds, 90}), "90");
    assert_errors("sites = ( {\n  expires = \"30x\";\n  locations = ( { path = \"/\";\n"
                  "    expires = \"-1\"; } ); } );\n",
                  {"t.conf:2: sites.expires must be \"off\", \"epoch\", \"max\" or a time like "
                   "\"600\", \"12h\", \"30d\" (at most ten years)",
                   "t.conf:4: locations.expires must be \"off\", \"epoch\", \"max\" or a time "
                   "like \"600\", \"12h\", \"30d\" (at most ten years)"});
}

Test(config_sites, error_pages_name_error_statuses_and_a_path)
{
    Config c = load("sites = ( { error_page = ( { status = [ 404, 410 ]; page = \"/e/404.html\"; },\n"
                    "  { status = 500; page = \"/e/500.html\"; } ); } );");
    const auto& pages = c.sites[0].rules.error_pages;
    cr_assert_eq(pages.size(), 2u);
    cr_assert(pages[0].status == (std::vector<int>{404, 410}));
    assert_text(pages[1].page, "/e/500.html");
    assert_errors("sites = ( { error_page = (\n  { status = [ 200 ]; page = \"/a\"; },\n"
                  "  { status = [ 404 ];\n    page = \"a.html\"; },\n  { page = \"/a\"; } ); } );\n",
                  {"t.conf:2: sites.error_page.status must be error statuses from 400 to 599",
                   "t.conf:4: sites.error_page.page must be a path in the site, like "
                   "\"/404.html\"",
                   "t.conf:5: sites.error_page entries need status = [ ... ]; and page = "
                   "\"/...\";"});
}

Test(config_sites, locations_need_a_path_once_per_site)
{
    assert_errors("sites = ( { locations = (\n  { path = \"static\"; },\n  { expires = \"1h\"; },\n"
                  "  { path = \"/a/\"; },\n  { path = \"/a/\"; } ); } );\n",
                  {"t.conf:2: locations.path must be \"/prefix/\" or \"= /exact\" (a path "
                   "starting with '/', no spaces)",
                   "t.conf:3: locations.path must be set: path = \"/prefix/\"; or \"= /exact\"",
                   "t.conf:5: locations.path \"/a/\" is already a location of this site"});
    Location l;
    std::string why;
    cr_assert(values::parse_location_path("=/healthz", l, why) && l.exact && l.path == "/healthz");
    assert_text(values::location_path_text(l), "= /healthz");
}

Test(config_sites, unknown_keys_in_sites_and_locations_get_hints)
{
    assert_errors("sites = ( {\n  rot = \"/srv\";\n  alias = \"/x\";\n"
                  "  locations = ( { path = \"/\";\n    names = [ \"a\" ];\n    expire = \"1h\"; } ); } );\n",
                  {"t.conf:2: unknown key 'sites.rot' (did you mean 'sites.root'?)",
                   "t.conf:3: unknown key 'sites.alias' (did you mean 'locations.alias'?)",
                   "t.conf:5: unknown key 'locations.names' (did you mean 'sites.names'?)",
                   "t.conf:6: unknown key 'locations.expire' (did you mean 'locations.expires'?)"});
    assert_errors("sites = { root = \"/srv\"; };\n",
                  {"t.conf:1: sites must be a list of groups: sites = ( { names = [ ... ]; ... } );"});
}

Test(config_sites, access_formats_and_realms)
{
    Config c = load("log = { access_format = \"json\"; };\n"
                    "sites = ( { auth_basic = \"Admins only\"; auth_basic_file = \"htpasswd\"; } );");
    cr_assert_eq(c.log.access_format, AccessFormat::json);
    cr_assert_eq(c.sites[0].access_format, AccessFormat::json);
    assert_text(c.sites[0].rules.auth_basic_file, g_dir + "/htpasswd");
    assert_errors("sites = ( {\n  auth_basic = \"a\\\"b\";\n  access_format = \"xml\";\n"
                  "  cache_control = \"a\\nb\"; } );\n",
                  {"t.conf:2: sites.auth_basic must not hold quotes, backslashes or control "
                   "characters",
                   "t.conf:3: sites.access_format must be one of common, combined, "
                   "combined_timing, json, combined_tls",
                   "t.conf:4: sites.cache_control must not hold control characters"});
}

Test(config_sites, a_realm_needs_a_password_file)
{
    Config c = load("sites = ( { auth_basic = \"A\"; auth_basic_file = \"/etc/pw\";\n"
                    "  locations = ( { path = \"/open/\"; auth_basic = \"\"; } ); } );");
    assert_text(c.sites[0].locations[0].rules.auth_basic, "");
    assert_errors("sites = ( {\n  auth_basic = \"A\"; },\n  { locations = ( { path = \"/\";\n"
                  "    auth_basic = \"B\"; } ); } );\n",
                  {"t.conf:2: sites.auth_basic needs an auth_basic_file",
                   "t.conf:4: locations.auth_basic needs an auth_basic_file"});
}

Test(config_sites, check_environment_looks_at_every_root_and_password_file_once)
{
    write_file(g_dir + "/mime.types", "text/html html\n");
    Config c = load("http = { mime_types = \"mime.types\"; root = \"nope\"; };\n"
                    "log = { access_log = \"off\"; };\n"
                    "sites = ( { names = [ \"a.test\" ]; root = \"missing\";\n"
                    "            auth_basic = \"A\"; auth_basic_file = \"pw\"; },\n"
                    "          { names = [ \"b.test\" ]; root = \"missing\";\n"
                    "            locations = ( { path = \"/x/\"; alias = \"" + g_dir + "\"; } ); } );");
    assert_text(joined(check_environment(c)),
                joined({"sites.root \"" + g_dir + "/missing\": No such file or directory",
                        "sites.auth_basic_file \"" + g_dir + "/pw\": No such file or directory"}));
}

Test(config_sites, a_location_may_be_a_status_page)
{
    Config c = load("sites = ( { locations = (\n"
                    "  { path = \"= /server-status\"; status = \"auto\"; allow = [ \"127.0.0.1\" ]; },\n"
                    "  { path = \"/files/\"; } ); } );");
    assert_text(c.sites[0].locations[0].rules.status, "auto");
    assert_text(c.sites[0].locations[1].rules.status, "off");
    assert_contains(dump(c), "status = \"auto\";");
    cr_assert(load_string(dump(c), "dump", "/") == c, "-T output loads back equal");
    assert_errors("sites = ( { locations = (\n  { path = \"/s\";\n    status = \"html\"; } ); },\n"
                  "  { status = \"text\"; } );\n",
                  {"t.conf:3: locations.status must be one of off, text, json, auto",
                   "t.conf:4: unknown key 'sites.status' (did you mean 'locations.status'?)"});
}
