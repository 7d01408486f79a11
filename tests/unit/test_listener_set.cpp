// The master's listener set across a reload and its rollback, on unix
// sockets in a temporary directory.
#include <criterion/criterion.h>

#include <cstdlib>
#include <string>
#include <unistd.h>

#include "preforkd/listener_set.hpp"

using namespace preforkd;

namespace {

std::string g_dir;

void make_dir()
{
    char tmpl[] = "/tmp/preforkd-ls-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    g_dir = tmpl;
}

config::Config listening_on(std::initializer_list<const char*> names)
{
    config::Config c;
    c.listen.clear();   // not the default address
    for (const char* n : names)
        c.listen.push_back("unix:" + g_dir + "/" + n);
    return c;
}

bool exists(const char* name)
{
    return ::access((g_dir + "/" + name).c_str(), F_OK) == 0;
}

}  // namespace

Test(listener_set, a_reload_keeps_unchanged_sockets_and_hands_back_the_removed_ones_open)
{
    make_dir();
    master::ListenerSet set;
    set.open(listening_on({"a.sock", "b.sock"}));
    int a = set.all()[0].fd.get();
    config::Config next = listening_on({"a.sock", "c.sock"});
    std::vector<listener::Listener> dropped = set.switch_to(next, set.open_missing(next));
    cr_assert_eq(set.all().size(), 2u);
    cr_expect_eq(set.all()[0].fd.get(), a, "the unchanged listener keeps its descriptor");
    cr_assert_eq(dropped.size(), 1u);
    cr_expect(dropped[0].fd.valid(), "b.sock is handed back open");
    cr_expect(exists("b.sock"), "and its file stays until it is retired");

    // The rollback: back to a and b, b from what the reload dropped; c is
    // handed back for the caller to close.
    std::vector<listener::Listener> unused = set.switch_to(listening_on({"a.sock", "b.sock"}),
                                                           std::move(dropped));
    cr_assert_eq(set.all().size(), 2u);
    cr_expect_eq(set.all()[0].fd.get(), a);
    cr_expect(set.all()[1].address.canonical.find("b.sock") != std::string::npos);
    cr_assert_eq(unused.size(), 1u);
    cr_expect(unused[0].address.canonical.find("c.sock") != std::string::npos);
    master::retire_listeners(unused);
    cr_expect(unused.empty());
    cr_expect(!exists("c.sock"), "a retired unix socket's file is removed");
    set.close();
    cr_expect(!exists("a.sock") && !exists("b.sock"));
    ::rmdir(g_dir.c_str());
}
