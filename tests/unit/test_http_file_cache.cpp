// The small-file cache: hits only while the file is the same file.
#include <criterion/criterion.h>

#include <string>
#include <sys/stat.h>

#include "preforkd/http/file_cache.hpp"

using preforkd::http::FileCache;

namespace {

constexpr std::int64_t kSecond = 1000000000;

struct stat settled_file(off_t size)
{
    struct stat st {};
    st.st_mode = S_IFREG | 0644;
    st.st_dev = 8;
    st.st_ino = 1234;
    st.st_size = size;
    st.st_mtim = {1000, 5};
    st.st_ctim = {1000, 7};
    return st;
}

}  // namespace

Test(http_file_cache, hit_while_the_stat_is_unchanged)
{
    FileCache cache;
    struct stat st = settled_file(5);
    cache.store("a.txt", st, "hello");
    auto hit = cache.find("a.txt", st);
    cr_assert_not_null(hit.get());
    cr_assert_str_eq(hit->c_str(), "hello");
}

Test(http_file_cache, any_change_of_the_file_is_a_miss)
{
    FileCache cache;
    struct stat st = settled_file(5);
    cache.store("a.txt", st, "hello");
    struct stat changed = st;
    changed.st_ctim.tv_nsec += 1;   // rewritten, same size, same mtime
    cr_assert_null(cache.find("a.txt", changed).get());
    changed = st;
    changed.st_mtim.tv_sec += 1;
    cr_assert_null(cache.find("a.txt", changed).get());
    changed = st;
    changed.st_ino += 1;            // replaced by rename
    cr_assert_null(cache.find("a.txt", changed).get());
    changed = st;
    changed.st_size = 6;
    cr_assert_null(cache.find("a.txt", changed).get());
    cr_assert_null(cache.find("b.txt", st).get());
}

Test(http_file_cache, recently_changed_and_large_files_are_not_cacheable)
{
    struct stat st = settled_file(100);
    std::int64_t changed_ns = 1000 * kSecond;
    cr_assert(FileCache::cacheable(st, changed_ns + 3 * kSecond));
    cr_assert(!FileCache::cacheable(st, changed_ns + kSecond / 2),
              "a file written half a second ago must be read from disk");
    st.st_size = FileCache::kMaxFile + 1;
    cr_assert(!FileCache::cacheable(st, changed_ns + 3 * kSecond));
    st = settled_file(0);
    st.st_mode = S_IFDIR | 0755;
    cr_assert(!FileCache::cacheable(st, changed_ns + 3 * kSecond));
}

Test(http_file_cache, stays_within_its_byte_budget)
{
    FileCache cache;
    std::string chunk(FileCache::kMaxFile, 'x');
    for (int i = 0; i < 100; ++i) {
        struct stat st = settled_file(off_t(chunk.size()));
        st.st_ino = ino_t(i);
        cache.store("f" + std::to_string(i), st, chunk);
        cr_assert(cache.bytes() <= FileCache::kMaxBytes);
    }
}
