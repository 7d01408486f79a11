// test_config.cpp - the configuration loader, as an administrator meets it.
//
// Every test feeds text (or a file in its own temporary directory) to the
// loader and checks what the administrator would see: the values in effect,
// or the exact "file:line: message" lines of a rejected configuration.
// Criterion runs each test in its own process, so the temporary directory
// lives in a global made by the suite's .init and removed by its .fini.
#include <criterion/criterion.h>
#include <sched.h>

#include <filesystem>
#include <string>
#include <syslog.h>
#include <unistd.h>
#include <vector>

#include "preforkd/config.hpp"
#include "preforkd/listener.hpp"
#include "test_config_helpers.hpp"

using namespace preforkd::config;

using namespace config_test;

TestSuite(config, .init = make_dir, .fini = remove_dir, .timeout = 10);

// --- values ------------------------------------------------------------------

Test(config, empty_text_gives_every_default)
{
    Config c = load_string("", "t.conf", "/etc/preforkd");
    cr_assert(c == Config{});
    assert_text(c.file, "");
    cr_assert(c.listen == (std::vector<std::string>{"0.0.0.0:80", "[::]:80"}));
    cr_assert_eq(c.workers.start, 5);
    cr_assert_eq(c.workers.max, 256);
    cr_assert_eq(c.workers.max_requests, 10000);
    assert_text(c.http.root, "/var/www/html");
    cr_assert_eq(c.log.level_priority, LOG_INFO);
    cr_assert_eq(c.log.facility_code, LOG_DAEMON);
    cr_assert_eq(c.log.access_format, AccessFormat::combined);
    cr_assert_eq(c.unix_mode_bits, 0666);
    cr_assert_eq(c.defer_accept, 1);
    cr_assert_eq(c.workers.cpu_policy, SCHED_BATCH);
    cr_assert_eq(c.log.access_buffer, 4096);
    cr_assert_eq(c.log.access_flush, 1);
}

Test(config, every_key_is_read)
{
    Config c = load_string(R"(
user = "www"; group = "web"; pid_file = "/run/p.pid"; chroot = "/jail";
listen = ( "127.0.0.1:8080", "[::1]:8080", "unix:/run/p.sock" ); unix_mode = "0660";
defer_accept = 0;
workers = { start = 2; min_spare = 1; max_spare = 3; max = 8; max_requests = 500;
            graceful_timeout = 10; watchdog_timeout = 0; cpu_scheduling = "other"; };
http = { root = "/srv/www"; index = [ "index.htm", "default.html" ]; autoindex = true;
         keepalive_timeout = 0; keepalive_requests = 7; header_timeout = 3; send_timeout = 4;
         max_header_size = 4096; max_headers = 50; server_tokens = true;
         mime_types = "/etc/m.types"; default_type = "text/plain";
         header_timeout_max = 9; header_min_rate = 0; adaptive_keepalive = false;
         follow_symlinks = true; gzip_static = true; max_ranges = 0; max_discard_body = 10; };
log = { level = "debug"; syslog_facility = "local3"; access_log = "syslog";
        access_format = "common"; access_buffer = 0; access_flush = 5; };
)", "t.conf", g_dir);
    assert_text(c.user, "www");
    assert_text(c.chroot, "/jail");
    cr_assert_eq(c.listen.size(), 3u);
    cr_assert_eq(c.unix_mode_bits, 0660);
    cr_assert(c.workers.start == 2 && c.workers.max_spare == 3 && c.workers.max == 8);
    cr_assert(c.workers.max_requests == 500 && c.workers.watchdog_timeout == 0);
    cr_assert(c.http.index == (std::vector<std::string>{"index.htm", "default.html"}));
    cr_assert(c.http.autoindex && c.http.server_tokens && c.http.max_headers == 50);
    assert_text(c.http.default_type, "text/plain");
    cr_assert(c.http.header_timeout == 3 && c.http.send_timeout == 4);
    cr_assert(c.http.header_timeout_max == 9 && c.http.header_min_rate == 0);
    cr_assert(!c.http.adaptive_keepalive && c.http.follow_symlinks && c.http.gzip_static);
    cr_assert(c.http.max_ranges == 0 && c.http.max_discard_body == 10);
    cr_assert_eq(c.log.level_priority, LOG_DEBUG);
    cr_assert_eq(c.log.facility_code, LOG_LOCAL3);
    assert_text(c.log.access_log, "syslog");
    cr_assert_eq(c.log.access_format, AccessFormat::common);
    cr_assert_eq(c.defer_accept, 0);
    cr_assert_eq(c.workers.cpu_policy, SCHED_OTHER);
    cr_assert(c.log.access_buffer == 0 && c.log.access_flush == 5);
}

