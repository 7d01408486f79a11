// test_reload_status.cpp - the file through which the master tells
// `preforkd -s reload` how its last reload went.
#include <criterion/criterion.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

#include "preforkd/reload_status.hpp"

namespace rs = preforkd::reload_status;

namespace {

std::string g_dir;

void make_dir()
{
    char tmpl[] = "/tmp/preforkd-rs-XXXXXX";
    cr_assert(mkdtemp(tmpl) != nullptr);
    g_dir = tmpl;
}

void remove_dir()
{
    std::string cmd = "rm -rf '" + g_dir + "'";
    cr_assert_eq(std::system(cmd.c_str()), 0);
}

}  // namespace

TestSuite(reload_status, .init = make_dir, .fini = remove_dir, .timeout = 10);

Test(reload_status, written_outcomes_read_back)
{
    std::string path = rs::path_for(g_dir + "/preforkd.pid");
    std::string want = g_dir + "/preforkd.pid.reload";
    cr_assert_str_eq(path.c_str(), want.c_str());
    cr_assert_not(rs::read(path).has_value(), "an outcome before any was written");

    rs::write(path, {1234, 1, true, "generation 2 started"});
    auto ok = rs::read(path);
    cr_assert(ok && ok->master == 1234 && ok->count == 1 && ok->ok);
    cr_assert_str_eq(ok->message.c_str(), "generation 2 started");

    rs::write(path, {1234, 2, false, "bind(127.0.0.1:80) failed: Address already in use\nsecond"});
    auto failed = rs::read(path);
    cr_assert(failed && failed->count == 2 && !failed->ok);
    cr_assert_str_eq(failed->message.c_str(),
                     "bind(127.0.0.1:80) failed: Address already in use second");
    cr_assert(access((path + ".tmp").c_str(), F_OK) != 0, "the temporary file was left behind");

    rs::remove(path);
    cr_assert_not(rs::read(path).has_value(), "an outcome after remove()");
}

Test(reload_status, malformed_files_are_no_outcome)
{
    std::string path = g_dir + "/x.reload";
    for (const char* text : {"", "garbage\n", "12 3 maybe\nmsg\n", "0 1 ok\nmsg\n", "-5 1 ok\n"}) {
        std::ofstream(path) << text;
        cr_assert_not(rs::read(path).has_value(), "'%s' read as an outcome", text);
    }
}
