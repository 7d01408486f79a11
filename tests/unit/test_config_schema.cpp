// test_config_schema.cpp - every key of the key table, read and printed.
//
// The tests walk the table itself, so a key added tomorrow is covered
// without a line here: each key is written with a value that differs from
// its default (the first of a list of candidates that loads and changes the
// configuration), and must then come back equal through dump -> load.  A key
// the loader ignores finds no candidate; a key the dump forgets comes back
// with its default; both fail, naming the key.
#include <criterion/criterion.h>

#include <set>
#include <string>
#include <vector>

#include "preforkd/config.hpp"
#include "preforkd/config/schema.hpp"
#include "test_config_helpers.hpp"

using namespace preforkd::config;
using namespace config_test;
namespace schema = preforkd::config::schema;

namespace {

// Values of every kind, tried in order.  They need not suit every key: a
// candidate a key refuses is skipped.
const char* const kCandidates[] = {
    "true", "false", "0", "1", "7", "600", "3600", "1024", "5000000000L",
    "\"other\"", "\"common\"", "\"json\"", "\"debug\"", "\"local3\"", "\"0600\"",
    "\"/srv/test\"", "\"text/x-test\"", "\"30d\"",
    "[ \"a.html\", \"b.html\" ]",
    "( \"127.0.0.1:8080\", \"unix:/run/t.sock\" )",
    "[ \"127.0.0.2:80\" ]",
    "[ \"X-Test: 1\", \"Strict-Transport-Security: max-age=600\" ]",
    "[ \"10.0.0.0/8\", \"::1\", \"all\" ]",
    "[ \"TLSv1.3\" ]",
    "( 301, \"https://$host$request_uri\" )",
    "( { status = [ 404, 410 ]; page = \"/errors/404.html\"; } )",
    "( { path = \"/s/\"; expires = \"1h\"; }, { path = \"= /x\"; return = ( 410 ); } )",
    "( { names = [ \"t.example\" ]; } )",
    "{ certificate = \"/etc/ssl/t.pem\"; key = \"/etc/ssl/t.key\"; }",
};

// Where a site or location key is tried: a site (and a location) on the
// listeners a site's `listen` candidate names.
const std::string kListen = "listen = ( \"127.0.0.1:80\", \"127.0.0.2:80\" );\n";

// What every tried site writes, so that keys that need a partner (a realm
// needs a password file) can be tried alone; the key tried replaces its own.
const std::pair<const char*, const char*> kSiteBase[] = {
    {"names", "[ \"base.test\" ]"}, {"auth_basic_file", "\"/etc/preforkd/htpasswd\""}};

std::string in_site(const std::string& body, const std::string& tried = "")
{
    std::string base;
    for (auto [name, value] : kSiteBase)
        if (name != tried)
            base += std::string(name) + " = " + value + "; ";
    return kListen + "sites = ( { " + base + body + " } );\n";
}

std::string in_location(const std::string& body)
{
    return in_site("locations = ( { " + body + " } );");
}

// The text that sets key `k` to `value`, in `scope`.
std::string setting(const schema::Key& k, unsigned scope, const std::string& value)
{
    std::string line = std::string(k.name) + " = " + value + ";";
    if (scope == schema::location)
        return in_location(k.kind == schema::Kind::location_path ? line
                                                                 : "path = \"/base/\"; " + line);
    if (scope == schema::site)
        return in_site(line, std::string(k.name));
    return k.group.empty() ? line + "\n" : std::string(k.group) + " = { " + line + " };\n";
}

std::string baseline(unsigned scope)
{
    if (scope == schema::location)
        return in_location("path = \"/base/\";");
    return scope == schema::site ? in_site("") : "";
}

// Loads `text`; false if it is refused.
bool try_load(const std::string& text, Config& out)
{
    try {
        out = load_string(text, "t.conf", "/etc/preforkd");
        return true;
    } catch (const ConfigError&) {
        return false;
    }
}

void assert_round_trip(const schema::Key& k, unsigned scope)
{
    Config base;
    cr_assert(try_load(baseline(scope), base));
    std::string name = schema::dotted(k.group, k.name);
    for (const char* value : kCandidates) {
        Config changed;
        if (!try_load(setting(k, scope, value), changed) || changed == base)
            continue;
        std::string text = dump(changed);
        Config again;
        cr_assert(try_load(text, again), "%s = %s: the dump does not load:\n%s", name.c_str(),
                  value, text.c_str());
        cr_expect(again == changed, "%s = %s does not survive dump -> load:\n%s", name.c_str(),
                  value, text.c_str());
        return;
    }
    cr_expect_fail("%s (scope %u): no value changes the configuration; is it loaded?",
                   name.c_str(), scope);
}

}  // namespace

TestSuite(config_schema, .init = make_dir, .fini = remove_dir, .timeout = 30);

Test(config_schema, every_key_survives_dump_and_load_with_a_value_not_its_default)
{
    std::size_t tried = 0;
    for (const schema::Key& k : schema::keys()) {
        // Groups are their keys; include is merged by the loader and never
        // printed (its own suite checks it).
        if (k.kind == schema::Kind::group || k.kind == schema::Kind::include)
            continue;
        for (unsigned scope : {unsigned(schema::global), unsigned(schema::site),
                               unsigned(schema::location)}) {
            if ((k.scope & scope) != 0) {
                assert_round_trip(k, scope);
                ++tried;
            }
        }
    }
    cr_assert_geq(tried, 70u, "the key table shrank to %zu settings", tried);
}

