// test_tls_context.cpp - the checks of tls::build() and tls::check(), with
// certificates made at test time by tests/integration/make_certs.sh (the
// openssl command): a good site, a key of another certificate, a missing
// file, an expired certificate (the check's clock moved a year on), a chain
// whose second certificate did not sign the first, the 14-day warning, a key
// readable by everyone, and a TLS listener whose default site has no
// certificate.
#include <criterion/criterion.h>

#include <cstdlib>
#include <ctime>
#include <stdexcept>
#include <sys/stat.h>

#include "preforkd/config.hpp"
#include "preforkd/tls/context.hpp"
#include "test_config_helpers.hpp"

using namespace preforkd;
using namespace config_test;

namespace {

std::string source_dir()
{
    const char* dir = std::getenv("PREFORKD_SRCDIR");
    return dir && *dir ? dir : ".";
}

void make_certs()
{
    make_dir();
    std::string command = "sh '" + source_dir() + "/tests/integration/make_certs.sh' '" + g_dir + "'";
    cr_assert_eq(std::system(command.c_str()), 0, "%s failed", command.c_str());
}

// One site with `cert` and `key` (files of g_dir), loaded from a file so
// that messages name it.
config::Config site_with(const std::string& cert, const std::string& key)
{
    std::string path = g_dir + "/t.conf";
    write_file(path, "sites = ( { names = [ \"a.test\" ];\n"
                     "  tls = { certificate = \"" + cert + "\"; key = \"" + key + "\"; }; } );\n");
    return config::load_file(path);
}

std::string problems(const tls::Report& r)
{
    return joined(r.problems);
}

}  // namespace

TestSuite(tls_context, .init = make_certs, .fini = remove_dir, .timeout = 60);

Test(tls_context, a_good_site_builds_and_has_its_certificate)
{
    config::Config c = site_with("a.pem", "a.key");
    tls::Report r = tls::check(c);
    cr_assert(r.problems.empty(), "%s", problems(r).c_str());
    cr_assert_eq(r.certificates.size(), 1u);
    assert_contains(r.certificates[0], "names a.test");
    tls::Contexts built = tls::build(c);
    cr_assert_not_null(built.for_site(0));
    cr_assert_null(built.for_site(1));
}

Test(tls_context, a_full_chain_from_a_private_ca_is_accepted)
{
    tls::Report r = tls::check(site_with("a-full.pem", "a.key"));
    cr_assert(r.problems.empty(), "%s", problems(r).c_str());
}

Test(tls_context, a_key_of_another_certificate_is_refused_with_file_and_line)
{
    tls::Report r = tls::check(site_with("a.pem", "b.key"));
    cr_assert_eq(r.problems.size(), 1u, "%s", problems(r).c_str());
    assert_contains(r.problems[0], g_dir + "/t.conf:2: ");
    assert_contains(r.problems[0], "b.key does not match the certificate");
    cr_assert_throw(tls::build(site_with("a.pem", "b.key")), std::runtime_error);
}

Test(tls_context, a_missing_file_is_refused)
{
    tls::Report r = tls::check(site_with("nope.pem", "a.key"));
    cr_assert_eq(r.problems.size(), 1u, "%s", problems(r).c_str());
    assert_contains(r.problems[0], "t.conf:2: sites.tls.certificate: open(" + g_dir + "/nope.pem)");
    assert_contains(r.problems[0], "No such file or directory");
}

Test(tls_context, an_expired_certificate_is_refused)
{
    std::time_t next_year = std::time(nullptr) + 365 * 86400;
    tls::Report r = tls::check(site_with("a.pem", "a.key"), next_year);
    cr_assert_eq(r.problems.size(), 1u, "%s", problems(r).c_str());
    assert_contains(r.problems[0], "the certificate expired on");
}

Test(tls_context, a_chain_the_next_certificate_did_not_sign_is_refused)
{
    tls::Report r = tls::check(site_with("bad-chain.pem", "a.key"));
    cr_assert_eq(r.problems.size(), 1u, "%s", problems(r).c_str());
    assert_contains(r.problems[0], "the certificate chain does not verify");
    assert_contains(r.problems[0], "is not signed by the next certificate in the file");
}

Test(tls_context, a_certificate_expiring_within_14_days_is_a_warning)
{
    tls::Report r = tls::check(site_with("soon.pem", "soon.key"));
    cr_assert(r.problems.empty(), "%s", problems(r).c_str());
    cr_assert_eq(r.warnings.size(), 1u, "%s", joined(r.warnings).c_str());
    assert_contains(r.warnings[0], "soon.pem expires on");
    assert_contains(r.warnings[0], "within 14 days");
    cr_assert(tls::check(site_with("a.pem", "a.key")).warnings.empty());
}

Test(tls_context, a_key_every_user_can_read_is_a_warning)
{
    cr_assert_eq(::chmod((g_dir + "/a.key").c_str(), 0644), 0);
    tls::Report r = tls::check(site_with("a.pem", "a.key"));
    cr_assert(r.problems.empty(), "%s", problems(r).c_str());
    cr_assert_eq(r.warnings.size(), 1u, "%s", joined(r.warnings).c_str());
    assert_contains(r.warnings[0], "a.key is readable by every user");
}

Test(tls_context, a_tls_listener_needs_a_certificate_on_its_default_site)
{
    std::string path = g_dir + "/t.conf";
    write_file(path, "listen = ( \"127.0.0.1:80\",\n"
                     "  { address = \"127.0.0.1:443\"; tls = true; } );\n"
                     "sites = ( { names = [ \"a.test\" ]; },\n"
                     "  { names = [ \"b.test\" ]; tls = { certificate = \"b.pem\"; key = \"b.key\"; }; } );\n");
    try {
        config::load_file(path);
        cr_assert_fail("a TLS listener whose default site has no certificate was accepted");
    } catch (const config::ConfigError& e) {
        std::string text = joined(e.messages());
        assert_contains(text, path + ":2: listen entry \"127.0.0.1:443\" has tls = true");
        assert_contains(text, "its default site is the one at " + path + ":3");
    }
    write_file(path, "listen = ( { address = \"127.0.0.1:443\"; tls = true; } );\n"
                     "sites = ( { names = [ \"b.test\" ]; tls = { certificate = \"b.pem\"; key = \"b.key\"; }; } );\n");
    cr_assert(config::load_file(path).sites[0].tls.key == g_dir + "/b.key");
}
