/* core/phone_shim.cc -- core/phone.h over libphonenumber; with util/tz_shim.cc, the only C++.
 *
 * Everything C++ stays in this file: no exception, no std::string and no libphonenumber
 * type crosses the extern "C" functions at the bottom, each of which catches everything. */
extern "C" {
#include "core/phone.h"
#include "util/utf8.h"
}

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#include <algorithm>
#include <list>
#include <memory>
#include <unordered_map>

#include <phonenumbers/logger.h>
#include <phonenumbers/phonemetadata.pb.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>
#include <unicode/regex.h>
#include <unicode/unistr.h>

namespace i18n
{
namespace phonenumbers
{
/* libphonenumber's compiled-in metadata (phonenumbers/metadata.h, not installed): the bytes
 * PhoneNumberUtil itself parses when it is built. */
int metadata_size();
const void *metadata_get();
} // namespace phonenumbers
} // namespace i18n

using i18n::phonenumbers::NullLogger;
using i18n::phonenumbers::PhoneMetadata;
using i18n::phonenumbers::PhoneMetadataCollection;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberDesc;
using i18n::phonenumbers::PhoneNumberUtil;

namespace
{

/* Longer input is refused before libphonenumber sees it: E.164 has at most 15 digits, so
 * 64 bytes leave room for any punctuation a person types, and nothing more. */
const size_t kMaxRaw = 64;

/* phone.h promises this for a NULL region: ProTexting, Omeda and Opentact send NANP
 * numbers. */
const char kDefaultRegion[] = "US";

std::once_flag init_once;

void init_util()
{
    PhoneNumberUtil *util = PhoneNumberUtil::GetInstance();
    /* Older releases logged through a StdoutLogger, which would interleave with our JSON
     * log lines; 8.12 already defaults to a NullLogger, so this only pins that down.
     * SetLogger takes ownership and is not thread-safe, hence std::call_once. */
    util->SetLogger(new NullLogger());
}

/* GetInstance() is itself a thread-safe singleton (pthread_once in Debian's build), so a
 * caller that forgot cd_phone_init() still works; call_once makes the logger swap safe. */
const PhoneNumberUtil &util()
{
    std::call_once(init_once, init_util);
    return *PhoneNumberUtil::GetInstance();
}

bool is_ascii_digit(long cp)
{
    return cp >= '0' && cp <= '9';
}

/* Fullwidth digits: libphonenumber normalises them, and Japanese or Chinese keyboards
 * produce them. */
bool is_wide_digit(long cp)
{
    return cp >= 0xff10 && cp <= 0xff19;
}

/* The separators people actually type or paste around a number. The non-ASCII ones are
 * the punctuation libphonenumber itself skips (kValidPunctuation): no-break and thin
 * spaces, Unicode dashes and minus, fullwidth plus, parentheses, brackets, dot and slash.
 * Letters are deliberately absent: libphonenumber would read "1-800-FLOWERS" as a vanity
 * number, "x12" or "ext 12" as an extension, and drop a trailing letter without a word,
 * none of which is a number an SMS can reach. */
bool is_separator(long cp, bool allow_plus)
{
    static const long wide[] = {0x00a0, 0x00ad, 0x202f, 0x2060, 0x2212, 0x3000, 0x30fc,
                                0xff08, 0xff09, 0xff0d, 0xff0e, 0xff0f, 0xff3b, 0xff3d};

    if (cp == '+' || cp == 0xff0b)
        return allow_plus;
    if (cp > 0 && cp < 0x80)
        return strchr(" \t()[]-./", static_cast<int>(cp)) != nullptr;
    if ((cp >= 0x2000 && cp <= 0x200b) || (cp >= 0x2010 && cp <= 0x2015))
        return true;
    for (long w : wide) {
        if (cp == w)
            return true;
    }
    return false;
}

/* What a screened input looks like. `digits` holds its ASCII digits in order, and is only
 * meaningful when `ascii_digits` is true (no fullwidth digit was seen). */
struct screened {
    std::string digits;
    bool has_plus = false;
    bool ascii_digits = true;
};

/* Refuses what is not a phone number before libphonenumber's lenient parser sees it.
 * Returns nullptr when `raw` passes, else a message that is safe to show a client. */
const char *screen(const char *raw, bool allow_plus, screened *out)
{
    if (raw == nullptr || raw[0] == '\0')
        return "is empty";
    size_t n = strnlen(raw, kMaxRaw + 1);
    if (n > kMaxRaw)
        return "is too long";

    const unsigned char *s = reinterpret_cast<const unsigned char *>(raw);
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        long cp = cd_utf8_next(s + i, n - i, &len);
        if (cp < 0)
            return "is not valid UTF-8";
        if (is_ascii_digit(cp)) {
            out->digits.push_back(static_cast<char>(cp));
            count++;
        } else if (is_wide_digit(cp)) {
            out->ascii_digits = false;
            count++;
        } else if (is_separator(cp, allow_plus)) {
            if (cp == '+' || cp == 0xff0b)
                out->has_plus = true;
        } else {
            return "may hold only digits, spaces and + ( ) [ ] - . /";
        }
        i += len;
    }
    if (count == 0)
        return "has no digits";
    return nullptr;
}

