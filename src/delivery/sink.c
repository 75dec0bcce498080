/* delivery/sink.c -- the default transport: accepts every message and sends nothing, so a
 * fresh install works offline. The message stays in the outbox, marked sent by "sink". */
#include <stdio.h>
#include <stdlib.h>

#include "delivery/transport.h"
#include "util/xalloc.h"

struct cd_transport {
    cd_transport_events ev;
};

static cd_transport *sink_open(const char *url, const cd_transport_events *events, cd_err *err)
{
    (void)url;
    (void)err;
    cd_transport *t = cd_xcalloc(1, sizeof *t);
    t->ev = *events;
    return t;
}

static int sink_submit(cd_transport *t, const cd_sms *m)
{
    char id[64];
    snprintf(id, sizeof id, "sink-%.56s", m->id);
    t->ev.sent(t->ev.arg, m->id, true, id, false, NULL);
    return 0;
}

static bool sink_ready(cd_transport *t)
{
    (void)t;
    return true;
}

static void sink_close(cd_transport *t)
{
    free(t);
}

const struct cd_transport_ops cd_transport_sink = {
    .name = "sink",
    .open = sink_open,
    .submit = sink_submit,
    .ready = sink_ready,
    .close = sink_close,
};
