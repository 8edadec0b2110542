/* hgs3_ratelimit.c: a rate limit for one kind of log message (see header). */
#include "hgs3_ratelimit.h"

int hgs3_ratelimit_allow(hgs3_ratelimit *rl, apr_time_t now, apr_uint32_t *psuppressed)
{
    int allowed;

    pthread_mutex_lock(&rl->mx);
    /* a clock stepped back lets one through rather than silence the kind */
    allowed = rl->last == 0 || now - rl->last >= rl->interval || now < rl->last;
    if (allowed) {
        rl->last = now ? now : 1;
        if (psuppressed) {
            *psuppressed = rl->suppressed;
        }
        rl->suppressed = 0;
    } else {
        ++rl->suppressed;
    }
    pthread_mutex_unlock(&rl->mx);
    return allowed;
}