Test(config, unwritten_pool_defaults_follow_written_limits)
{
    Config c = load_string("workers = { max = 2; min_spare = 20; };", "t.conf", g_dir);
    cr_assert_eq(c.workers.start, 2, "start follows max when not written");
    cr_assert_eq(c.workers.max_spare, 20, "max_spare follows min_spare when not written");
}

Test(config, header_timeout_max_follows_or_must_not_be_below_header_timeout)
{
    Config c = load_string("http = { header_timeout = 60; };", "t.conf", g_dir);
    cr_assert_eq(c.http.header_timeout_max, 60, "unwritten, it follows header_timeout up");
    assert_errors("http = {\n  header_timeout = 60;\n  header_timeout_max = 30;\n};\n",
                  {"t.conf:3: http.header_timeout_max must not be below http.header_timeout"});
    assert_errors("http = {\n  header_min_rate = -1;\n  adaptive_keepalive = 1;\n};\n",
                  {"t.conf:2: http.header_min_rate must be between 0 and 1073741824",
                   "t.conf:3: http.adaptive_keepalive must be true or false"});
}

Test(config, big_integer_needs_L_suffix)
{
    Config c = load_string("workers = { max_requests = 5000000000L; };", "t.conf", g_dir);
    cr_assert_eq(c.workers.max_requests, 5000000000L);
    assert_errors("workers = {\n  max_requests = 5000000000;\n};\n",
                  {"t.conf:2: integer 5000000000 is out of 32-bit range; write 5000000000L"});
    // Found before parsing, yet reported in file order with the rest.
    assert_errors("user = 1;\nworkers = { max_requests = 5000000000; };\n",
                  {"t.conf:1: user must be a string",
                   "t.conf:2: integer 5000000000 is out of 32-bit range; write 5000000000L"});
}

Test(config, unix_mode_is_an_octal_string)
{
    Config c = load_string("unix_mode = \"660\";", "t.conf", g_dir);
    cr_assert_eq(c.unix_mode_bits, 0660);
    assert_text(c.unix_mode, "0660");
    assert_errors("unix_mode = 0660;\n",
                  {"t.conf:1: unix_mode must be a string of octal digits, like \"0660\""});
    assert_errors("\nunix_mode = \"0999\";\n",
                  {"t.conf:2: unix_mode must be between \"0000\" and \"0777\" "
                   "(octal digits, like \"0660\")"});
}

// --- errors --------------------------------------------------------------------

Test(config, syntax_error_names_the_line)
{
    assert_errors("user = \"www\";\nworkers = {\n  start = ;\n};\n", {"t.conf:3: syntax error"});
}

Test(config, unknown_key_names_line_and_suggests)
{
    assert_errors("user = \"www\";\nworkres = { max = 4; };\n",
                  {"t.conf:2: unknown key 'workres' (did you mean 'workers'?)"});
    assert_errors("workers = {\n  strat = 1;\n};\n",
                  {"t.conf:2: unknown key 'workers.strat' (did you mean 'workers.start'?)"});
    assert_errors("root = \"/srv\";\n",
                  {"t.conf:1: unknown key 'root' (did you mean 'http.root'?)"});
    assert_errors("log = { frobnicate = 1; };\n", {"t.conf:1: unknown key 'log.frobnicate'"});
}