/* How far one reading of the input got; a later stage is a more useful error. */
enum stage {
    STAGE_UNPARSED, /* libphonenumber could not read it as a number */
    STAGE_INVALID,  /* read, but no such number exists (isValidNumber is false) */
    STAGE_NO_SMS,   /* a real number, but of a type that cannot receive SMS */
    STAGE_OK,
};

struct reading {
    stage at = STAGE_UNPARSED;
    const char *why = "is not a phone number";
    std::string e164;
};

/* Whether a number of this type can be texted.
 * Accepted:
 *  - MOBILE.
 *  - FIXED_LINE_OR_MOBILE: NANP (US, CA, ...) and some other plans do not tell the two apart,
 *    and refusing them would refuse every American number.
 *  - TOLL_FREE: US toll-free numbers are routinely SMS-enabled (and Opentact's number pools
 *    send from them), so a contact may well text from one.
 *  - VOIP: virtual numbers (GB 056, many US providers) commonly receive SMS.
 *  - PERSONAL_NUMBER: a follow-me number forwarded to a mobile or a line (GB 070), which is
 *    no worse than FIXED_LINE_OR_MOBILE.
 * Refused:
 *  - FIXED_LINE: the number plan says it is a landline, which cannot receive SMS.
 *  - PREMIUM_RATE, SHARED_COST, UAN: service numbers that bill or route callers; texting
 *    them makes no sense and premium ones cost the sender money.
 *  - PAGER, VOICEMAIL: cannot reply YES or STOP, so no consent can be proven.
 *  - UNKNOWN: isValidNumber already excludes it; kept for completeness. */
bool sms_capable(PhoneNumberUtil::PhoneNumberType type)
{
    switch (type) {
    case PhoneNumberUtil::MOBILE:
    case PhoneNumberUtil::FIXED_LINE_OR_MOBILE:
    case PhoneNumberUtil::TOLL_FREE:
    case PhoneNumberUtil::VOIP:
    case PhoneNumberUtil::PERSONAL_NUMBER:
        return true;
    case PhoneNumberUtil::FIXED_LINE:
    case PhoneNumberUtil::PREMIUM_RATE:
    case PhoneNumberUtil::SHARED_COST:
    case PhoneNumberUtil::UAN:
    case PhoneNumberUtil::PAGER:
    case PhoneNumberUtil::VOICEMAIL:
    case PhoneNumberUtil::UNKNOWN:
        break;
    }
    return false;
}

