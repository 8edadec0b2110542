/* hgs3_ratelimit.h: a rate limit for one kind of log message.
 *
 * A store that fails fails for every request: its message would flood the
 * error log. Each message kind (each HGS3LOGNO tag) has a limiter of its
 * own, so a message let through can say how many of *its own kind* were
 * held back since the last one ("[N similar messages suppressed]"), and a
 * flood of one kind never silences another.
 *
 * Statically initialized (HGS3_RATELIMIT_INIT) so it needs no pool and no
 * init call; thread-safe. A limiter is per process: after fork each child
 * counts its own. */
#ifndef HGS3_RATELIMIT_H
#define HGS3_RATELIMIT_H

#include <pthread.h>
#include <apr_time.h>

typedef struct hgs3_ratelimit {
    pthread_mutex_t mx;
    apr_interval_time_t interval; /* at most one message per interval */
    apr_time_t last;              /* when one was last let through; 0: never */
    apr_uint32_t suppressed;      /* held back since then */
} hgs3_ratelimit;

#define HGS3_RATELIMIT_INIT(interval)                                                              \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, (interval), 0, 0                                                \
    }

/* 1 when a message may be logged at `now` (the first one always may):
 * *psuppressed (when not NULL) is then the number held back since the last
 * one let through, and that count starts again at 0. Otherwise 0, and this
 * message is counted as held back. */
int hgs3_ratelimit_allow(hgs3_ratelimit *rl, apr_time_t now, apr_uint32_t *psuppressed);

#endif
