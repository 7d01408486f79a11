// proctitle.cpp - rewriting argv so ps(1) shows each process's role.
//
// argv strings and the environment strings lie in one contiguous block at the
// top of the stack.  The environment is copied to the heap (environ is
// repointed) so the whole block can hold the title; the rest is zeroed so
// no stale text follows it.
#include "preforkd/proctitle.hpp"

#include <cstring>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace preforkd::proctitle {
namespace {

char* g_begin = nullptr;
char* g_end = nullptr;
std::string g_original;

void move_environment()
{
    std::size_t n = 0, bytes = 0;
    while (environ[n])
        bytes += std::strlen(environ[n++]) + 1;
    // One block for all the strings, held by a static: unsetenv() later
    // drops entries from environ, and the strings must stay reachable.
    static char** table = new char*[n + 1];
    static char* block = new char[bytes + 1];
    char* next = block;
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t len = std::strlen(environ[i]) + 1;
        if (environ[i] == g_end + 1)
            g_end = environ[i] + len - 1;
        std::memcpy(next, environ[i], len);
        table[i] = next;
        next += len;
    }
    table[n] = nullptr;
    environ = table;
}

}  // namespace

void init(int argc, char** argv)
{
    if (argc <= 0 || !argv[0])
        return;
    g_begin = argv[0];
    g_end = argv[0] + std::strlen(argv[0]);
    for (int i = 0; i < argc; ++i) {
        if (i)
            g_original += ' ';
        g_original += argv[i];
        if (argv[i] == g_end + 1)
            g_end = argv[i] + std::strlen(argv[i]);
    }
    move_environment();
}

const std::string& original()
{
    return g_original;
}

void set(const std::string& title)
{
    if (!g_begin)
        return;
    std::size_t room = std::size_t(g_end - g_begin);
    std::size_t n = std::min(title.size(), room);
    std::memcpy(g_begin, title.data(), n);
    std::memset(g_begin + n, 0, room - n + 1);
}

}  // namespace preforkd::proctitle