/* issue 16: PhoneNumberUtil::GetNumberType() for a number built by nanp_e164(), without its
 * per-call costs. The library finds the number's region by running the type patterns of
 * each +1 region in turn, then runs them again for that region; each match looks the
 * pattern up in a global, locked cache (hashing the pattern's text) and builds a new ICU
 * matcher. Here the same metadata (the library's compiled-in bytes), the same region order
 * and the same ICU patterns are used, with one matcher per pattern and thread, reused; the
 * steps are those of libphonenumber 8.12's GetRegionCodeForNumberFromRegionList,
 * GetNumberTypeHelper and IsNumberMatchingDesc (tests/unit/core/test_phone_fast.c compares
 * the two on many numbers). */
namespace fast
{
struct tables {
    PhoneMetadataCollection all;
    std::unordered_map<std::string, const PhoneMetadata *> by_region;
    std::list<std::string> nanp; /* the regions of +1, in the library's order */
    bool ok = false;
};

const tables &meta()
{
    static const tables *t = [] {
        tables *n = new tables;
        n->ok = n->all.ParseFromArray(i18n::phonenumbers::metadata_get(),
                                      i18n::phonenumbers::metadata_size());
        for (const PhoneMetadata &m : n->all.metadata())
            n->by_region.emplace(m.id(), &m);
        util().GetRegionCodesForCountryCallingCode(1, &n->nanp);
        for (const std::string &r : n->nanp)
            n->ok = n->ok && r != "001" && n->by_region.count(r) == 1;
        n->ok = n->ok && !n->nanp.empty();
        return n;
    }();
    return *t;
}

/* One compiled pattern per thread; nullptr when ICU refused it (the caller then asks the
 * library, which would have refused it too, but answers as it always did). */
icu::RegexMatcher *matcher(const std::string &pattern)
{
    thread_local std::unordered_map<const std::string *, std::unique_ptr<icu::RegexMatcher>> m;
    auto it = m.find(&pattern);
    if (it != m.end())
        return it->second.get();
    UErrorCode st = U_ZERO_ERROR;
    std::unique_ptr<icu::RegexMatcher> rm(
        new icu::RegexMatcher(icu::UnicodeString::fromUTF8(pattern), 0, st));
    if (U_FAILURE(st))
        rm.reset();
    return m.emplace(&pattern, std::move(rm)).first->second.get();
}

/* IsNumberMatchingDesc: the length is one of the possible ones, and the pattern matches the
 * whole number. -1: cannot tell. */
int matches(const std::string &nsn, const icu::UnicodeString &in, const PhoneNumberDesc &d)
{
    if (d.possible_length_size() > 0 &&
        std::find(d.possible_length().begin(), d.possible_length().end(),
                  static_cast<int>(nsn.size())) == d.possible_length().end())
        return 0;
    const std::string &pattern = d.national_number_pattern();
    if (pattern.empty())
        return 0;
    icu::RegexMatcher *rm = matcher(pattern);
    if (rm == nullptr)
        return -1;
    UErrorCode st = U_ZERO_ERROR;
    rm->reset(in);
    bool ok = rm->matches(st);
    return U_FAILURE(st) ? -1 : ok;
}

/* GetNumberTypeHelper; *sure is cleared when a pattern could not be run. */
PhoneNumberUtil::PhoneNumberType type_in(const std::string &nsn, const icu::UnicodeString &in,
                                         const PhoneMetadata &m, bool *sure)
{
    const struct {
        const PhoneNumberDesc &d;
        PhoneNumberUtil::PhoneNumberType t;
    } order[] = {{m.premium_rate(), PhoneNumberUtil::PREMIUM_RATE},
                 {m.toll_free(), PhoneNumberUtil::TOLL_FREE},
                 {m.shared_cost(), PhoneNumberUtil::SHARED_COST},
                 {m.voip(), PhoneNumberUtil::VOIP},
                 {m.personal_number(), PhoneNumberUtil::PERSONAL_NUMBER},
                 {m.pager(), PhoneNumberUtil::PAGER},
                 {m.uan(), PhoneNumberUtil::UAN},
                 {m.voicemail(), PhoneNumberUtil::VOICEMAIL}};
    int r = matches(nsn, in, m.general_desc());
    if (r <= 0) {
        *sure = *sure && r == 0;
        return PhoneNumberUtil::UNKNOWN;
    }
    for (const auto &o : order) {
        r = matches(nsn, in, o.d);
        if (r != 0) {
            *sure = *sure && r > 0;
            return o.t;
        }
    }
    r = matches(nsn, in, m.fixed_line());
    if (r > 0) {
        if (m.same_mobile_and_fixed_line_pattern())
            return PhoneNumberUtil::FIXED_LINE_OR_MOBILE;
        r = matches(nsn, in, m.mobile());
        *sure = *sure && r >= 0;
        return r > 0 ? PhoneNumberUtil::FIXED_LINE_OR_MOBILE : PhoneNumberUtil::FIXED_LINE;
    }
    *sure = *sure && r == 0;
    if (!m.same_mobile_and_fixed_line_pattern()) {
        r = matches(nsn, in, m.mobile());
        *sure = *sure && r >= 0;
        if (r > 0)
            return PhoneNumberUtil::MOBILE;
    }
    return PhoneNumberUtil::UNKNOWN;
}

/* GetNumberType for country code 1 and a national number without leading zeros (what
 * nanp_e164 builds); false when it cannot tell (the caller asks the library). */
bool nanp_type(const PhoneNumber &num, PhoneNumberUtil::PhoneNumberType *type)
{
    const tables &t = meta();
    if (!t.ok || num.country_code() != 1 || num.has_italian_leading_zero() || num.has_extension())
        return false;
    std::string nsn = std::to_string(num.national_number());
    icu::UnicodeString in = icu::UnicodeString::fromUTF8(nsn);
    bool sure = true;
    /* GetRegionCodeForNumberFromRegionList: the first region whose leading digits match at
     * the start, or whose patterns give a type; none: UNKNOWN. */
    for (const std::string &r : t.nanp) {
        const PhoneMetadata &m = *t.by_region.at(r);
        if (m.has_leading_digits()) { /* RegExp::Consume: a match at the start */
            icu::RegexMatcher *rm = matcher(m.leading_digits());
            if (rm == nullptr)
                return false;
            UErrorCode st = U_ZERO_ERROR;
            rm->reset(in);
            bool at = rm->lookingAt(st);
            if (U_FAILURE(st))
                return false;
            if (!at)
                continue;
            *type = type_in(nsn, in, m, &sure);
            return sure;
        }
        PhoneNumberUtil::PhoneNumberType ty = type_in(nsn, in, m, &sure);
        if (!sure)
            return false;
        if (ty != PhoneNumberUtil::UNKNOWN) {
            *type = ty; /* GetNumberTypeHelper again for that region gives the same */
            return true;
        }
    }
    *type = PhoneNumberUtil::UNKNOWN;
    return true;
}
} // namespace fast

