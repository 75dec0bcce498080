/* util/tz_shim.cc -- the time zone half of util/timeutil.h, over ICU (linked already for
 * libphonenumber).
 *
 * Why ICU and not libc: localtime_r() converts through the process-wide TZ variable, so
 * each conversion had to setenv()+tzset() under a lock, racing every other thread that
 * reads the environment, and reading the zone file twice per message; without tzdata
 * installed, a zone silently became UTC (issue 8 item 10). ICU carries its own zone data,
 * and a loaded icu::TimeZone is immutable: its const getOffset() may be called from any
 * thread at once. So each zone is loaded once, kept for the life of the process, and used
 * without a lock.
 *
 * As in core/phone_shim.cc, nothing C++ crosses the extern "C" functions, which catch
 * everything. */
extern "C" {
#include "util/timeutil.h"
}

#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include <unicode/timezone.h>
#include <unicode/unistr.h>

namespace
{

/* The zones loaded so far. Only zones ICU knows are kept, so the map is bounded by ICU's
 * list (about 600 ids). It is never freed: a worker thread may still convert a time while
 * main() returns, and static destructors would pull the zones from under it. */
std::mutex zones_lock;
std::unordered_map<std::string, const icu::TimeZone *> *zones;

/* ICU answers an unknown id with a copy of "Etc/Unknown" (GMT), so the id is checked
 * first: only a system zone id (an IANA name or an alias of one) is accepted, not a custom
 * "GMT+5" nor something of our own making. */
const icu::TimeZone *load(const char *tz)
{
    icu::UnicodeString id = icu::UnicodeString::fromUTF8(tz);
    icu::UnicodeString canonical;
    UBool system = false;
    UErrorCode status = U_ZERO_ERROR;
    icu::TimeZone::getCanonicalID(id, canonical, system, status);
    if (U_FAILURE(status) || !system)
        return nullptr;
    icu::TimeZone *z = icu::TimeZone::createTimeZone(id);
    if (z == nullptr || *z == icu::TimeZone::getUnknown()) {
        delete z;
        return nullptr;
    }
    return z;
}

const icu::TimeZone *zone(const char *tz)
{
    if (tz == nullptr || *tz == '\0' || std::strlen(tz) > CD_TIME_ZONE_MAX)
        return nullptr;
    std::lock_guard<std::mutex> hold(zones_lock);
    if (zones == nullptr)
        zones = new std::unordered_map<std::string, const icu::TimeZone *>();
    auto it = zones->find(tz);
    if (it != zones->end())
        return it->second;
    const icu::TimeZone *z = load(tz);
    if (z != nullptr)
        zones->emplace(tz, z);
    return z;
}

} // namespace

extern "C" bool cd_time_zone_valid(const char *tz)
{
    try {
        return zone(tz) != nullptr;
    } catch (...) {
        return false;
    }
}

extern "C" int cd_time__zone_offset(const char *tz, int64_t ms, bool local, int64_t *offset_ms)
{
    try {
        const icu::TimeZone *z = zone(tz);
        if (z == nullptr)
            return -1;
        int32_t raw = 0, dst = 0;
        UErrorCode status = U_ZERO_ERROR;
        z->getOffset(static_cast<UDate>(ms), local, raw, dst, status);
        if (U_FAILURE(status))
            return -1;
        *offset_ms = static_cast<int64_t>(raw) + dst;
        return 0;
    } catch (...) {
        return -1;
    }
}
