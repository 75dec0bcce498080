/* tests/unit/delivery/test_webhook.c -- issue 15: the webhook rules that need no network:
 * which addresses are private (also IPv4-mapped and NAT64 IPv6), which URLs an endpoint
 * may be set to, the Consentd-Signature value, and the --webhook-schedule syntax. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "config.h"
#include "delivery/webhook.h"
#include "util/crypto.h"

static bool v4(const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return cd_webhook_address_private((const struct sockaddr *)&a);
}

static bool v6(const char *ip)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return cd_webhook_address_private((const struct sockaddr *)&a);
}

static void test_private_addresses(void **state)
{
    (void)state;
    const char *priv4[] = {"127.0.0.1",  "127.255.0.9", "10.0.0.1",        "172.16.0.1",
                           "172.31.9.9", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                           "0.0.0.0",    "224.0.0.1",   "255.255.255.255", "198.18.0.1",
                           "192.0.0.8"};
    for (size_t i = 0; i < sizeof priv4 / sizeof priv4[0]; i++)
        assert_true(v4(priv4[i]));
    const char *pub4[] = {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "93.184.216.34"};
    for (size_t i = 0; i < sizeof pub4 / sizeof pub4[0]; i++)
        assert_false(v4(pub4[i]));
    const char *priv6[] = {"::1",
                           "::",
                           "fe80::1",
                           "fd00::1",
                           "fc00::5",
                           "ff02::1",
                           "::ffff:127.0.0.1",
                           "::ffff:10.1.2.3",
                           "64:ff9b::a9fe:a9fe",
                           "fd00:ec2::254"};
    for (size_t i = 0; i < sizeof priv6 / sizeof priv6[0]; i++)
        assert_true(v6(priv6[i]));
    assert_false(v6("2606:4700:4700::1111"));
    assert_false(v6("::ffff:8.8.8.8"));
}

static void expect_refused(const char *url, bool allow, const char *reason)
{
    cd_err err = {0};
    assert_int_not_equal(cd_webhook_check_url(url, allow, "url", &err), 0);
    assert_string_equal(cd_err_reason(&err), reason);
    assert_string_equal(err.field, "url");
}

static void test_check_url(void **state)
{
    (void)state;
    cd_err err = {0};
    expect_refused("ftp://example.com/x", true, "invalid_url");
    expect_refused("file:///etc/passwd", true, "invalid_url");
    expect_refused("no scheme", true, "invalid_url");
    expect_refused("", true, "invalid_url");
    char longurl[CD_WEBHOOK_URL_MAX + 20];
    memset(longurl, 'a', sizeof longurl);
    memcpy(longurl, "http://", 7);
    longurl[sizeof longurl - 1] = '\0';
    expect_refused(longurl, true, "invalid_url");
    /* private literals and names, unless allowed */
    expect_refused("http://127.0.0.1:8080/hook", false, "private_address");
    expect_refused("http://[::1]/hook", false, "private_address");
    expect_refused("https://169.254.169.254/latest", false, "private_address");
    expect_refused("http://localhost/hook", false, "private_address");
    assert_int_equal(cd_webhook_check_url("http://127.0.0.1:8080/hook", true, "url", &err), 0);
    assert_int_equal(cd_webhook_check_url("http://localhost/hook", true, "url", &err), 0);
    /* a public literal needs no resolver */
    assert_int_equal(cd_webhook_check_url("https://93.184.216.34/hook", false, "url", &err), 0);
}

/* The receiver's recipe: hex HMAC-SHA256(secret, timestamp "." body), prefixed "v1=". */
static void test_signature(void **state)
{
    (void)state;
    char sig[68], want[CD_SHA256_HEX];
    const char *body = "{\"id\":\"evt_1\",\"type\":\"consent.changed\"}";
    cd_webhook_signature("whsec_test", "1700000000", body, sig);
    const char *signed_text = "1700000000.{\"id\":\"evt_1\",\"type\":\"consent.changed\"}";
    cd_hmac_sha256_hex("whsec_test", 10, signed_text, strlen(signed_text), want);
    assert_memory_equal(sig, "v1=", 3);
    assert_string_equal(sig + 3, want);
    /* RFC 4231 test case 2 through the same function: key "Jefe" */
    cd_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, want);
    assert_string_equal(want, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    char other[68];
    cd_webhook_signature("whsec_test", "1700000001", body, other);
    assert_string_not_equal(sig, other); /* the timestamp is signed */
}

static void test_schedule_flag(void **state)
{
    (void)state;
    cd_config cfg;
    cd_config_defaults(&cfg);
    assert_int_equal(cfg.webhook_schedule_n, 10); /* the default covers about a day */
    long long total = 0;
    for (int i = 0; i < cfg.webhook_schedule_n; i++)
        total += cfg.webhook_schedule_ms[i];
    assert_true(total >= 86400000LL && total <= 2 * 86400000LL);
    assert_int_equal(cd_config_set_webhook_schedule(&cfg, "0.1,2,30"), 0);
    assert_int_equal(cfg.webhook_schedule_n, 3);
    assert_int_equal(cfg.webhook_schedule_ms[0], 100);
    assert_int_equal(cfg.webhook_schedule_ms[2], 30000);
    const char *bad[] = {"", "1,,2", "-1", "a", "1,2,", "999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(cd_config_set_webhook_schedule(&cfg, bad[i]), 0);
    assert_int_equal(cfg.webhook_schedule_n, 3); /* a refused list changes nothing */
    char many[200] = "1";
    for (int i = 0; i < 32; i++)
        strcat(many, ",1");
    assert_int_not_equal(cd_config_set_webhook_schedule(&cfg, many), 0); /* 33 delays */
}

int main(void)
{
    cd_crypto_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_private_addresses),
        cmocka_unit_test(test_check_url),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_schedule_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