/* Judges a parsed number. GetNumberType() alone decides validity: IsValidNumber(num) is
 * exactly GetNumberType(num) != UNKNOWN (both find the number's region, then match its
 * type patterns), and asking both ran every ICU regular expression twice (issue 11: the
 * phone check was most of the cost of a batch of contacts). */
reading judge(const PhoneNumber &num)
{
    const PhoneNumberUtil &pu = util();
    reading r;
    /* IsValidNumber semantics rather than IsValidNumberForRegion(num, region): a national
     * reading already carries the region's country code, and a number written with "+" is
     * valid wherever it is from. NANP regions share +1, so a CA account accepts a US number. */
    PhoneNumberUtil::PhoneNumberType type;
    if (!fast::nanp_type(num, &type))
        type = pu.GetNumberType(num);
    r.at = STAGE_INVALID;
    if (type == PhoneNumberUtil::UNKNOWN) {
        r.why = "is not a valid phone number";
        return r;
    }
    r.at = STAGE_NO_SMS;
    if (num.has_extension()) {
        r.why = "has an extension, which cannot receive SMS";
        return r;
    }
    if (!sms_capable(type)) {
        r.why = type == PhoneNumberUtil::FIXED_LINE ? "is a landline, which cannot receive SMS"
                                                    : "is a number type that cannot receive SMS";
        return r;
    }
    pu.Format(num, PhoneNumberUtil::E164, &r.e164);
    if (r.e164.size() >= CD_PHONE_MAX) { /* cannot happen: E.164 is at most "+" 15 digits */
        r.at = STAGE_INVALID;
        r.why = "is too long";
        return r;
    }
    r.at = STAGE_OK;
    return r;
}