Test(config, wrong_type_names_key_and_line)
{
    assert_errors("workers = {\n  max = \"8\";\n};\nhttp = { autoindex = \"yes\"; };\n"
                  "user = 0;\nlisten = \"*:80\";\nlog = 1;\nhttp2 = 1.5;\n",
                  {"t.conf:2: workers.max must be an integer",
                   "t.conf:4: http.autoindex must be true or false",
                   "t.conf:5: user must be a string",
                   "t.conf:6: listen must be a list of addresses or entries: listen = ( \"*:80\", "
                   "{ address = \"*:443\"; tls = true; } );",
                   "t.conf:7: log must be a group: log = { ... };",
                   "t.conf:8: unknown key 'http2' (did you mean 'http'?)"});
}

Test(config, out_of_range_names_the_limits)
{
    assert_errors("workers = {\n  max = 0;\n  graceful_timeout = 90000;\n  max_requests = -1;\n};\n"
                  "http = {\n  header_timeout = 0;\n  max_header_size = 100;\n};\n",
                  {"t.conf:2: workers.max must be between 1 and 4096",
                   "t.conf:3: workers.graceful_timeout must be between 0 and 86400",
                   "t.conf:4: workers.max_requests must be between 0 and 9223372036854775807",
                   "t.conf:7: http.header_timeout must be between 1 and 3600",
                   "t.conf:8: http.max_header_size must be between 1024 and 1048576"});
    assert_errors("defer_accept = -1;\nlog = {\n  access_buffer = 2000000;\n  access_flush = 0;\n};\n",
                  {"t.conf:1: defer_accept must be between 0 and 600",
                   "t.conf:3: log.access_buffer must be between 0 and 1048576",
                   "t.conf:4: log.access_flush must be between 1 and 60"});
}

Test(config, pool_settings_must_agree)
{
    assert_errors("workers = {\n  min_spare = 8;\n  max_spare = 4;\n};\n",
                  {"t.conf:3: workers.max_spare must be between 8 and 4096 "
                   "(not below workers.min_spare)"});
    assert_errors("workers = {\n  max = 4;\n  start = 8;\n};\n",
                  {"t.conf:3: workers.start must be between 0 and 4 (workers.max)"});
}

Test(config, bad_listen_address_names_the_line)
{
    std::string why = preforkd::listener::parse("localhost:80").error;
    assert_contains(why, "listen address \"localhost:80\": ");
    assert_errors("listen = ( \"127.0.0.1:8080\",\n  \"localhost:80\" );\n", {"t.conf:2: " + why});
    assert_errors("listen = ( );\n", {"t.conf:1: listen must name at least one address"});
}

Test(config, duplicate_listen_address_is_an_error)
{
    assert_errors("listen = ( \"*:8080\",\n  \"0.0.0.0:8080\" );\n",
                  {"t.conf:2: listen address \"0.0.0.0:8080\" is the same as \"*:8080\""});
}

Test(config, listen_entries_carry_options)
{
    Config c = load_string(R"(
listen = ( "127.0.0.1:8080",
           { address = "*:8443"; tls = true; },
           { address = "10.0.0.5:9443"; tls = true; proxy_protocol = true;
             proxy_trusted = [ "10.0.0.0/8", "::1" ]; },
           "127.0.0.1:8081" );
sites = ( { names = [ "t.test" ]; tls = { certificate = "/etc/ssl/t.pem"; key = "/etc/ssl/t.key"; }; } );)",
                           "t.conf", g_dir);
    cr_assert(c.listen == (std::vector<std::string>{"127.0.0.1:8080", "*:8443", "10.0.0.5:9443",
                                                     "127.0.0.1:8081"}));
    cr_assert(!listen_options_of(c, 0).tls && !listen_options_of(c, 0).proxy_protocol);
    cr_assert(listen_options_of(c, 1).tls && !listen_options_of(c, 1).proxy_protocol);
    cr_assert(listen_options_of(c, 2).tls && listen_options_of(c, 2).proxy_protocol);
    cr_assert_eq(listen_options_of(c, 2).proxy_trusted.size(), 2u);
    assert_text(listen_options_of(c, 2).proxy_trusted[0].text, "10.0.0.0/8");
    cr_assert(listen_options_of(c, 3) == ListenOptions{});
    std::string text = dump(c);
    assert_contains(text, "{ address = \"*:8443\"; tls = true; }");
    assert_contains(text, "proxy_protocol = true; proxy_trusted = [ \"10.0.0.0/8\", ");
    cr_assert(load_string(text, "dump", "/") == c);
    // Entries without options are the plain strings they stand for.
    cr_assert(load_string("listen = ( { address = \"*:80\"; }, { address = \"[::]:80\"; tls = false; } );",
                          "t.conf", g_dir) == load_string("listen = ( \"*:80\", \"[::]:80\" );", "t.conf", g_dir));
}