Test(config_schema, dump_of_defaults_names_every_global_key_once)
{
    std::string text = dump(Config{});
    for (const schema::Key& k : schema::keys()) {
        if (k.scope != schema::global || k.kind == schema::Kind::include)
            continue;
        std::string line = (k.group.empty() ? "\n" : "\n  ") + std::string(k.name) + " = ";
        std::size_t at = text.find(line);
        cr_expect(at != std::string::npos, "dump has no \"%s\"", line.c_str() + 1);
        cr_expect(at == std::string::npos || text.find(line, at + 1) == std::string::npos,
                  "dump names \"%s\" twice", line.c_str() + 1);
    }
    cr_assert(load_string(text, "dump", "/") == Config{});
}

Test(config_schema, dump_of_a_site_names_every_site_and_location_key)
{
    Config c = load(in_location("path = \"/base/\";"));
    std::string text = dump(c);
    for (const schema::Key& k : schema::keys()) {
        if (k.scope == schema::global)
            continue;
        std::string pad = (k.scope & schema::site) ? "\n    " : "\n        ";
        assert_contains(text, pad + std::string(k.name) + " = ");
    }
}

Test(config_schema, known_keys_come_from_the_table)
{
    std::vector<std::string> keys = known_keys();
    std::set<std::string> unique(keys.begin(), keys.end());
    cr_assert_eq(unique.size(), keys.size(), "known_keys() lists a key twice");
    for (const char* k : {"include", "sites", "http.header_min_rate", "sites.names",
                          "sites.headers", "sites.return", "locations.path", "locations.alias"})
        cr_expect(unique.count(k), "known_keys() lacks %s", k);
    for (const char* group : {"workers", "http", "log"})
        cr_expect(!unique.count(group), "known_keys() lists the group %s", group);
}

Test(config_schema, descriptors_have_docs_and_sane_ranges)
{
    for (const schema::Key& k : schema::keys()) {
        std::string name = schema::dotted(k.group, k.name);
        cr_expect(!k.doc.empty(), "%s has no doc line", name.c_str());
        if (k.kind == schema::Kind::integer)
            cr_expect(k.lo < k.hi, "%s has an empty range", name.c_str());
        if (k.kind == schema::Kind::choice)
            cr_expect(!k.choices.empty(), "%s has no choices", name.c_str());
    }
}

Test(config_schema, a_checked_dump_loads_as_the_file_it_came_from)
{
    std::string path = g_dir + "/preforkd.conf";
    write_file(path, in_location("path = \"/base/\"; expires = \"12h\";") +
                         "http = { root = \"www\"; };\n");
    Config checked = load_file(path);
    std::string text = dump(checked);
    // The file changes after the check: the master must not see the change.
    write_file(path, "workers = { max = 0; };\n");
    Config loaded = load_checked(text, path);
    cr_assert(loaded == checked);
    assert_text(loaded.file, path);
    assert_text(loaded.http.root, g_dir + "/www");
}

// The dump a reload loads puts every setting on a line of its own, so the
// positions in messages ("the key does not match the certificate") would
// name the dump's lines; they travel beside it and name the file's.
Test(config_schema, a_checked_dump_keeps_the_positions_of_the_file)
{
    std::string path = g_dir + "/preforkd.conf";
    write_file(path, "http = { root = \"www\"; };\n"
                     "tls = {\n"
                     "  ticket_key_file = \"/etc/keys/tickets\";\n"
                     "};\n"
                     "sites = (\n"
                     "  { names = [ \"a.test\" ]; default = true; },\n"
                     "  { names = [ \"b.test\" ];\n"
                     "    tls = { certificate = \"/etc/b.pem\"; key = \"/etc/b.key\"; }; }\n"
                     ");\n");
    Config checked = load_file(path);
    assert_text(checked.tls.ticket_key_file_where, path + ":3");
    assert_text(checked.sites.at(1).tls.where, path + ":8");
    Config loaded = load_checked(dump_for_reload(checked), path);
    cr_assert(loaded == checked);
    assert_text(loaded.tls.ticket_key_file_where, path + ":3");
    assert_text(loaded.sites.at(1).tls.where, path + ":8");
    cr_assert(loaded.sites.at(0).tls.where.empty(), "a site without tls got a position");
}

Test(config_schema, a_reload_keeps_the_keys_it_cannot_apply)
{
    Config running = load("pid_file = \"/run/a.pid\"; workers = { max = 4; };");
    Config next = load("pid_file = \"/run/b.pid\"; workers = { max = 8; };");
    std::vector<std::string> kept = keep_until_restart(running, next);
    cr_assert_eq(kept.size(), 1u);
    assert_text(kept[0], "pid_file changes take effect at the next start; keeping /run/a.pid");
    assert_text(next.pid_file, "/run/a.pid");
    cr_assert_eq(next.workers.max, 8, "what a reload applies is left alone");
    cr_assert(keep_until_restart(running, next).empty());
}