/* Reads `text` with `region` as the default region and judges the result. */
reading read_number(const std::string &text, const std::string &region)
{
    reading r;
    PhoneNumber num;

    switch (util().Parse(text, region, &num)) {
    case PhoneNumberUtil::NO_PARSING_ERROR:
        break;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
        r.why = "has an unknown country calling code";
        return r;
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
    case PhoneNumberUtil::TOO_SHORT_NSN:
        r.why = "is too short";
        return r;
    case PhoneNumberUtil::TOO_LONG_NSN:
        r.why = "is too long";
        return r;
    default:
        return r;
    }
    return judge(num);
}

/* issue 11: "+1" and ten digits, the first of them 2-9: the form NANP numbers arrive in from
 * vendor APIs, thousands per batch. For it Parse() can only yield country code 1 and those
 * ten digits as the national number (no extension, no leading zero, and no national prefix
 * to strip, as that prefix is "1"), so the PhoneNumber is built directly and Parse's regular
 * expressions are skipped; the judging is the same. */
bool nanp_e164(const char *raw, PhoneNumber *num)
{
    if (raw[0] != '+' || raw[1] != '1' || raw[2] < '2' || raw[2] > '9')
        return false;
    uint64_t national = 0;
    for (int i = 2; i < 12; i++) {
        if (raw[i] < '0' || raw[i] > '9')
            return false;
        national = national * 10 + static_cast<uint64_t>(raw[i] - '0');
    }
    if (raw[12] != '\0')
        return false;
    num->set_country_code(1);
    num->set_national_number(national);
    return true;
}

/* Keeps whichever reading got further, so "+33 1 45 45 45 45" read twice still reports
 * "landline" rather than the first reading's "not valid". */
const reading &better(const reading &a, const reading &b)
{
    return b.at > a.at ? b : a;
}

int finish(const reading &r, const char *field, char out[CD_PHONE_MAX], cd_err *err)
{
    if (r.at != STAGE_OK)
        return cd_fail_reason(err, CD_EINVAL, "invalid_phone", field, "phone number %s", r.why);
    memcpy(out, r.e164.c_str(), r.e164.size() + 1);
    return 0;
}

/* Upper-cases a two-letter region into `up`, or returns false when it is not two ASCII
 * letters ("001", the non-geographical entity, is not a region a person lives in). */
bool region_code(const char *region, std::string *up)
{
    if (region == nullptr || strlen(region) != 2)
        return false;
    up->clear();
    for (int i = 0; i < 2; i++) {
        char c = region[i];
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
        if (c < 'A' || c > 'Z')
            return false;
        up->push_back(c);
    }
    /* GetCountryCodeForRegion answers 0 for a code it has no metadata for ("ZZ", "XX"). */
    return util().GetCountryCodeForRegion(*up) != 0;
}

