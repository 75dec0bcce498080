/* util/thread.h -- what each of consentd's threads says about itself to the kernel. */
#ifndef CD_UTIL_THREAD_H
#define CD_UTIL_THREAD_H

/* Names the calling thread (at most 15 characters: "cd-writer", "cd-syncer", ...), so that
 * top -H, perf and gdb tell them apart. */
void cd_thread_name(const char *name);

#endif
