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
    std::size_t n = 0;
    while (environ[n])
        ++n;
    char** copy = new char*[n + 1];
    for (std::size_t i = 0; i < n; ++i) {
        if (environ[i] == g_end + 1)
            g_end = environ[i] + std::strlen(environ[i]);
        copy[i] = ::strdup(environ[i]);
    }
    copy[n] = nullptr;
    environ = copy;   // deliberately never freed: the process needs it to the end
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