int normalize(const char *raw, const char *region, const char *field, char out[CD_PHONE_MAX],
              cd_err *err)
{
    std::string reg;
    if (region == nullptr)
        reg = kDefaultRegion;
    else if (!region_code(region, &reg))
        return cd_fail_reason(err, CD_EINVAL, "invalid_region", "region",
                              "region must be a two-letter country code such as US");

    PhoneNumber nanp;
    if (raw != nullptr && nanp_e164(raw, &nanp)) {
        reading fast = judge(nanp);
        if (fast.at == STAGE_OK)
            return finish(fast, field, out, err);
        /* otherwise the full reading below gives the failure its usual words */
    }

    screened in;
    const char *why = screen(raw, true, &in);
    if (why != nullptr)
        return cd_fail_reason(err, CD_EINVAL, "invalid_phone", field, "phone number %s", why);

    reading r = read_number(raw, reg);
    if (r.at == STAGE_OK || in.has_plus || !in.ascii_digits)
        return finish(r, field, out, err);

    /* ProTexting sends "16465550123": the country code without a "+". libphonenumber
     * already strips a leading country code when what follows is a valid national number,
     * so this second, international reading seldom changes the answer; it is kept so that
     * the rule does not hang on a heuristic inside the library, and it costs one more parse
     * on a path that is failing anyway. */
    std::string cc = std::to_string(util().GetCountryCodeForRegion(reg));
    if (in.digits.compare(0, cc.size(), cc) != 0)
        return finish(r, field, out, err);
    reading intl = read_number("+" + in.digits, reg);
    return finish(better(r, intl), field, out, err);
}

int from_parts(int country_code, const char *national, const char *field, char out[CD_PHONE_MAX],
               cd_err *err)
{
    std::string region;
    if (country_code > 0 && country_code < 1000)
        util().GetRegionCodeForCountryCode(country_code, &region);
    /* "ZZ" is libphonenumber's "no such country code"; "001" (+800, +882, ...) is fine. */
    if (region.empty() || region == "ZZ")
        return cd_fail_reason(err, CD_EINVAL, "invalid_phone", field,
                              "country calling code %d does not exist", country_code);

    screened in;
    const char *why = screen(national, false, &in);
    if (why != nullptr)
        return cd_fail_reason(err, CD_EINVAL, "invalid_phone", field, "phone number %s", why);

    /* Parsing "+<cc> <national>" lets libphonenumber strip a trunk prefix that a client
     * kept in the national part ("+33 06 12 34 56 78"). */
    std::string cc = std::to_string(country_code);
    reading r = read_number("+" + cc + " " + national, "ZZ");
    if (r.at == STAGE_OK || !in.ascii_digits || in.digits.compare(0, cc.size(), cc) != 0)
        return finish(r, field, out, err);

    /* The national part repeated the country code ("33612345678" with 33). */
    reading again = read_number("+" + in.digits, "ZZ");
    return finish(better(r, again), field, out, err);
}

/* Turns any C++ exception into a cd_err, since none may unwind into C. */
int internal(cd_err *err, const char *field, const char *what)
{
    return cd_fail(err, CD_EINTERNAL, field, "phone number check failed: %s", what);
}

} /* namespace */

extern "C" void cd_phone_init(void)
{
    try {
        (void)util();
        (void)fast::meta();
    } catch (...) {
        /* Only std::system_error (no threads) or bad_alloc can land here; the next call
         * retries, since call_once leaves the flag unset when the function throws. */
    }
}

/* A per-thread cache of recent successful normalisations. libphonenumber's validation runs
 * ICU regular expressions and costs tens of microseconds; the same few numbers come back
 * again and again (a contact's consents, checks, sends), and the result is a pure function
 * of (raw, region). Direct-mapped: a collision simply replaces the older entry. */
namespace
{
struct cache_entry {
    char raw[72];
    char region[8];
    char out[CD_PHONE_MAX];
};
constexpr size_t CACHE_SLOTS = 4096; /* 2-way: a pair of slots per hash */
thread_local cache_entry cache[CACHE_SLOTS];

size_t cache_slot(const char *raw, const char *region)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = raw; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (const char *p = region; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (size_t)(h % CACHE_SLOTS) & ~(size_t)1;
}
} // namespace