Test(config, bad_listen_entries_are_named)
{
    assert_errors("listen = (\n  { tls = true; },\n  { address = 443; },\n"
                  "  { address = \"*:443\"; tsl = true; },\n"
                  "  { address = \"*:8443\"; proxy_trusted = [ \"10.0.0.0/8\" ]; },\n"
                  "  { address = \"*:9443\"; proxy_protocol = \"yes\"; },\n  7 );\n",
                  {"t.conf:2: listen entry needs an address: { address = \"*:443\"; ... }",
                   "t.conf:3: listen entry's address must be a string, like \"*:443\"",
                   "t.conf:4: listen entry: unknown setting \"tsl\" (an entry has address, tls, "
                   "proxy_protocol, proxy_trusted)",
                   "t.conf:5: listen entry's proxy_trusted needs proxy_protocol = true on the same "
                   "entry",
                   "t.conf:6: listen entry's proxy_protocol must be true or false",
                   "t.conf:7: listen must be a list of addresses or entries: listen = ( \"*:80\", "
                   "{ address = \"*:443\"; tls = true; } );"});
}

Test(config, log_choices_are_listed)
{
    assert_errors("log = {\n  level = \"verbose\";\n  syslog_facility = \"local9\";\n"
                  "  access_format = \"xml\";\n};\n",
                  {"t.conf:2: log.level must be one of err, warning, notice, info, debug",
                   "t.conf:3: log.syslog_facility must be one of daemon, user, local0, local1, "
                   "local2, local3, local4, local5, local6, local7",
                   "t.conf:4: log.access_format must be one of common, combined, "
                   "combined_timing, json, combined_tls"});
    assert_errors("workers = {\n  cpu_scheduling = \"fifo\";\n};\n",
                  {"t.conf:2: workers.cpu_scheduling must be one of other, batch"});
}

Test(config, empty_and_malformed_strings)
{
    assert_errors("pid_file = \"\";\nhttp = {\n  root = \"\";\n  index = [ \"a/b.html\" ];\n"
                  "  default_type = \"text plain\";\n};\n",
                  {"t.conf:1: pid_file must not be empty", "t.conf:3: http.root must not be empty",
                   "t.conf:4: http.index entries must be file names without '/'",
                   "t.conf:5: http.default_type must be a media type like \"text/plain\""});
}

Test(config, every_error_is_reported_at_once)
{
    std::string text = "workers = { max = 0; };\nfoo = 1;\nhttp = { autoindex = 1; };\n"
                       "listen = ( \"*:99999\" );\n";
    try {
        load_string(text, "many.conf", g_dir);
        cr_assert_fail("accepted a configuration with four errors");
    } catch (const ConfigError& e) {
        std::string what = e.what();
        cr_assert_eq(e.messages().size(), 4u, "got:\n%s", what.c_str());
        assert_text(e.messages()[0], "many.conf:1: workers.max must be between 1 and 4096");
        assert_text(e.messages()[1], "many.conf:2: unknown key 'foo'");
        assert_text(e.messages()[2], "many.conf:3: http.autoindex must be true or false");
        assert_contains(e.messages()[3], "many.conf:4: listen address \"*:99999\": ");
        assert_contains(what, "\nmany.conf:2: unknown key 'foo'\n");
    }
}

// --- files ------------------------------------------------------------------------

Test(config, missing_file_names_open_and_errno)
{
    std::string path = g_dir + "/none.conf";
    assert_text(file_errors(path), "open(\"" + path + "\") failed: No such file or directory\n");
}

