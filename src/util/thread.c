/* util/thread.c -- see thread.h. */
#include "util/thread.h"

#include <pthread.h>

void cd_thread_name(const char *name)
{
    pthread_setname_np(pthread_self(), name);
}