extern "C" int cd_phone_normalize(const char *raw, const char *region, const char *field,
                                  char out[CD_PHONE_MAX], cd_err *err)
{
    out[0] = '\0';
    const char *reg = region ? region : "US";
    bool cacheable = raw && strlen(raw) < sizeof cache[0].raw && strlen(reg) < 8;
    cache_entry *e = cacheable ? &cache[cache_slot(raw, reg)] : nullptr;
    for (int way = 0; e && way < 2; way++) {
        if (e[way].out[0] && strcmp(e[way].raw, raw) == 0 && strcmp(e[way].region, reg) == 0) {
            memcpy(out, e[way].out, CD_PHONE_MAX);
            if (way == 1) /* keep the most recent hit in the first way */
                std::swap(e[0], e[1]);
            return 0;
        }
    }
    if (e) /* the new entry goes first; the older one moves to the second way */
        e[1] = e[0];
    try {
        int rc = normalize(raw, region, field, out, err);
        if (rc == 0 && e) {
            snprintf(e->raw, sizeof e->raw, "%s", raw);
            snprintf(e->region, sizeof e->region, "%s", reg);
            memcpy(e->out, out, CD_PHONE_MAX);
        }
        return rc;
    } catch (const std::bad_alloc &) {
        return internal(err, field, "out of memory");
    } catch (...) {
        return internal(err, field, "unexpected error");
    }
}

/* For tests/unit/core/test_phone_fast.c: the number type of +1 `national` by the fast path
 * (-1: it cannot tell) and by the library. */
extern "C" int cd_phone__nanp_type(unsigned long long national, int *slow)
{
    PhoneNumber num;
    num.set_country_code(1);
    num.set_national_number(national);
    *slow = static_cast<int>(util().GetNumberType(num));
    PhoneNumberUtil::PhoneNumberType t;
    return fast::nanp_type(num, &t) ? static_cast<int>(t) : -1;
}

extern "C" bool cd_phone_is_canonical(const char *s)
{
    if (s == nullptr || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    size_t n = 1;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return s[n] == '\0' && n - 1 <= 15;
}

extern "C" int cd_phone_from_parts(int country_code, const char *national, const char *field,
                                   char out[CD_PHONE_MAX], cd_err *err)
{
    out[0] = '\0';
    /* issue 12: +1 and ten digits, the first 2-9 (Omeda's US numbers): exactly the number
     * "+1" followed by those digits, which cd_phone_normalize reads without Parse's regular
     * expressions and keeps in its cache. A refusal takes the full path, for its words. */
    if (country_code == 1 && national != nullptr && national[0] >= '2' && national[0] <= '9' &&
        strlen(national) == 10 && strspn(national, "0123456789") == 10) {
        char e164[13] = {'+', '1'};
        memcpy(e164 + 2, national, 11);
        if (cd_phone_normalize(e164, nullptr, field, out, nullptr) == 0)
            return 0;
        out[0] = '\0';
    }
    try {
        return from_parts(country_code, national, field, out, err);
    } catch (const std::bad_alloc &) {
        return internal(err, field, "out of memory");
    } catch (...) {
        return internal(err, field, "unexpected error");
    }
}

extern "C" bool cd_phone_region_valid(const char *region)
{
    try {
        std::string up;
        return region_code(region, &up);
    } catch (...) {
        return false;
    }
}

/* issue 14: a sender's type when the client gives none (core/phone.h). */
extern "C" bool cd_phone_is_toll_free(const char *e164)
{
    try {
        const PhoneNumberUtil &pu = util();
        PhoneNumber num;
        if (e164 == nullptr || pu.Parse(e164, "ZZ", &num) != PhoneNumberUtil::NO_PARSING_ERROR)
            return false;
        return pu.GetNumberType(num) == PhoneNumberUtil::TOLL_FREE;
    } catch (...) {
        return false;
    }
}