Test(config, relative_paths_follow_the_config_file)
{
    std::string path = g_dir + "/etc/preforkd.conf";
    write_file(path, "pid_file = \"run/p.pid\"; chroot = \"jail\";\n"
                     "listen = ( \"unix:./sock/http.sock\", \"127.0.0.1:0\" );\n"
                     "http = { root = \"../www\"; mime_types = \"./mime.types\"; };\n"
                     "log = { access_log = \"logs/access.log\"; };\n");
    cr_assert_eq(chdir(g_dir.c_str()), 0);
    Config c = load_file("etc/preforkd.conf");
    std::string etc = g_dir + "/etc";
    assert_text(c.file, path);
    assert_text(c.pid_file, etc + "/run/p.pid");
    assert_text(c.chroot, etc + "/jail");
    assert_text(c.listen[0], "unix:" + etc + "/sock/http.sock");
    assert_text(c.listen[1], "127.0.0.1:0");
    assert_text(c.http.root, etc + "/../www");
    assert_text(c.http.mime_types, etc + "/mime.types");
    assert_text(c.log.access_log, etc + "/logs/access.log");
}

Test(config, load_string_resolves_against_base_dir)
{
    Config c = load_string("http = { root = \"htdocs\"; };\nlog = { access_log = \"off\"; };",
                           "t.conf", "/etc/preforkd");
    assert_text(c.http.root, "/etc/preforkd/htdocs");
    assert_text(c.log.access_log, "off");
}

Test(config, include_reads_another_file_and_names_it)
{
    std::string main = g_dir + "/main.conf";
    write_file(main, "user = \"www\";\n@include \"pool.conf\"\n");
    write_file(g_dir + "/pool.conf", "workers = {\n  max = 3;\n};\n");
    cr_assert_eq(load_file(main).workers.max, 3);
    write_file(g_dir + "/pool.conf", "workers = {\n  max = 0;\n};\n");
    assert_text(file_errors(main),
                g_dir + "/pool.conf:2: workers.max must be between 1 and 4096\n");
}

// libconfig 1.5 calls exit(2) on an @include of a directory; this test would
// crash instead of failing if the loader handed such a file to the library.
Test(config, include_of_directory_or_missing_file_is_rejected)
{
    std::filesystem::create_directory(g_dir + "/conf.d");
    std::string path = g_dir + "/main.conf";
    write_file(path, "user = \"www\";\n@include \"conf.d\"\n  @include \"missing.conf\"\n");
    assert_text(file_errors(path),
                path + ":2: @include \"conf.d\": Is a directory\n" +
                path + ":3: @include \"missing.conf\": No such file or directory\n");
}

Test(config, include_in_comment_or_string_is_not_followed)
{
    std::filesystem::create_directory(g_dir + "/conf.d");
    Config c = load_string("# @include \"conf.d\"\n/*\n@include \"conf.d\"\n*/\n"
                           "user = \"a\n@include \\\"conf.d\\\"\";\n",
                           "t.conf", g_dir);
    assert_text(c.user, "a\n@include \"conf.d\"");
}

// --- dump -----------------------------------------------------------------------

Test(config, dump_loads_back_to_the_same_values)
{
    Config c = load_string(R"(
user = "w\"w\\w"; listen = ( "127.0.0.1:8080", "unix:/run/a b.sock" ); unix_mode = "0600";
workers = { start = 0; min_spare = 0; max_spare = 0; max = 1;
            max_requests = 5000000000L; watchdog_timeout = 0; };
http = { root = "/srv/x\ty"; index = [ ]; autoindex = true; server_tokens = true; };
log = { level = "err"; syslog_facility = "local7"; access_format = "common"; };)",
                           "t.conf", g_dir);
    std::string text = dump(c);
    assert_contains(text, "  max_requests = 5000000000L;\n");
    assert_contains(text, "user = \"w\\\"w\\\\w\";\n");
    assert_contains(text, "  root = \"/srv/x\\ty\";\n");
    assert_contains(text, "workers = {\n  start = 0;\n");
    cr_assert(load_string(text, "dump", "/") == c);
}

