/* tests/unit/delivery/test_smtp.c -- delivery/smtp.h (issue 13): the message written for
 * SMTP (CRLF line ends, headers, a UTF-8 subject encoded), header injection refused, and
 * the failures of a send: a closed port, and a server that never greets (the timeout). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "delivery/smtp.h"
#include "util/crypto.h"
#include "util/timeutil.h"

static const cd_smtp_config CFG = {.url = "smtp://127.0.0.1:1", .from = "optin@acme.example"};

static void test_message(void **state)
{
    (void)state;
    cd_smtp_mail m = {.to = "ada@example.com", .subject = "Please confirm", .text = "a\nb\n.c"};
    char *msg = cd_smtp_message(&CFG, &m, NULL);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "From: <optin@acme.example>\r\n"));
    assert_non_null(strstr(msg, "To: <ada@example.com>\r\n"));
    assert_non_null(strstr(msg, "Subject: Please confirm\r\n"));
    assert_non_null(strstr(msg, "Content-Type: text/plain; charset=UTF-8\r\n"));
    assert_non_null(strstr(msg, "Message-ID: <"));
    assert_non_null(strstr(msg, "\r\n\r\na\r\nb\r\n.c\r\n"));
    /* No bare LF anywhere. */
    for (const char *p = strchr(msg, '\n'); p; p = strchr(p + 1, '\n'))
        assert_int_equal(p[-1], '\r');
    free(msg);
    m.subject = "Bitte bestätigen";
    msg = cd_smtp_message(&CFG, &m, NULL);
    assert_non_null(strstr(msg, "Subject: =?UTF-8?B?Qml0dGUgYmVzdMOkdGlnZW4=?=\r\n"));
    free(msg);
}

static void test_injection_refused(void **state)
{
    (void)state;
    cd_err err = {0};
    const char *bad_to[] = {"ada@example.com\r\nBcc: eve@example.com", "ada", "a b@example.com",
                            "<ada@example.com>", "ada@example.com,eve@example.com"};
    for (size_t i = 0; i < sizeof bad_to / sizeof bad_to[0]; i++) {
        cd_smtp_mail m = {.to = bad_to[i], .subject = "s", .text = "t"};
        assert_null(cd_smtp_message(&CFG, &m, &err));
        assert_string_equal(err.reason, "invalid_mail");
    }
    cd_smtp_mail m = {.to = "ada@example.com", .subject = "s\r\nBcc: eve@example.com", .text = ""};
    assert_null(cd_smtp_message(&CFG, &m, &err));
    bool permanent = false;
    assert_int_equal(cd_smtp_send(&CFG, &m, &permanent, &err), -1);
    assert_true(permanent);
}

static void test_refused_port(void **state)
{
    (void)state;
    cd_err err = {0};
    bool permanent = true;
    cd_smtp_mail m = {.to = "ada@example.com", .subject = "s", .text = "t"};
    assert_int_equal(cd_smtp_send(&CFG, &m, &permanent, &err), -1);
    assert_string_equal(err.reason, "smtp_failed");
    assert_false(permanent);
}

/* A listening socket that accepts nothing and says nothing: the send must give up. */
static void test_timeout(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", ntohs(sa.sin_port));
    cd_smtp_config c = CFG;
    c.url = url;
    c.timeout_ms = 400;
    cd_smtp_mail m = {.to = "ada@example.com", .subject = "s", .text = "t"};
    cd_err err = {0};
    bool permanent = true;
    int64_t t0 = cd_now_ms();
    assert_int_equal(cd_smtp_send(&c, &m, &permanent, &err), -1);
    int64_t took = cd_now_ms() - t0;
    assert_true(took >= 300 && took < 3000);
    assert_false(permanent);
    assert_string_equal(err.reason, "smtp_failed");
    /* A timeout above the cap is capped at CD_SMTP_TIMEOUT_MS, never longer. */
    c.timeout_ms = 60000;
    t0 = cd_now_ms();
    assert_int_equal(cd_smtp_send(&c, &m, &permanent, &err), -1);
    took = cd_now_ms() - t0;
    assert_true(took < CD_SMTP_TIMEOUT_MS + 1500);
    close(fd);
}

int main(void)
{
    cd_crypto_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message),
        cmocka_unit_test(test_injection_refused),
        cmocka_unit_test(test_refused_port),
        cmocka_unit_test(test_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
