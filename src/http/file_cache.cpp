// http/file_cache.cpp - see the header for why and when bytes are kept.
#include "preforkd/http/file_cache.hpp"

namespace preforkd::http {
namespace {

bool same_time(const timespec& a, const timespec& b) noexcept
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

std::int64_t to_ns(const timespec& t) noexcept
{
    return std::int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

}  // namespace

std::shared_ptr<const std::string> FileCache::find(const std::string& key,
                                                   const struct stat& st) const
{
    auto it = entries_.find(key);
    if (it == entries_.end())
        return nullptr;
    const Entry& e = it->second;
    bool same = e.dev == st.st_dev && e.ino == st.st_ino && e.size == st.st_size &&
                same_time(e.mtime, st.st_mtim) && same_time(e.ctime, st.st_ctim);
    return same ? e.bytes : nullptr;
}

bool FileCache::cacheable(const struct stat& st, std::int64_t now_ns, std::int64_t hot_ms) noexcept
{
    return S_ISREG(st.st_mode) && std::size_t(st.st_size) <= kMaxFile &&
           now_ns - to_ns(st.st_ctim) >= hot_ms * 1000000 &&
           now_ns - to_ns(st.st_mtim) >= hot_ms * 1000000;
}

std::shared_ptr<const std::string> FileCache::store(const std::string& key, const struct stat& st,
                                                    std::string bytes)
{
    auto shared = std::make_shared<const std::string>(std::move(bytes));
    auto old = entries_.find(key);
    if (old != entries_.end()) {
        bytes_ -= old->second.bytes->size();
        entries_.erase(old);
    }
    if (bytes_ + shared->size() > kMaxBytes) {
        entries_.clear();
        bytes_ = 0;
    }
    entries_[key] = Entry{st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim, shared};
    bytes_ += shared->size();
    return shared;
}

}  // namespace preforkd::http