Test(config, dump_of_defaults_has_every_key)
{
    std::string text = dump(Config{});
    assert_contains(text, "listen = ( \"0.0.0.0:80\", \"[::]:80\" );\n");
    assert_contains(text, "  index = [ \"index.html\" ];\n");
    assert_contains(text, "  access_format = \"combined\";\n");
    assert_contains(text, "chroot = \"\";\n");
    cr_assert(load_string(text, "dump", "/") == Config{});
}

// --- check_environment --------------------------------------------------------------

Test(config, check_environment_reports_missing_root_and_unknown_user)
{
    write_file(g_dir + "/mime.types", "text/html html\n");
    Config c;
    c.http.root = g_dir + "/nope";
    c.http.mime_types = g_dir + "/mime.types";
    c.log.access_log = g_dir + "/access.log";
    c.user = "no-such-user-preforkd";
    assert_text(joined(check_environment(c)),
                joined({"http.root \"" + g_dir + "/nope\": No such file or directory",
                        "user \"no-such-user-preforkd\": no such user"}));
}

Test(config, check_environment_accepts_a_sound_setup)
{
    write_file(g_dir + "/mime.types", "text/html html\n");
    Config c;
    c.http.root = g_dir;
    c.http.mime_types = g_dir + "/mime.types";
    c.log.access_log = "syslog";
    c.user = "root";
    c.group = "root";
    assert_text(joined(check_environment(c)), "");
    c.http.root = g_dir + "/mime.types";
    c.log.access_log = g_dir + "/logs/access.log";
    c.group = "no-such-group-preforkd";
    assert_text(joined(check_environment(c)),
                joined({"http.root \"" + g_dir + "/mime.types\": Not a directory",
                        "group \"no-such-group-preforkd\": no such group",
                        "log.access_log directory \"" + g_dir +
                            "/logs\": No such file or directory"}));
}

Test(config, check_environment_reports_missing_pid_file_and_socket_directories)
{
    write_file(g_dir + "/mime.types", "text/html html\n");
    Config c;
    c.http.root = g_dir;
    c.http.mime_types = g_dir + "/mime.types";
    c.log.access_log = "off";
    c.pid_file = g_dir + "/run/preforkd.pid";
    c.listen = {"127.0.0.1:8080", "unix:" + g_dir + "/sockets/a.sock",
                "unix:" + g_dir + "/sockets/b.sock", "unix:" + g_dir + "/here.sock"};
    c.unix_owner = "no-such-user-preforkd";
    assert_text(joined(check_environment(c)),
                joined({"unix_owner \"no-such-user-preforkd\": no such user",
                        "pid_file directory \"" + g_dir + "/run\": No such file or directory",
                        "listen \"unix:" + g_dir + "/sockets/a.sock\" directory \"" + g_dir +
                            "/sockets\": No such file or directory"}));
    c.pid_file = g_dir + "/preforkd.pid";
    c.listen = {"unix:" + g_dir + "/here.sock"};
    c.unix_owner = "root";
    assert_text(joined(check_environment(c)), "");
}

Test(config, access_log_has_a_syslog_facility_of_its_own)
{
    Config plain = load_string("log = { syslog_facility = \"local1\"; };", "t.conf", g_dir);
    cr_assert_eq(plain.log.access_facility_code, LOG_DAEMON);
    Config c = load_string("log = { syslog_facility = \"local1\"; access_log = \"syslog\";\n"
                           "        access_syslog_facility = \"local5\"; };",
                           "t.conf", g_dir);
    cr_assert_eq(c.log.facility_code, LOG_LOCAL1);
    cr_assert_eq(c.log.access_facility_code, LOG_LOCAL5);
    assert_contains(dump(c), "  access_syslog_facility = \"local5\";\n");
    cr_assert(load_string(dump(c), "dump", "/") == c);
    assert_errors("log = {\n  access_syslog_facility = \"kern\";\n};\n",
                  {"t.conf:2: log.access_syslog_facility must be one of daemon, user, local0, "
                   "local1, local2, local3, local4, local5, local6, local7"});
}
